package org.nisprotocol.core;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * How often and how fast a failed delivery is tried again: exponential backoff with jitter.
 * Attempt n (n = 1 for the first retry) waits {@code min(initialDelay * 2^(n-1), maxDelay)}
 * multiplied by a random factor in [1 - jitter, 1 + jitter).
 *
 * @param maxAttempts deliveries in all, the first included (default {@value #DEFAULT_MAX_ATTEMPTS})
 * @param initialDelay wait before the first retry (default 1 s)
 * @param maxDelay cap on any one wait (default 30 s)
 * @param jitter relative spread of each wait, 0 to 1 (default {@value #DEFAULT_JITTER})
 */
public record RetryPolicy(int maxAttempts, Duration initialDelay, Duration maxDelay, double jitter) {
  public static final int DEFAULT_MAX_ATTEMPTS = 3;
  public static final Duration DEFAULT_INITIAL_DELAY = Duration.ofSeconds(1);
  public static final Duration DEFAULT_MAX_DELAY = Duration.ofSeconds(30);
  public static final double DEFAULT_JITTER = 0.5;

  /**
   * @throws ValidationException listing every field out of range
   */
  public RetryPolicy {
    Objects.requireNonNull(initialDelay, "initialDelay");
    Objects.requireNonNull(maxDelay, "maxDelay");
    List<String> problems = new ArrayList<>();
    if (maxAttempts < 1) {
      problems.add("maxAttempts must be at least 1, got " + maxAttempts);
    }
    if (initialDelay.isNegative()) {
      problems.add("initialDelay must not be negative, got " + initialDelay);
    }
    if (maxDelay.compareTo(initialDelay) < 0) {
      problems.add("maxDelay " + maxDelay + " is below initialDelay " + initialDelay);
    }
    if (!(jitter >= 0 && jitter <= 1)) {
      problems.add("jitter must be between 0 and 1, got " + jitter);
    }
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
  }

  /** 3 attempts, 1 s doubling to at most 30 s, jitter ±50 %. */
  public static RetryPolicy defaults() {
    return new RetryPolicy(
        DEFAULT_MAX_ATTEMPTS, DEFAULT_INITIAL_DELAY, DEFAULT_MAX_DELAY, DEFAULT_JITTER);
  }

  /**
   * The wait before retry number {@code retry} (1-based).
   *
   * @param random a uniform draw in [0, 1)
   */
  public Duration delayBefore(int retry, double random) {
    if (retry < 1) {
      throw new IllegalArgumentException("retry is 1-based, got " + retry);
    }
    long capped = maxDelay.toNanos();
    long exponential = Math.min(initialDelay.toNanos(), capped);
    for (int i = 1; i < retry && exponential < capped; i++) {
      exponential = exponential > capped / 2 ? capped : exponential * 2;
    }
    double factor = 1 - jitter + 2 * jitter * random;
    return Duration.ofNanos((long) (exponential * factor));
  }
}
