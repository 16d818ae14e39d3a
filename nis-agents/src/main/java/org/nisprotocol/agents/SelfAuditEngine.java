package org.nisprotocol.agents;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.nisprotocol.agents.AuditDecision.Action;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.ValidationException;

/**
 * The self-audit: flags hype language, unsubstantiated claims and hard-coded metric values in
 * free text and in JSON message content, scores them, corrects them, and decides whether an
 * outgoing message may go out.
 *
 * <p>Score: {@code max(0, 100 - 10·HIGH - 5·MEDIUM - 2·LOW)}, 100 with no violations. Status: no
 * violations EXCELLENT, up to 5 GOOD, up to 15 NEEDS_IMPROVEMENT, more CRITICAL. Auto-correction
 * replaces flagged wording by the rule's evidence-based wording and metric literals by the marker
 * {@code calculated_<name>_score}; corrected text never scores lower than the original.
 *
 * <p>Use: {@code SelfAuditEngine.create()} for the defaults, or {@code
 * SelfAuditEngine.create(SelfAuditConfig.defaults().withThreshold(75))}. Immutable and
 * thread-safe; share one instance.
 */
public final class SelfAuditEngine {
  /** The path of free text in violations. */
  public static final String TEXT_PATH = "text";
  /** The root path of JSON content in violations. */
  public static final String CONTENT_PATH = "content";
  /** The flag added to a message whose content was auto-corrected. */
  public static final String AUTO_CORRECTED_FLAG = "auto_corrected";

  private final SelfAuditConfig config;
  private final RuleMatcher matcher;

  private SelfAuditEngine(SelfAuditConfig config) {
    this.config = config;
    this.matcher = config.rules().matcher();
  }

  /** An engine with {@link SelfAuditConfig#defaults()}. */
  public static SelfAuditEngine create() {
    return create(SelfAuditConfig.defaults());
  }

  public static SelfAuditEngine create(SelfAuditConfig config) {
    return new SelfAuditEngine(Objects.requireNonNull(config, "config"));
  }

  public SelfAuditConfig config() {
    return config;
  }

  /** Audits free text; violations have path {@value #TEXT_PATH} and offsets into the text. */
  public AuditReport auditText(String text) {
    return AuditReport.of(matcher.scanText(Objects.requireNonNull(text, "text"), TEXT_PATH));
  }

  /**
   * Audits a JSON object: every string value (nested objects and arrays included) as text, and
   * every field holding a hard-coded metric. Keys are not audited. Paths start at {@value
   * #CONTENT_PATH}.
   *
   * @throws ValidationException when a value is not JSON
   */
  public AuditReport auditContent(Map<String, ?> content) {
    return matcher.scanContent(Objects.requireNonNull(content, "content"), CONTENT_PATH);
  }

  /** The text with flagged wording rewritten; never scores lower than the text. */
  public String correctText(String text) {
    return matcher.correctText(Objects.requireNonNull(text, "text"));
  }

  /**
   * A corrected copy of a JSON object: strings rewritten as by {@link #correctText}, metric
   * literals replaced by their marker ({@code "confidence": 0.95} becomes {@code "confidence":
   * "calculated_confidence_score"}). Immutable; never scores lower than the original.
   */
  public Map<String, Object> correctContent(Map<String, ?> content) {
    return matcher.correctContent(Objects.requireNonNull(content, "content"), CONTENT_PATH);
  }

  /**
   * The message with integrity_score and audit_flags set from an audit of its content. The flags
   * are replaced, one per violation ({@link Violation#flag()}).
   */
  public NisMessage audit(NisMessage message) {
    AuditReport report = auditContent(message.content());
    return message.toBuilder()
        .integrityScore(report.integrityScore())
        .auditFlags(report.flags())
        .build();
  }

  /**
   * Audits an outgoing message and decides: PASS at or above the threshold (or for an exempt
   * type); else, per the config, CORRECTED (content rewritten, flagged {@value
   * #AUTO_CORRECTED_FLAG}, scoring at or above the threshold) or QUARANTINED with the reasons.
   */
  public AuditDecision decide(NisMessage message) {
    AuditReport report = auditContent(message.content());
    NisMessage audited =
        message.toBuilder()
            .integrityScore(report.integrityScore())
            .auditFlags(report.flags())
            .build();
    double threshold = config.threshold();
    if (report.integrityScore() >= threshold
        || config.exemptTypes().contains(message.messageType())) {
      return new AuditDecision(Action.PASS, audited, report, threshold, List.of());
    }
    List<String> reasons = new ArrayList<>();
    reasons.add(
        "integrity score " + report.integrityScore() + " is below the threshold " + threshold
            + " (" + report.count(Severity.HIGH) + " high, " + report.count(Severity.MEDIUM)
            + " medium, " + report.count(Severity.LOW) + " low"
            + (report.unlisted() > 0 ? " among the first " + report.violations().size() + " of "
                + report.violationCount() + " violations" : "") + ")");
    report.violations().forEach(violation -> reasons.add(violation.description()));
    if (report.unlisted() > 0) {
      reasons.add(report.unlisted() + " more violations, not listed");
    }
    if (config.onLowScore() == SelfAuditConfig.LowScoreAction.AUTO_CORRECT) {
      Map<String, Object> corrected = correctContent(message.content());
      AuditReport after = auditContent(corrected);
      if (after.integrityScore() >= threshold) {
        List<String> flags = new ArrayList<>(after.flags());
        flags.add(AUTO_CORRECTED_FLAG);
        NisMessage correctedMessage =
            message.toBuilder()
                .content(corrected)
                .integrityScore(after.integrityScore())
                .auditFlags(flags)
                .build();
        return new AuditDecision(Action.CORRECTED, correctedMessage, report, threshold, reasons);
      }
      reasons.add(
          "after auto-correction the score is " + after.integrityScore()
              + ", still below the threshold " + threshold);
    }
    return new AuditDecision(Action.QUARANTINED, audited, report, threshold, reasons);
  }

  /**
   * The answer to {@code POST /audit {"text": ...}}: integrity_score, status, violation_count,
   * violations, threshold, corrected (the corrected text) and corrected_integrity_score.
   */
  public Map<String, Object> reportJson(String text) {
    String corrected = correctText(text);
    return reportJson(auditText(text), corrected, auditText(corrected));
  }

  /**
   * The answer to {@code POST /audit {"content": {...}}}: as {@link #reportJson(String)}, with
   * corrected the corrected content.
   *
   * @throws ValidationException when a value is not JSON
   */
  public Map<String, Object> reportJson(Map<String, ?> content) {
    Map<String, Object> corrected = correctContent(content);
    return reportJson(auditContent(content), corrected, auditContent(corrected));
  }

  private Map<String, Object> reportJson(AuditReport report, Object corrected, AuditReport after) {
    Map<String, Object> json = new LinkedHashMap<>(report.toJson());
    json.put("threshold", config.threshold());
    json.put("corrected", corrected);
    json.put("corrected_integrity_score", after.integrityScore());
    return json;
  }

  @Override
  public String toString() {
    return "SelfAuditEngine[threshold=" + config.threshold() + ", onLowScore="
        + config.onLowScore() + ", rules=" + config.rules().rules().size() + "]";
  }
}
