package org.nisprotocol.agents;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.nisprotocol.agents.AuditDecision.Action;
import org.nisprotocol.agents.SelfAuditConfig.LowScoreAction;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.StreamingTopics;
import org.nisprotocol.core.ValidationException;

class SelfAuditEngineTest {
  private final SelfAuditEngine engine = SelfAuditEngine.create();

  @Test
  void theGuidesEvidenceBasedTextIsClean() {
    String text =
        """
        Message Content:
        Success probability: calculated_from_monte_carlo_simulation
        Confidence interval: derived_from_statistical_analysis
        Performance metrics: measured_in_benchmarks
        """;

    AuditReport report = engine.auditText(text);

    assertThat(report.violations()).isEmpty();
    assertThat(report.integrityScore()).isEqualTo(100.0);
    assertThat(report.status()).isEqualTo(AuditStatus.EXCELLENT);
  }

  @Test
  void flagsHypeWordsWithTheirPositions() {
    String text = "A Revolutionary, perfect and robust engine with comprehensive interpretability.";

    AuditReport report = engine.auditText(text);

    assertThat(report.violations())
        .extracting(Violation::text)
        .containsExactly("Revolutionary", "perfect", "robust", "comprehensive", "interpretability");
    assertThat(report.violations()).allSatisfy(v -> {
      assertThat(v.type()).isEqualTo(ViolationType.HYPE_LANGUAGE);
      assertThat(v.path()).isEqualTo("text");
      assertThat(text.substring(v.start(), v.end())).isEqualTo(v.text());
    });
    // revolutionary and perfect MEDIUM, the other three LOW: 100 - 2*5 - 3*2
    assertThat(report.integrityScore()).isEqualTo(84.0);
    assertThat(report.status()).isEqualTo(AuditStatus.GOOD);
  }

  @Test
  void flagsUnsubstantiatedClaims() {
    String text =
        "It reaches 95% accuracy, runs 10x faster, with zero hallucination and real-time"
            + " processing; uptime of 99.9% is guaranteed.";

    AuditReport report = engine.auditText(text);

    assertThat(report.violations())
        .extracting(Violation::text, Violation::severity)
        .containsExactly(
            org.assertj.core.groups.Tuple.tuple("95% accuracy", Severity.HIGH),
            org.assertj.core.groups.Tuple.tuple("10x faster", Severity.HIGH),
            org.assertj.core.groups.Tuple.tuple("zero hallucination", Severity.HIGH),
            org.assertj.core.groups.Tuple.tuple("real-time processing", Severity.MEDIUM),
            org.assertj.core.groups.Tuple.tuple("uptime of 99.9%", Severity.HIGH),
            org.assertj.core.groups.Tuple.tuple("guaranteed", Severity.MEDIUM));
    assertThat(report.violations())
        .allSatisfy(v -> assertThat(v.type()).isEqualTo(ViolationType.UNSUBSTANTIATED_CLAIM));
    assertThat(report.integrityScore()).isEqualTo(100.0 - 4 * 10 - 2 * 5);
  }

  @Test
  void longRunsOfRepeatedClaimsAreAuditedWithoutExhaustingTheStack() {
    // Each repetition of a claim's number group took a level of the regex engine's recursion.
    String percents = "1%".repeat(50_000) + " accuracy";
    String multipliers = "2x ".repeat(50_000) + "faster";

    assertThat(engine.auditText(percents).violations())
        .singleElement()
        .satisfies(v -> assertThat(v.text()).endsWith("1% accuracy").hasSize(percents.length()));
    assertThat(engine.auditText(multipliers).violations())
        .singleElement()
        .satisfies(v -> assertThat(v.text()).endsWith("2x faster"));
  }

