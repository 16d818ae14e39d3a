package org.nisprotocol.agents;

import com.fasterxml.jackson.core.type.TypeReference;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.MessagePriority;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;

/**
 * What the self-audit decided for one outgoing message. Nothing is dropped: a message either
 * passes, passes corrected, or is quarantined, and then {@link #alert} carries it with the
 * reasons to nis-audit-alerts.
 *
 * @param action what to do with the message
 * @param message for {@link Action#PASS} and {@link Action#CORRECTED} the message to publish (with
 *     integrity_score and audit_flags filled in, the corrected content for CORRECTED); for {@link
 *     Action#QUARANTINED} the audited original, not to be published on its topic
 * @param report the audit of the original content
 * @param threshold the threshold the score was held against
 * @param reasons why the message did not pass as it was; empty for PASS
 */
public record AuditDecision(
    Action action, NisMessage message, AuditReport report, double threshold, List<String> reasons) {

  /** The three outcomes of a decision. */
  public enum Action {
    /** At or above the threshold, or of an exempt type: publish {@link #message()}. */
    PASS,
    /** Below the threshold, auto-corrected to at or above it: publish the corrected message. */
    CORRECTED,
    /** Below the threshold even after any correction: publish only {@link #alert}. */
    QUARANTINED
  }

  private static final TypeReference<Map<String, Object>> JSON_OBJECT = new TypeReference<>() {};
  private static final MessageCodec CODEC = MessageCodec.create();

  public AuditDecision {
    Objects.requireNonNull(action, "action");
    Objects.requireNonNull(message, "message");
    Objects.requireNonNull(report, "report");
    reasons = List.copyOf(reasons);
  }

  /**
   * The audit_alert message to publish for a corrected or quarantined message (topic
   * nis-audit-alerts, correlation_id the message's id); empty for PASS. Priority high for a
   * quarantine, normal for a correction. Its content is {@link #alertContent()}.
   */
  public Optional<NisMessage> alert(String sourceAgent) {
    if (action == Action.PASS) {
      return Optional.empty();
    }
    return Optional.of(
        NisMessage.builder(MessageType.AUDIT_ALERT, sourceAgent)
            .priority(action == Action.QUARANTINED ? MessagePriority.HIGH : MessagePriority.NORMAL)
            .correlationId(message.messageId())
            .content(alertContent())
            .build());
  }

  /**
   * The alert as JSON: alert_type "integrity_violation", action, severity ("high" for a
   * quarantine, "medium" for a correction, "none" for PASS), message_id, message_type,
   * source_agent, topic, integrity_score (of the original), published_integrity_score (of what is
   * published, when something is), threshold, reasons, violation_count, violations (the first
   * 100), and for a quarantine the whole quarantined_message so that it can be reviewed and
   * released.
   */
  public Map<String, Object> alertContent() {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("alert_type", "integrity_violation");
    json.put("action", action.name().toLowerCase(java.util.Locale.ROOT));
    json.put("severity", switch (action) {
      case PASS -> "none";
      case CORRECTED -> "medium";
      case QUARANTINED -> "high";
    });
    json.put("message_id", message.messageId());
    json.put("message_type", message.messageType().wireName());
    json.put("source_agent", message.sourceAgent());
    json.put("topic", message.topic());
    json.put("integrity_score", report.integrityScore());
    if (action != Action.QUARANTINED) {
      json.put("published_integrity_score", message.integrityScore().orElse(100));
    }
    json.put("threshold", threshold);
    json.put("reasons", reasons);
    json.put("violation_count", report.violationCount());
    json.put("violations", report.violations().stream().map(Violation::toJson).toList());
    if (action == Action.QUARANTINED) {
      json.put("quarantined_message", asJson(message));
    }
    return json;
  }

  private static Map<String, Object> asJson(NisMessage message) {
    try {
      return MessageCodec.mapper().readValue(CODEC.encode(message), JSON_OBJECT);
    } catch (IOException e) {
      throw new UncheckedIOException("could not re-read the encoding of " + message, e);
    }
  }
}
