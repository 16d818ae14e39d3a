package org.nisprotocol.agents;

import java.util.Locale;

/** Where an agent is in its life; on the wire lowercase ({@code "processing"}). */
public enum AgentState {
  INITIALIZING,
  READY,
  PROCESSING,
  /** Working, but its recent messages failed. */
  DEGRADED,
  /** Its initialization failed; it handles nothing. */
  ERROR,
  SHUTDOWN;

  public String wireName() {
    return name().toLowerCase(Locale.ROOT);
  }
}