  @Test
  void flagsHardCodedMetricsWrittenAsLiteralsInText() {
    assertThat(engine.auditText("confidence: 0.95").violations())
        .singleElement()
        .satisfies(v -> {
          assertThat(v.type()).isEqualTo(ViolationType.HARDCODED_VALUE);
          assertThat(v.severity()).isEqualTo(Severity.HIGH);
          assertThat(v.text()).isEqualTo("confidence: 0.95");
          assertThat(v.suggestion()).isEqualTo("confidence: calculated_confidence_score");
        });
    assertThat(engine.auditText("the accuracy = 0.9 here").violations())
        .extracting(Violation::text).containsExactly("accuracy = 0.9");
    assertThat(engine.auditText("{\"confidence\": 0.95}").violations())
        .extracting(Violation::text).containsExactly("confidence\": 0.95");
    assertThat(engine.auditText("Success rate: 87%").violations())
        .extracting(Violation::text).containsExactly("Success rate: 87%");
  }

  @Test
  void doesNotFlagComputedOrUnrelatedMetrics() {
    assertThat(engine.auditText("confidence: calculated_confidence_score").violations()).isEmpty();
    assertThat(engine.auditText("confidence interval: 0.91 to 0.95").violations()).isEmpty();
    assertThat(engine.auditText("accuracy measured on the 2024 test set").violations()).isEmpty();
    assertThat(engine.auditText("We perfected it; perfection.").violations()).isEmpty();
    assertThat(engine.auditText("robustly? no: robust-ish").violations())
        .extracting(Violation::text).containsExactly("robust");
  }

  @Test
  void flagsLiteralMetricFieldsInNestedContent() {
    Map<String, Object> content =
        Map.of(
            "results",
            List.of(
                Map.of("summary", "all fine"),
                Map.of("summary", "A revolutionary result", "model_accuracy", 0.9)),
            "confidence", 0.95);

    AuditReport report = engine.auditContent(content);

    assertThat(report.violations())
        .extracting(Violation::path, Violation::text)
        .containsExactlyInAnyOrder(
            org.assertj.core.groups.Tuple.tuple("content.results[1].summary", "revolutionary"),
            org.assertj.core.groups.Tuple.tuple("content.results[1].model_accuracy", "0.9"),
            org.assertj.core.groups.Tuple.tuple("content.confidence", "0.95"));
    assertThat(report.integrityScore()).isEqualTo(100.0 - 10 - 10 - 5);
  }

  @Test
  void correctsContentAsTheGuideShows() {
    Map<String, Object> original =
        Map.of(
            "confidence", 0.95,
            "accuracy", "calculated_from_test_data",
            "performance", "measured_implementation");

    Map<String, Object> corrected = engine.correctContent(original);

    assertThat(corrected)
        .containsEntry("confidence", "calculated_confidence_score")
        .containsEntry("accuracy", "calculated_from_test_data")
        .containsEntry("performance", "measured_implementation");
    assertThat(engine.auditContent(original).integrityScore()).isEqualTo(90.0);
    assertThat(engine.auditContent(corrected).integrityScore()).isEqualTo(100.0);
  }

  /** A metric of absurd size is flagged as written: in plain digits 1e999999999 would take a gigabyte. */
  @Test
  @Timeout(10)
  void aMetricOfAbsurdSizeIsFlaggedAsWritten() {
    assertThat(engine.auditContent(Map.of("confidence", new BigDecimal("1e999999999"))).violations())
        .singleElement()
        .satisfies(v -> assertThat(v.text()).isEqualTo("1E+999999999"));
    assertThat(engine.auditContent(Map.of("confidence", new BigDecimal("0.95"))).violations())
        .singleElement()
        .satisfies(v -> assertThat(v.text()).isEqualTo("0.95"));
  }

  @Test
  void aMetricNextToItsEvidenceIsNotFlagged() {
    Map<String, Object> content =
        Map.of("confidence", 0.87, "method", "Wilson interval over 500 Monte Carlo runs");

    assertThat(engine.auditContent(content).violations()).isEmpty();
    assertThat(engine.auditContent(Map.of("confidence", 0.87)).violations()).hasSize(1);
    assertThat(engine.auditContent(Map.of("confidence", "0.87")).violations()).hasSize(1);
    assertThat(engine.auditContent(Map.of("confidence_interval", List.of(0.8, 0.9))).violations())
        .isEmpty();
  }

