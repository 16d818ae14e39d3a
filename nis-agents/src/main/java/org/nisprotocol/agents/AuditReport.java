package org.nisprotocol.agents;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What a self-audit found in one text or one JSON content.
 *
 * <p>At most {@value #MAX_LISTED} violations are listed, the first in document order; {@code
 * violationCount} counts them all. The score and the status are those of all of them: a hundred
 * violations already take the score to 0 (each costs at least 2) and the status to CRITICAL.
 *
 * @param integrityScore {@code max(0, 100 - 10·HIGH - 5·MEDIUM - 2·LOW)}; 100 with no violations
 * @param status the verdict from the number of violations ({@link AuditStatus#of})
 * @param violations what was flagged, in document order, the first {@value #MAX_LISTED} at most
 * @param violationCount how many violations were found, listed or not
 */
public record AuditReport(double integrityScore, AuditStatus status, List<Violation> violations, int violationCount) {
  /** The most violations a report lists (and flags a message with, one each). */
  public static final int MAX_LISTED = 100;

  /** The audit flag that counts the violations not listed: {@code more_violations:<n>}. */
  public static final String MORE_VIOLATIONS_FLAG = "more_violations";

  public AuditReport {
    Objects.requireNonNull(status, "status");
    violations = List.copyOf(violations);
    if (violations.size() != Math.min(violationCount, MAX_LISTED)
        || integrityScore != scoreOf(violations)
        || status != AuditStatus.of(violationCount)) {
      throw new IllegalArgumentException(
          "score " + integrityScore + ", status " + status + " and count " + violationCount
              + " do not follow from the " + violations.size() + " violations listed; use AuditReport.of(violations)");
    }
  }

  /** The report of these violations: score, status and count computed from them, the first {@value #MAX_LISTED} listed. */
  public static AuditReport of(List<Violation> violations) {
    return of(violations.subList(0, Math.min(violations.size(), MAX_LISTED)), violations.size());
  }

  /** The report of {@code count} violations, of which these are the first ({@value #MAX_LISTED}, or all). */
  static AuditReport of(List<Violation> listed, int count) {
    return new AuditReport(scoreOf(listed), AuditStatus.of(count), listed, count);
  }

  /** {@code max(0, 100 - sum of penalties)}. */
  static double scoreOf(List<Violation> violations) {
    int penalty = 0;
    for (Violation violation : violations) {
      penalty += violation.severity().penalty();
      if (penalty >= 100) {
        return 0;
      }
    }
    return 100 - penalty;
  }

  /** The number of listed violations of a severity. */
  public long count(Severity severity) {
    return violations.stream().filter(v -> v.severity() == severity).count();
  }

  /** How many violations are not listed. */
  public int unlisted() {
    return violationCount - violations.size();
  }

  /**
   * The flags for a message's audit_flags: one a listed violation ({@link Violation#flag()}), then
   * {@code more_violations:<n>} when {@code n} more are not listed.
   */
  public List<String> flags() {
    List<String> flags = new ArrayList<>(violations.size() + 1);
    violations.forEach(violation -> flags.add(violation.flag()));
    if (unlisted() > 0) {
      flags.add(MORE_VIOLATIONS_FLAG + ':' + unlisted());
    }
    return flags;
  }

  /** As JSON: integrity_score, status, violation_count, violations, and violations_not_listed when some are not. */
  public Map<String, Object> toJson() {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("integrity_score", integrityScore);
    json.put("status", status.name());
    json.put("violation_count", violationCount);
    List<Object> list = new ArrayList<>(violations.size());
    violations.forEach(violation -> list.add(violation.toJson()));
    json.put("violations", list);
    if (unlisted() > 0) {
      json.put("violations_not_listed", unlisted());
    }
    return json;
  }
}
