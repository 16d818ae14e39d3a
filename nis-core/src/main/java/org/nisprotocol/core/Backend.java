package org.nisprotocol.core;

import java.time.Duration;

/** What every backend of a port offers: a name, a health probe, recovery and closing. */
public interface Backend extends AutoCloseable {
  /** Which backend this is, e.g. "embedded", "kafka" or "redis". */
  String name();

  /**
   * Probes the backend with a round trip to its server, waiting at most the timeout. An
   * in-process backend is always healthy.
   */
  default HealthCheck checkHealth(Duration timeout) {
    return HealthCheck.healthy(Duration.ZERO);
  }

  /**
   * Lets traffic flow again after an outage as soon as the server answers (for example by
   * closing an open circuit breaker after a successful probe) instead of waiting for the next
   * scheduled retry. The coordinator's auto-recovery loop calls it for a backend found unhealthy
   * or degraded. Backends that reconnect by themselves need do nothing: the default.
   */
  default void recover() {}

  /** Releases the backend's resources. Idempotent. */
  @Override
  void close();
}