  @Test
  void scoreFollowsTheFormulaAndBottomsOutAtZero() {
    String text = "zero hallucination, 10x faster, 95% accuracy; guaranteed and perfect; robust.";
    assertThat(engine.auditText(text).integrityScore()).isEqualTo(100.0 - 30 - 10 - 2);

    String many = "zero hallucination. ".repeat(11);
    AuditReport report = engine.auditText(many);
    assertThat(report.violations()).hasSize(11);
    assertThat(report.integrityScore()).isEqualTo(0.0);
  }

  @Test
  void statusFollowsTheNumberOfViolations() {
    assertThat(AuditStatus.of(0)).isEqualTo(AuditStatus.EXCELLENT);
    assertThat(AuditStatus.of(1)).isEqualTo(AuditStatus.GOOD);
    assertThat(AuditStatus.of(5)).isEqualTo(AuditStatus.GOOD);
    assertThat(AuditStatus.of(6)).isEqualTo(AuditStatus.NEEDS_IMPROVEMENT);
    assertThat(AuditStatus.of(15)).isEqualTo(AuditStatus.NEEDS_IMPROVEMENT);
    assertThat(AuditStatus.of(16)).isEqualTo(AuditStatus.CRITICAL);
    assertThat(engine.auditText("robust ".repeat(16)).status()).isEqualTo(AuditStatus.CRITICAL);
  }

  @Test
  void autoCorrectionRewritesToEvidenceBasedWording() {
    String text = "Revolutionary model: 95% accuracy, zero hallucination, confidence: 0.95.";

    String corrected = engine.correctText(text);

    assertThat(corrected)
        .isEqualTo(
            "New model: accuracy measured on a named test set, a measured hallucination rate,"
                + " confidence: calculated_confidence_score.");
    assertThat(engine.auditText(corrected).violations()).isEmpty();
  }

  @Test
  void rulesCanBeRemovedReweightedAndAdded() {
    String text = "a robust and synergistic design";
    assertThat(engine.auditText(text).integrityScore()).isEqualTo(98.0);

    AuditRuleSet withoutRobust = AuditRuleSet.defaults().without("hype.robust");
    assertThat(engine(withoutRobust).auditText(text).violations()).isEmpty();

    AuditRuleSet robustHigh = AuditRuleSet.defaults().withSeverity("hype.robust", Severity.HIGH);
    assertThat(engine(robustHigh).auditText(text).integrityScore()).isEqualTo(90.0);

    AuditRuleSet synergy =
        AuditRuleSet.defaults()
            .with(AuditRule.phrase("hype.synergistic", ViolationType.HYPE_LANGUAGE, Severity.LOW,
                "synergistic", "combined"));
    assertThat(engine(synergy).auditText(text).violations())
        .extracting(Violation::ruleId).containsExactly("hype.robust", "hype.synergistic");
    assertThat(engine(synergy).correctText(text)).isEqualTo("a tested and combined design");

    AuditRuleSet hypeHigh =
        AuditRuleSet.defaults().withSeverity(ViolationType.HYPE_LANGUAGE, Severity.HIGH);
    assertThat(engine(hypeHigh).auditText(text).integrityScore()).isEqualTo(90.0);
    // the defaults are untouched
    assertThat(AuditRuleSet.defaults().rule("hype.robust").orElseThrow().severity())
        .isEqualTo(Severity.LOW);
  }

  @Test
  void regexRulesRunNearTheirTriggersOnly() {
    SelfAuditEngine custom =
        engine(AuditRuleSet.of(List.of(
            AuditRule.regex("test.acme", ViolationType.UNSUBSTANTIATED_CLAIM, Severity.LOW,
                "ACME-\\d+\\s+wins", "ACME model", "wins"))));

    // upper-case literals still match: the rule is matched case-insensitively
    assertThat(custom.auditText("acme-4 wins, ACME-7 Wins").violations())
        .extracting(Violation::text).containsExactly("acme-4 wins", "ACME-7 Wins");
    // a word trigger counts at the start of a word only
    assertThat(custom.auditText("acme-4 nowins").violations()).isEmpty();
    // and the regex looks 32 characters either side of it
    assertThat(custom.auditText("acme-4 " + " ".repeat(20) + "wins").violations()).hasSize(1);
    assertThat(custom.auditText("acme-4 " + " ".repeat(60) + "wins").violations()).isEmpty();
    assertThat(RuleMatcher.hasUpperCaseLiteral("\\d+\\s\\p{Lu}[a-z]")).isFalse();
    assertThat(RuleMatcher.hasUpperCaseLiteral("[A-Z]x")).isTrue();
  }

