package org.nisprotocol.testkit;

import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.concurrent.atomic.AtomicReference;

/** A clock that moves only when a test says so. Thread-safe. */
public final class ManualClock implements InstantSource {
  private final AtomicReference<Instant> now;

  private ManualClock(Instant start) {
    this.now = new AtomicReference<>(start);
  }

  /** A clock at a fixed, arbitrary instant. */
  public static ManualClock create() {
    return new ManualClock(Instant.parse("2026-01-01T00:00:00Z"));
  }

  public static ManualClock at(Instant start) {
    return new ManualClock(start);
  }

  @Override
  public Instant instant() {
    return now.get();
  }

  /** Moves the clock forward. */
  public void advance(Duration duration) {
    if (duration.isNegative()) {
      throw new IllegalArgumentException("a clock only moves forward; got " + duration);
    }
    now.updateAndGet(instant -> instant.plus(duration));
  }
}
