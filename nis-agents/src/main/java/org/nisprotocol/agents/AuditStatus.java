package org.nisprotocol.agents;

/**
 * The verdict of an audit report, from the number of violations: none EXCELLENT, up to 5 GOOD, up
 * to 15 NEEDS_IMPROVEMENT, more CRITICAL.
 */
public enum AuditStatus {
  EXCELLENT,
  GOOD,
  NEEDS_IMPROVEMENT,
  CRITICAL;

  /** The status of a report with this many violations. */
  public static AuditStatus of(int violations) {
    if (violations < 0) {
      throw new IllegalArgumentException("violations must be >= 0, got " + violations);
    }
    if (violations == 0) {
      return EXCELLENT;
    }
    if (violations <= 5) {
      return GOOD;
    }
    return violations <= 15 ? NEEDS_IMPROVEMENT : CRITICAL;
  }
}