  @Test
  void badRulesAreRejectedWithEveryProblem() {
    assertThatThrownBy(
            () -> AuditRule.regex("Bad Id", ViolationType.HYPE_LANGUAGE, null, "(unclosed",
                "$3", "UPPER"))
        .isInstanceOfSatisfying(ValidationException.class, e -> assertThat(e.problems())
            .hasSize(4)
            .anySatisfy(p -> assertThat(p).contains("Bad Id"))
            .anySatisfy(p -> assertThat(p).contains("severity"))
            .anySatisfy(p -> assertThat(p).contains("does not compile"))
            .anySatisfy(p -> assertThat(p).contains("UPPER")));
    assertThatThrownBy(
            () -> AuditRule.phrase("x", ViolationType.HYPE_LANGUAGE, Severity.LOW, "95%", "y"))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("95%");

    AuditRule selfFlagging =
        AuditRule.phrase("hype.amazing", ViolationType.HYPE_LANGUAGE, Severity.LOW, "amazing",
            "revolutionary");
    assertThatThrownBy(() -> AuditRuleSet.defaults().with(selfFlagging))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("'revolutionary' is itself flagged by rule 'hype.revolutionary'");
    AuditRule duplicate = AuditRule.phrase("dup", ViolationType.HYPE_LANGUAGE, Severity.LOW, "a", "b");
    assertThatThrownBy(() -> AuditRuleSet.of(List.of(duplicate, duplicate)))
        .hasMessageContaining("'dup' is used twice");
    assertThatThrownBy(() -> AuditRuleSet.defaults().without("no.such.rule"))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("no rule 'no.such.rule'");
  }

  @Test
  void auditingAMessageFillsScoreAndFlags() {
    NisMessage message =
        NisMessage.builder(MessageType.SIMULATION_RESULT, "scenario_simulator")
            .content(Map.of("summary", "perfect plan", "confidence", 0.95))
            .build();

    NisMessage audited = engine.audit(message);

    assertThat(audited.integrityScore()).hasValue(85.0);
    assertThat(audited.auditFlags())
        .containsExactlyInAnyOrder(
            "hype_language:hype.perfect@content.summary",
            "hardcoded_value:metric.literal@content.confidence");
    assertThat(audited.content()).isEqualTo(message.content());
    assertThat(audited.messageId()).isEqualTo(message.messageId());
  }

  @Test
  void aMessageAtOrAboveTheThresholdPasses() {
    NisMessage message = message(Map.of("summary", "a robust plan"));

    AuditDecision decision = engine.decide(message);

    assertThat(decision.action()).isEqualTo(Action.PASS);
    assertThat(decision.message().integrityScore()).hasValue(98.0);
    assertThat(decision.reasons()).isEmpty();
    assertThat(decision.alert("self_audit")).isEmpty();
  }

  @Test
  void aMessageBelowTheThresholdIsAutoCorrected() {
    NisMessage message = message(lowScoringContent());

    AuditDecision decision = engine.decide(message);

    assertThat(decision.report().integrityScore()).isLessThan(70.0);
    assertThat(decision.action()).isEqualTo(Action.CORRECTED);
    assertThat(decision.message().integrityScore()).hasValue(100.0);
    assertThat(decision.message().auditFlags()).containsExactly("auto_corrected");
    assertThat(decision.message().content())
        .containsEntry("confidence", "calculated_confidence_score")
        .containsEntry("accuracy", "calculated_accuracy_score");
    assertThat(decision.message().messageId()).isEqualTo(message.messageId());
    assertThat(decision.reasons().get(0)).contains("below the threshold 70.0");
    NisMessage alert = decision.alert("self_audit").orElseThrow();
    assertThat(alert.content()).containsEntry("action", "corrected")
        .containsEntry("severity", "medium").containsEntry("published_integrity_score", 100.0);
  }

