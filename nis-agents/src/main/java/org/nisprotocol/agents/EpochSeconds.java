package org.nisprotocol.agents;

import java.math.BigDecimal;
import java.time.Instant;

/**
 * Times in status and health JSON: epoch seconds with milliseconds, written plainly
 * ({@code 1795468072.216}); as a double, Jackson writes such a number as {@code 1.795468072216E9}.
 */
final class EpochSeconds {
  private EpochSeconds() {}

  static BigDecimal of(Instant instant) {
    return BigDecimal.valueOf(instant.toEpochMilli(), 3);
  }
}
