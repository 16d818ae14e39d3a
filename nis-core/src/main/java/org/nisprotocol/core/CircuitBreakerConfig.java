package org.nisprotocol.core;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Settings of a {@link CircuitBreaker}. Immutable.
 *
 * @param failureThreshold consecutive failures that open the breaker (default {@value
 *     #DEFAULT_FAILURE_THRESHOLD})
 * @param openDuration how long it stays open before letting probes through (default 30 s)
 * @param halfOpenSuccesses successful probes that close it again (default {@value
 *     #DEFAULT_HALF_OPEN_SUCCESSES}); also how many probes may run at once
 */
public record CircuitBreakerConfig(
    int failureThreshold, Duration openDuration, int halfOpenSuccesses) {
  public static final int DEFAULT_FAILURE_THRESHOLD = 5;
  public static final Duration DEFAULT_OPEN_DURATION = Duration.ofSeconds(30);
  public static final int DEFAULT_HALF_OPEN_SUCCESSES = 2;

  /**
   * @throws ValidationException listing every field out of range
   */
  public CircuitBreakerConfig {
    Objects.requireNonNull(openDuration, "openDuration");
    List<String> problems = new ArrayList<>();
    if (failureThreshold < 1) {
      problems.add("failureThreshold must be at least 1, got " + failureThreshold);
    }
    if (openDuration.isNegative()) {
      problems.add("openDuration must not be negative, got " + openDuration);
    }
    if (halfOpenSuccesses < 1) {
      problems.add("halfOpenSuccesses must be at least 1, got " + halfOpenSuccesses);
    }
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
  }

  /** 5 failures, 30 s open, 2 successful probes to close. */
  public static CircuitBreakerConfig defaults() {
    return new CircuitBreakerConfig(
        DEFAULT_FAILURE_THRESHOLD, DEFAULT_OPEN_DURATION, DEFAULT_HALF_OPEN_SUCCESSES);
  }

  public CircuitBreakerConfig withFailureThreshold(int failureThreshold) {
    return new CircuitBreakerConfig(failureThreshold, openDuration, halfOpenSuccesses);
  }

  public CircuitBreakerConfig withOpenDuration(Duration openDuration) {
    return new CircuitBreakerConfig(failureThreshold, openDuration, halfOpenSuccesses);
  }

  public CircuitBreakerConfig withHalfOpenSuccesses(int halfOpenSuccesses) {
    return new CircuitBreakerConfig(failureThreshold, openDuration, halfOpenSuccesses);
  }
}
