package org.nisprotocol.agents;

import static org.nisprotocol.agents.Severity.HIGH;
import static org.nisprotocol.agents.Severity.LOW;
import static org.nisprotocol.agents.Severity.MEDIUM;
import static org.nisprotocol.agents.ViolationType.HYPE_LANGUAGE;
import static org.nisprotocol.agents.ViolationType.UNSUBSTANTIATED_CLAIM;

import java.util.ArrayList;
import java.util.List;

/**
 * The default rules. Hype words cost LOW (MEDIUM for the strongest), claims MEDIUM or HIGH,
 * hard-coded metrics HIGH. Every replacement is plain, checkable wording, and is itself clean
 * under these rules (the rule set checks that).
 */
final class DefaultRules {
  private DefaultRules() {}

  /** Metrics that must be computed, never written as literals. */
  static final List<String> METRIC_NAMES =
      List.of(
          "confidence", "confidence score", "accuracy", "precision", "recall", "f1", "f1 score",
          "success rate", "reliability", "certainty", "auc");

  /** Keys that say where a metric in the same object came from. */
  static final List<String> EVIDENCE_KEYS =
      List.of("evidence", "method", "computed_by", "derived_from", "measured_by");

  private static final String CLAIM_METRICS =
      "accuracy|accurate|precision|recall|reliability|reliable|uptime|availability|success"
          + "|correctness|correct|confidence|certainty|coverage";
  // A cheap first test before the alternation, which java.util.regex tries one branch at a time.
  private static final String CLAIM_METRIC_INITIALS = "aprusc";

  static List<AuditRule> rules() {
    List<AuditRule> rules = new ArrayList<>();
    hype(rules, "revolutionary", MEDIUM, "new");
    hype(rules, "revolutionize", MEDIUM, "change");
    hype(rules, "revolutionizes", MEDIUM, "changes");
    hype(rules, "groundbreaking", MEDIUM, "new");
    hype(rules, "breakthrough", MEDIUM, "advance");
    hype(rules, "unprecedented", MEDIUM, "uncommon");
    hype(rules, "perfect", MEDIUM, "tested");
    hype(rules, "perfectly", MEDIUM, "as tested");
    hype(rules, "flawless", MEDIUM, "tested");
    hype(rules, "flawlessly", MEDIUM, "as tested");
    hype(rules, "best in class", MEDIUM, "benchmarked");
    hype(rules, "state of the art", MEDIUM, "current");
    hype(rules, "game changing", MEDIUM, "notable");
    hype(rules, "unparalleled", MEDIUM, "uncommon");
    hype(rules, "robust", LOW, "tested");
    hype(rules, "robustness", LOW, "tested behaviour");
    hype(rules, "comprehensive", LOW, "detailed");
    hype(rules, "comprehensively", LOW, "in detail");
    hype(rules, "interpretability", LOW, "traceability");
    hype(rules, "cutting edge", LOW, "current");
    hype(rules, "seamless", LOW, "integrated");
    hype(rules, "seamlessly", LOW, "directly");
    hype(rules, "world class", LOW, "evaluated");
    hype(rules, "next generation", LOW, "new");

    claim(rules, "zero hallucination", HIGH, "a measured hallucination rate");
    claim(rules, "zero hallucinations", HIGH, "a measured hallucination rate");
    claim(rules, "no hallucinations", HIGH, "a measured hallucination rate");
    claim(rules, "real time processing", MEDIUM, "processing with measured latency");
    claim(rules, "realtime processing", MEDIUM, "processing with measured latency");
    claim(rules, "guaranteed", MEDIUM, "expected");
    claim(rules, "infallible", HIGH, "tested");
    claim(rules, "bulletproof", MEDIUM, "hardened");

    // "95% accuracy" or "accuracy of 95%": one regex, so the text near a '%' is scanned once
    rules.add(
        AuditRule.regex(
            "claim.percent",
            UNSUBSTANTIATED_CLAIM,
            HIGH,
            "(?=[\\d" + CLAIM_METRIC_INITIALS + "])\\b(?:"
                + "(?:\\d{1,3}(?:\\.\\d+)?\\s?%\\s*)++(?:of\\s+)?(" + CLAIM_METRICS + ")\\b"
                + "|(" + CLAIM_METRICS + ")\\s+(?:of|at|above|over|near|is|reaches)\\s+~?\\s*"
                + "\\d{1,3}(?:\\.\\d+)?\\s?%)",
            "$1$2 measured on a named test set",
            "%"));
    rules.add(
        AuditRule.regex(
            "claim.multiplier",
            UNSUBSTANTIATED_CLAIM,
            HIGH,
            "(?=\\d)\\b(?:\\d+(?:\\.\\d+)?\\s?(?:x|×|times)\\s+)++(faster|quicker|better|cheaper"
                + "|smaller|(?:more|less|fewer)\\s+[a-z]+)\\b",
            "$1 than a measured baseline",
            "faster", "quicker", "better", "cheaper", "smaller", "more", "less", "fewer"));

    rules.add(AuditRule.metricLiteral("metric.literal", HIGH, METRIC_NAMES, EVIDENCE_KEYS));
    return List.copyOf(rules);
  }

  private static void hype(List<AuditRule> rules, String phrase, Severity severity, String to) {
    rules.add(AuditRule.phrase(id("hype", phrase), HYPE_LANGUAGE, severity, phrase, to));
  }

  private static void claim(List<AuditRule> rules, String phrase, Severity severity, String to) {
    rules.add(AuditRule.phrase(id("claim", phrase), UNSUBSTANTIATED_CLAIM, severity, phrase, to));
  }

  private static String id(String prefix, String phrase) {
    return prefix + '.' + String.join("-", Words.split(phrase));
  }
}
