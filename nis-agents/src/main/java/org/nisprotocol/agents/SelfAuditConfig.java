package org.nisprotocol.agents;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.ValidationException;

/**
 * Settings of the {@link SelfAuditEngine}. Immutable; start from {@link #defaults()}.
 *
 * @param rules what is flagged (default {@link AuditRuleSet#defaults()})
 * @param threshold messages scoring below it are corrected or quarantined (default {@value
 *     #DEFAULT_THRESHOLD}); 0 lets everything pass
 * @param onLowScore what happens to a message below the threshold (default {@link
 *     LowScoreAction#AUTO_CORRECT}; a message still below it after correction is quarantined)
 * @param exemptTypes message types that are scored and flagged but always pass (default: {@code
 *     audit_alert}, since alerts quote the wording they report and would otherwise quarantine
 *     themselves)
 */
public record SelfAuditConfig(
    AuditRuleSet rules, double threshold, LowScoreAction onLowScore, Set<MessageType> exemptTypes) {
  public static final double DEFAULT_THRESHOLD = 70;

  private static final SelfAuditConfig DEFAULTS =
      new SelfAuditConfig(
          AuditRuleSet.defaults(),
          DEFAULT_THRESHOLD,
          LowScoreAction.AUTO_CORRECT,
          EnumSet.of(MessageType.AUDIT_ALERT));

  /** What to do with a message that scores below the threshold. Neither drops it. */
  public enum LowScoreAction {
    /** Rewrite the content; quarantine if it still scores below the threshold. */
    AUTO_CORRECT,
    /** Hold the message back and raise an alert with the reasons. */
    QUARANTINE
  }

  /**
   * @throws ValidationException listing every missing or out-of-range setting
   */
  public SelfAuditConfig {
    List<String> problems = new ArrayList<>();
    if (rules == null) {
      problems.add("rules must not be null");
    }
    if (Double.isNaN(threshold) || threshold < 0 || threshold > 100) {
      problems.add("threshold must be between 0 and 100, got " + threshold);
    }
    if (onLowScore == null) {
      problems.add("onLowScore must not be null");
    }
    if (exemptTypes == null) {
      problems.add("exemptTypes must not be null (use an empty set)");
    }
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
    exemptTypes = exemptTypes.isEmpty() ? Set.of() : Set.copyOf(EnumSet.copyOf(exemptTypes));
  }

  /** The defaults (see the parameters). */
  public static SelfAuditConfig defaults() {
    return DEFAULTS;
  }

  public SelfAuditConfig withRules(AuditRuleSet rules) {
    return new SelfAuditConfig(Objects.requireNonNull(rules, "rules"), threshold, onLowScore,
        exemptTypes);
  }

  public SelfAuditConfig withThreshold(double threshold) {
    return new SelfAuditConfig(rules, threshold, onLowScore, exemptTypes);
  }

  public SelfAuditConfig withOnLowScore(LowScoreAction onLowScore) {
    return new SelfAuditConfig(rules, threshold, onLowScore, exemptTypes);
  }

  public SelfAuditConfig withExemptTypes(Set<MessageType> exemptTypes) {
    return new SelfAuditConfig(rules, threshold, onLowScore, exemptTypes);
  }
}
