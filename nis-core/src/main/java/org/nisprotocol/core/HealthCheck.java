package org.nisprotocol.core;

import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * The outcome of one probe of a backend: a round trip to its server, bounded by a timeout.
 *
 * @param status what the probe found
 * @param latency how long the round trip took
 * @param detail why it is not healthy, when it is not
 */
public record HealthCheck(HealthStatus status, Duration latency, Optional<String> detail) {
  public HealthCheck {
    Objects.requireNonNull(status, "status");
    Objects.requireNonNull(latency, "latency");
    Objects.requireNonNull(detail, "detail");
  }

  public static HealthCheck healthy(Duration latency) {
    return new HealthCheck(HealthStatus.HEALTHY, latency, Optional.empty());
  }

  public static HealthCheck of(HealthStatus status, Duration latency, String detail) {
    return new HealthCheck(status, latency, Optional.of(detail));
  }
}