  @Test
  void aMessageBelowTheThresholdIsQuarantinedWithReasonsWhenConfigured() {
    SelfAuditEngine quarantining =
        SelfAuditEngine.create(
            SelfAuditConfig.defaults().withOnLowScore(LowScoreAction.QUARANTINE));
    NisMessage message = message(lowScoringContent());

    AuditDecision decision = quarantining.decide(message);

    assertThat(decision.action()).isEqualTo(Action.QUARANTINED);
    assertThat(decision.message().content()).isEqualTo(message.content());
    assertThat(decision.message().integrityScore()).hasValue(decision.report().integrityScore());
    assertThat(decision.reasons())
        .hasSize(1 + decision.report().violations().size())
        .anySatisfy(reason -> assertThat(reason).contains("'0.95' at content.confidence"));
    NisMessage alert = decision.alert("self_audit").orElseThrow();
    assertThat(alert.messageType()).isEqualTo(MessageType.AUDIT_ALERT);
    assertThat(alert.topic()).isEqualTo(StreamingTopics.AUDIT_ALERTS);
    assertThat(alert.correlationId()).hasValue(message.messageId());
    assertThat(alert.content())
        .containsEntry("action", "quarantined")
        .containsEntry("severity", "high")
        .containsEntry("reasons", decision.reasons())
        .containsKey("violations");
    @SuppressWarnings("unchecked")
    Map<String, Object> held = (Map<String, Object>) alert.content().get("quarantined_message");
    NisMessage released =
        MessageCodec.create().decode(MessageCodec.mapper().valueToTree(held).toString());
    assertThat(released.messageId()).isEqualTo(message.messageId());
    assertThat(released.content()).isEqualTo(message.content());
  }

  @Test
  void aMessageIsQuarantinedWhenCorrectionCannotReachTheThreshold() {
    // "aa" -> "a" halves a run of a's per pass; five passes leave 64 a's at two.
    AuditRuleSet halving =
        AuditRuleSet.of(
            List.of(AuditRule.regex("test.halving", ViolationType.HYPE_LANGUAGE, Severity.HIGH,
                "(a)a", "$1")));
    SelfAuditEngine strict =
        SelfAuditEngine.create(SelfAuditConfig.defaults().withRules(halving).withThreshold(100));

    AuditDecision decision = strict.decide(message(Map.of("text", "a".repeat(64))));

    assertThat(decision.action()).isEqualTo(Action.QUARANTINED);
    assertThat(decision.reasons()).last().asString().contains("after auto-correction the score is 90.0");
  }

  @Test
  void auditAlertsAreScoredButAlwaysPass() {
    NisMessage alert =
        NisMessage.builder(MessageType.AUDIT_ALERT, "self_audit")
            .content(lowScoringContent())
            .build();

    AuditDecision decision = engine.decide(alert);

    assertThat(decision.action()).isEqualTo(Action.PASS);
    assertThat(decision.message().integrityScore().orElseThrow()).isLessThan(70.0);
    SelfAuditEngine noExemptions =
        SelfAuditEngine.create(SelfAuditConfig.defaults().withExemptTypes(Set.of()));
    assertThat(noExemptions.decide(alert).action()).isEqualTo(Action.CORRECTED);
  }

  @Test
  void configIsValidatedWithEveryProblem() {
    assertThatThrownBy(() -> new SelfAuditConfig(null, 101, null, EnumSet.noneOf(MessageType.class)))
        .isInstanceOfSatisfying(ValidationException.class,
            e -> assertThat(e.problems()).hasSize(3));
  }

  @Test
  void reportJsonHasTheShapeOfPostAudit() {
    Map<String, Object> text = engine.reportJson("A perfect result with 95% accuracy");
    assertThat(text).containsKeys("integrity_score", "violations", "status", "corrected");
    assertThat(text.get("integrity_score")).isEqualTo(85.0);
    assertThat(text.get("status")).isEqualTo("GOOD");
    assertThat(text.get("corrected"))
        .isEqualTo("A tested result with accuracy measured on a named test set");
    assertThat(text.get("corrected_integrity_score")).isEqualTo(100.0);
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> violations = (List<Map<String, Object>>) text.get("violations");
    assertThat(violations).first().satisfies(v -> assertThat(v)
        .containsEntry("type", "hype_language")
        .containsEntry("severity", "MEDIUM")
        .containsEntry("text", "perfect")
        .containsEntry("start", 2)
        .containsKeys("path", "suggestion", "description"));

    Map<String, Object> content = engine.reportJson(Map.of("confidence", 0.95));
    assertThat(content.get("corrected"))
        .isEqualTo(Map.of("confidence", "calculated_confidence_score"));
    assertThat(content.get("integrity_score")).isEqualTo(90.0);
  }

