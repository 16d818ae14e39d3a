package org.nisprotocol.agents;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.nisprotocol.core.ValidationException;

/**
 * An immutable, ordered set of self-audit rules, compiled for matching when built. Change it by
 * making a new one: {@code AuditRuleSet.defaults().without("hype.robust").withSeverity(
 * "claim.guaranteed", Severity.HIGH).with(AuditRule.phrase(...))}.
 *
 * <p>Checked when built, all problems reported at once: ids are unique, and every replacement is
 * itself clean under the set (auto-correction must not write what the audit flags).
 *
 * <p>The defaults flag hype words (revolutionary, perfect, robust, comprehensive,
 * interpretability, ...), unsubstantiated claims (zero hallucination, real-time processing,
 * guaranteed, "95% accuracy", "accuracy of 95%", "10x faster") and hard-coded metric values
 * (confidence, accuracy, precision, recall, f1, success rate, reliability, certainty, auc; exempt
 * next to a key evidence, method, computed_by, derived_from or measured_by). Thread-safe.
 */
public final class AuditRuleSet {
  private static final AuditRuleSet DEFAULTS = new AuditRuleSet(DefaultRules.rules());

  private final List<AuditRule> rules;
  private final RuleMatcher matcher;

  private AuditRuleSet(List<AuditRule> rules) {
    this.rules = List.copyOf(rules);
    List<String> problems = new ArrayList<>();
    Map<String, AuditRule> byId = new LinkedHashMap<>();
    for (AuditRule rule : this.rules) {
      if (byId.putIfAbsent(rule.id(), rule) != null) {
        problems.add("rule id '" + rule.id() + "' is used twice");
      }
    }
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
    this.matcher = new RuleMatcher(this.rules);
    for (AuditRule rule : this.rules) {
      for (String replacement : replacementsOf(rule)) {
        List<Violation> flagged = matcher.scanText(replacement, "replacement");
        if (!flagged.isEmpty()) {
          problems.add(
              "rule '" + rule.id() + "': replacement '" + replacement + "' is itself flagged by rule '"
                  + flagged.get(0).ruleId() + "'; choose wording the rules accept");
        }
      }
    }
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
  }

  private static List<String> replacementsOf(AuditRule rule) {
    return switch (rule) {
      case AuditRule.Phrase phrase -> List.of(phrase.replacement());
      case AuditRule.Regex regex -> List.of(regex.expandWithPlaceholder("value"));
      case AuditRule.MetricLiteral metric ->
          metric.metricNames().stream()
              .map(name -> AuditRule.MetricLiteral.marker(Words.split(name)))
              .toList();
    };
  }

  /** The default rules (see the class comment). */
  public static AuditRuleSet defaults() {
    return DEFAULTS;
  }

  /**
   * A rule set of exactly these rules.
   *
   * @throws ValidationException listing duplicate ids and replacements the set would flag
   */
  public static AuditRuleSet of(List<AuditRule> rules) {
    return new AuditRuleSet(rules);
  }

  /** The rules, in order. */
  public List<AuditRule> rules() {
    return rules;
  }

  public Optional<AuditRule> rule(String id) {
    return rules.stream().filter(rule -> rule.id().equals(id)).findFirst();
  }

  /** This set with the rule added, or replacing the rule of the same id in its place. */
  public AuditRuleSet with(AuditRule rule) {
    List<AuditRule> copy = new ArrayList<>(rules);
    int index = indexOf(rule.id());
    if (index >= 0) {
      copy.set(index, rule);
    } else {
      copy.add(rule);
    }
    return new AuditRuleSet(copy);
  }

  /**
   * This set without the rule.
   *
   * @throws ValidationException when no rule has that id
   */
  public AuditRuleSet without(String ruleId) {
    List<AuditRule> copy = new ArrayList<>(rules);
    copy.remove(requireIndex(ruleId));
    return new AuditRuleSet(copy);
  }

  /**
   * This set with one rule's severity changed.
   *
   * @throws ValidationException when no rule has that id
   */
  public AuditRuleSet withSeverity(String ruleId, Severity severity) {
    List<AuditRule> copy = new ArrayList<>(rules);
    int index = requireIndex(ruleId);
    copy.set(index, copy.get(index).withSeverity(severity));
    return new AuditRuleSet(copy);
  }

  /** This set with the severity of every rule of a type changed. */
  public AuditRuleSet withSeverity(ViolationType type, Severity severity) {
    List<AuditRule> copy = new ArrayList<>(rules.size());
    for (AuditRule rule : rules) {
      copy.add(rule.type() == type ? rule.withSeverity(severity) : rule);
    }
    return new AuditRuleSet(copy);
  }

  RuleMatcher matcher() {
    return matcher;
  }

  private int indexOf(String ruleId) {
    for (int i = 0; i < rules.size(); i++) {
      if (rules.get(i).id().equals(ruleId)) {
        return i;
      }
    }
    return -1;
  }

  private int requireIndex(String ruleId) {
    int index = indexOf(ruleId);
    if (index < 0) {
      throw new ValidationException(
          "no rule '" + ruleId + "' in this set; its rules are "
              + rules.stream().map(AuditRule::id).toList());
    }
    return index;
  }

  @Override
  public String toString() {
    return "AuditRuleSet" + rules.stream().map(AuditRule::id).toList();
  }
}
