package org.nisprotocol.agents;

/**
 * How much a self-audit violation costs the integrity score: HIGH 10 points, MEDIUM 5, LOW 2. The
 * score of a text is {@code max(0, 100 - 10·HIGH - 5·MEDIUM - 2·LOW)}.
 */
public enum Severity {
  HIGH(10),
  MEDIUM(5),
  LOW(2);

  private final int penalty;

  Severity(int penalty) {
    this.penalty = penalty;
  }

  /** Points taken off the integrity score for one violation of this severity. */
  public int penalty() {
    return penalty;
  }
}