  @Test
  void contentThatIsNotJsonIsRejected() {
    assertThatThrownBy(() -> engine.auditContent(Map.of("when", new Object())))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("content.when");
  }

  @Test
  void offsetsStayRightWhenLowercasingChangesLength() {
    // regression: String.toLowerCase turns 'İ' into two chars, which shifted every offset after it
    String text = "İİ revolutionary";
    Violation violation = engine.auditText(text).violations().get(0);
    assertThat(text.substring(violation.start(), violation.end())).isEqualTo("revolutionary");
  }

  @Test
  void oneEngineGivesTheSameAnswersOnManyThreads() throws Exception {
    String text = "Revolutionary, 95% accuracy, confidence: 0.9, real-time processing. ".repeat(10);
    AuditReport expected = engine.auditText(text);
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<AuditReport>> futures = new ArrayList<>();
      for (int i = 0; i < 200; i++) {
        futures.add(pool.submit(() -> engine.auditText(text)));
      }
      for (Future<AuditReport> future : futures) {
        assertThat(future.get()).isEqualTo(expected);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  private static Map<String, Object> lowScoringContent() {
    return Map.of(
        "summary", "Revolutionary and perfect: zero hallucination, 10x faster",
        "confidence", 0.95,
        "accuracy", 0.99);
  }

  private static NisMessage message(Map<String, Object> content) {
    return NisMessage.builder(MessageType.AGENT_COORDINATION, "planner").content(content).build();
  }

  @Test
  void contentFlaggedInManyPlacesListsTheFirstHundredAndCountsThemAll() {
    Map<String, Object> content = Map.of("notes", java.util.Collections.nCopies(1000, "perfect"));

    AuditReport report = engine.auditContent(content);

    assertThat(report.violationCount()).isEqualTo(1000);
    assertThat(report.violations()).hasSize(AuditReport.MAX_LISTED);
    assertThat(report.violations().getLast().path()).isEqualTo("content.notes[99]");
    assertThat(report.integrityScore()).isZero();
    assertThat(report.status()).isEqualTo(AuditStatus.CRITICAL);
    assertThat(report.flags()).hasSize(101).last().isEqualTo("more_violations:900");
    assertThat(report.toJson()).containsEntry("violation_count", 1000).containsEntry("violations_not_listed", 900);
    AuditReport text = engine.auditText("perfect ".repeat(1000));
    assertThat(text.violationCount()).isEqualTo(1000);
    assertThat(text.violations()).hasSize(AuditReport.MAX_LISTED);
  }

  @Test
  void pathsStaySmallWhateverTheKeys() {
    String longKey = "k".repeat(20_000);
    Map<String, Object> deep = Map.of("perfect", "perfect");
    for (int level = 0; level < 300; level++) {
      deep = Map.of("level" + level, deep);
    }

    Violation underALongKey = engine.auditContent(Map.of(longKey, List.of("perfect"))).violations().getFirst();
    Violation deepDown = engine.auditContent(deep).violations().getFirst();

    assertThat(underALongKey.path())
        .startsWith("content[\"kkkk").endsWith("…(20000 chars)\"][0]").hasSizeLessThan(100);
    assertThat(underALongKey.flag()).hasSizeLessThan(150);
    assertThat(deepDown.path()).hasSizeLessThanOrEqualTo(JsonPaths.MAX_PATH_CHARS)
        .startsWith("content.level299.level298.").endsWith(".level1.level0.perfect").contains(" chars)…");
    assertThat(deepDown.description()).hasSizeLessThan(300);
  }

  private static SelfAuditEngine engine(AuditRuleSet rules) {
    return SelfAuditEngine.create(SelfAuditConfig.defaults().withRules(rules));
  }
}
