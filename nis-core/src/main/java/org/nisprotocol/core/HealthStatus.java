package org.nisprotocol.core;

import java.util.Locale;

/** How well a backend serves; on the wire lowercase ({@code "degraded"}). */
public enum HealthStatus {
  /** Answers in time and keeps nothing waiting. */
  HEALTHY,
  /** Works, but with a fallback in use or work waiting (e.g. messages in the spool). */
  DEGRADED,
  /** Does not answer. */
  UNHEALTHY,
  /** Not checked yet. */
  UNKNOWN;

  public String wireName() {
    return name().toLowerCase(Locale.ROOT);
  }
}
