package org.nisprotocol.kafka;

import java.time.Duration;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A subscription's consumer errors in a row, the wait before the next try (1 s, doubled on each
 * error up to 30 s), and their logging: the first of a streak with its stack trace, the next ones
 * in a line. A poll without error ends the streak only once the consumer has partitions again, or
 * no error came for 30 s: a poll that only began to join the group proves nothing. Used by the
 * subscription's poll thread only.
 */
final class ConsumerErrorStreak {
  private static final Duration FIRST_WAIT = Duration.ofSeconds(1);
  private static final Duration LONGEST_WAIT = Duration.ofSeconds(30);

  private static final Logger log = LoggerFactory.getLogger(ConsumerErrorStreak.class);

  private final String group;
  private final LongSupplier nanoTime;
  private int count;
  private Duration nextWait = FIRST_WAIT;
  private long lastErrorNanos;

  /**
   * @param group the consumer group, for the log
   * @param nanoTime the time source, {@link System#nanoTime} outside tests
   */
  ConsumerErrorStreak(String group, LongSupplier nanoTime) {
    this.group = group;
    this.nanoTime = nanoTime;
  }

  /** Counts and logs an error; the wait before the next try. */
  Duration failed(Exception error) {
    count++;
    lastErrorNanos = nanoTime.getAsLong();
    Duration wait = nextWait;
    if (count == 1) {
      log.error("consumer of group {} failed; it tries again in {} s, then less often (every {} s at most)",
          group, wait.toSeconds(), LONGEST_WAIT.toSeconds(), error);
    } else {
      log.warn("consumer of group {} failed again ({} in a row), next try in {} s: {}",
          group, count, wait.toSeconds(), error.toString());
    }
    Duration doubled = wait.multipliedBy(2);
    nextWait = doubled.compareTo(LONGEST_WAIT) < 0 ? doubled : LONGEST_WAIT;
    return wait;
  }

  /**
   * A poll went without error; {@code hasPartitions} tells whether the consumer has partitions
   * assigned (asked only during a streak).
   */
  void pollSucceeded(BooleanSupplier hasPartitions) {
    if (count > 0 && (hasPartitions.getAsBoolean() || nanoTime.getAsLong() - lastErrorNanos > LONGEST_WAIT.toNanos())) {
      log.info("consumer of group {} works again after {} failed tries", group, count);
      count = 0;
      nextWait = FIRST_WAIT;
    }
  }

  /** Errors in the current streak (0 when there is none). */
  int count() {
    return count;
  }
}
