package org.nisprotocol.agents;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

class SelfAuditPropertiesTest {
  private static final SelfAuditEngine ENGINE = SelfAuditEngine.create();

  /** Flagged wording, wording close to it that is fine, and separators, to build texts from. */
  private static final List<String> VOCABULARY =
      List.of(
          "revolutionary", "Perfect", "perfectly", "robust", "comprehensive", "interpretability",
          "state-of-the-art", "state of", "the art", "cutting edge", "95% accuracy", "accuracy of",
          "99.9%", "10x faster", "3 times", "more efficient", "zero", "hallucination",
          "zero hallucinations", "real-time", "processing", "guaranteed", "confidence", ": 0.95",
          "accuracy = 0.9", "\"confidence\": 0.8", "success rate", "87%", "measured", "calculated",
          "a", "aa", "%", "x", "=", ":", "-", "_", " ", " ", " ", "\n", ".", ",", "\"", "İ",
          "ü", "0", "1.5", "data", "model", "test set");

  @Provide
  Arbitrary<String> auditableText() {
    return Arbitraries.oneOf(
        Arbitraries.of(VOCABULARY).list().ofMaxSize(40).map(words -> String.join("", words)),
        Arbitraries.of(VOCABULARY).list().ofMaxSize(40).map(words -> String.join(" ", words)),
        Arbitraries.strings().ofMaxLength(200));
  }

  @Provide
  Arbitrary<Map<String, Object>> jsonContent() {
    Arbitrary<String> keys =
        Arbitraries.of("confidence", "accuracy", "model_accuracy", "summary", "notes", "method",
            "confidence_interval", "success_rate", "value", "f1_score", "x.y", "");
    Arbitrary<Object> scalars =
        Arbitraries.oneOf(
            auditableText().map(s -> (Object) s),
            Arbitraries.doubles().between(-10, 10).map(d -> (Object) d),
            Arbitraries.integers().map(i -> (Object) i),
            Arbitraries.of("0.95", "87%", "calculated").map(s -> (Object) s),
            Arbitraries.of(true, false).map(b -> (Object) b));
    Arbitrary<Object> nested =
        Arbitraries.recursive(
            () -> scalars,
            inner ->
                Arbitraries.oneOf(
                    Arbitraries.maps(keys, inner).ofMaxSize(4).map(m -> (Object) m),
                    inner.list().ofMaxSize(4).map(l -> (Object) l)),
            2);
    return Arbitraries.maps(keys, nested).ofMaxSize(6);
  }

  @Property
  void scoreIsAlwaysBetweenZeroAndHundred(@ForAll("auditableText") String text) {
    AuditReport report = ENGINE.auditText(text);

    assertThat(report.integrityScore()).isBetween(0.0, 100.0);
    assertThat(report.integrityScore() == 100.0).isEqualTo(report.violations().isEmpty());
    assertThat(report.status()).isEqualTo(AuditStatus.of(report.violations().size()));
  }

  @Property
  void scoreOfArbitraryStringsIsBetweenZeroAndHundred(@ForAll String text) {
    assertThat(ENGINE.auditText(text).integrityScore()).isBetween(0.0, 100.0);
  }

  @Property
  void violationsPointAtTheirTextWithoutOverlapping(@ForAll("auditableText") String text) {
    List<Violation> violations = ENGINE.auditText(text).violations();

    int previousEnd = 0;
    for (Violation violation : violations) {
      assertThat(text.substring(violation.start(), violation.end())).isEqualTo(violation.text());
      assertThat(violation.start()).isGreaterThanOrEqualTo(previousEnd);
      previousEnd = violation.end();
    }
  }

  @Property
  void correctedTextNeverScoresLowerThanTheOriginal(@ForAll("auditableText") String text) {
    String corrected = ENGINE.correctText(text);

    assertThat(ENGINE.auditText(corrected).integrityScore())
        .isGreaterThanOrEqualTo(ENGINE.auditText(text).integrityScore());
  }

  @Property
  void correctionOfTheDefaultRulesLeavesNoViolation(@ForAll("auditableText") String text) {
    String corrected = ENGINE.correctText(text);

    assertThat(ENGINE.auditText(corrected).violations()).isEmpty();
  }

  @Property
  void correctingTwiceChangesNothingMore(@ForAll("auditableText") String text) {
    String corrected = ENGINE.correctText(text);

    assertThat(ENGINE.correctText(corrected)).isEqualTo(corrected);
  }

  @Property
  void appendingFlaggedWordingNeverRaisesTheScore(
      @ForAll("auditableText") String text,
      @ForAll("flagged") String flagged) {
    double before = ENGINE.auditText(text).integrityScore();

    assertThat(ENGINE.auditText(text + " " + flagged).integrityScore()).isLessThanOrEqualTo(before);
  }

  @Provide
  Arbitrary<String> flagged() {
    return Arbitraries.of(
        "revolutionary", "robust", "95% accuracy", "10x faster", "zero hallucination",
        "confidence: 0.9", "guaranteed");
  }

  @Property(tries = 200)
  void contentScoreIsInRangeAndCorrectionNeverLowersIt(
      @ForAll("jsonContent") Map<String, Object> content) {
    AuditReport original = ENGINE.auditContent(content);
    Map<String, Object> corrected = ENGINE.correctContent(content);
    AuditReport after = ENGINE.auditContent(corrected);

    assertThat(original.integrityScore()).isBetween(0.0, 100.0);
    assertThat(after.integrityScore()).isGreaterThanOrEqualTo(original.integrityScore());
    assertThat(after.violations()).isEmpty();
    assertThat(corrected.keySet()).containsExactlyElementsOf(content.keySet());
  }
}
