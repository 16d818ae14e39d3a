package org.nisprotocol.agents;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What a self-audit found in one text or one JSON content.
 *
 * @param integrityScore {@code max(0, 100 - 10·HIGH - 5·MEDIUM - 2·LOW)}; 100 with no violations
 * @param status the verdict from the number of violations ({@link AuditStatus#of})
 * @param violations what was flagged, in document order
 */
public record AuditReport(double integrityScore, AuditStatus status, List<Violation> violations) {
  public AuditReport {
    Objects.requireNonNull(status, "status");
    violations = List.copyOf(violations);
    if (integrityScore != scoreOf(violations) || status != AuditStatus.of(violations.size())) {
      throw new IllegalArgumentException(
          "score " + integrityScore + " and status " + status + " do not follow from the "
              + violations.size() + " violations; use AuditReport.of(violations)");
    }
  }

  /** The report of these violations: score and status computed from them. */
  public static AuditReport of(List<Violation> violations) {
    return new AuditReport(
        scoreOf(violations), AuditStatus.of(violations.size()), violations);
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

  /** The number of violations of a severity. */
  public long count(Severity severity) {
    return violations.stream().filter(v -> v.severity() == severity).count();
  }

  /** The flags for a message's audit_flags, one a violation ({@link Violation#flag()}). */
  public List<String> flags() {
    List<String> flags = new ArrayList<>(violations.size());
    violations.forEach(violation -> flags.add(violation.flag()));
    return flags;
  }

  /** As JSON: integrity_score, status, violation_count, violations. */
  public Map<String, Object> toJson() {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("integrity_score", integrityScore);
    json.put("status", status.name());
    json.put("violation_count", violations.size());
    List<Object> list = new ArrayList<>(violations.size());
    violations.forEach(violation -> list.add(violation.toJson()));
    json.put("violations", list);
    return json;
  }
}
