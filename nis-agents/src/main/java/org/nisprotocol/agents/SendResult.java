package org.nisprotocol.agents;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalDouble;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.PublishReceipt;

/**
 * What {@link InfrastructureCoordinator#sendMessage} did.
 *
 * @param receipt what the bus accepted: the message (or its corrected form) on its topic, or for
 *     a quarantined message the alert on nis-audit-alerts
 * @param messageId the id of the message sent (the original's id, also for a quarantine)
 * @param audit what the self-audit decided (PASS when self-audit is off)
 * @param audited whether the message was audited
 * @param integrityScore the audit's score of the original content, when audited
 */
public record SendResult(
    PublishReceipt receipt,
    String messageId,
    AuditDecision.Action audit,
    boolean audited,
    OptionalDouble integrityScore) {
  public SendResult {
    Objects.requireNonNull(receipt, "receipt");
    Objects.requireNonNull(messageId, "messageId");
    Objects.requireNonNull(audit, "audit");
    Objects.requireNonNull(integrityScore, "integrityScore");
  }

  static SendResult unaudited(PublishReceipt receipt, NisMessage message) {
    return new SendResult(receipt, message.messageId(), AuditDecision.Action.PASS, false, OptionalDouble.empty());
  }

  static SendResult audited(PublishReceipt receipt, AuditDecision decision) {
    return new SendResult(
        receipt,
        decision.message().messageId(),
        decision.action(),
        true,
        OptionalDouble.of(decision.report().integrityScore()));
  }

  /** As JSON: message_id, topic, status, and when audited audit and integrity_score. */
  public Map<String, Object> toJson() {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("message_id", messageId);
    json.put("topic", receipt.topic());
    json.put("status", receipt.status().wireName());
    if (audited) {
      json.put("audit", audit.name().toLowerCase(java.util.Locale.ROOT));
      json.put("integrity_score", integrityScore.isPresent() ? integrityScore.getAsDouble() : null);
    }
    return json;
  }
}
