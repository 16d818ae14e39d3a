package org.nisprotocol.testkit;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;

/**
 * Measures how long this JVM was kept from running, so that a timing assertion can tell a call
 * that waited from a machine that stalled.
 *
 * <p>A watcher thread wakes every millisecond; a gap between two wake-ups longer than {@link
 * #STALL_THRESHOLD} is a pause of the whole JVM (the host took the CPU, a garbage collection
 * stopped the world, the machine swapped). A call timed with {@link #time} reports its elapsed
 * time and the stalls inside it: an assertion on the difference fails for a call that really
 * waited (the watcher kept waking meanwhile) and not for one the machine held up. What it does
 * not see: threads slowed by sharing the CPU with others (a sleeper that wakes every millisecond
 * is scheduled promptly), and gaps below the threshold; assertions keep a margin for those.
 *
 * <p>One watcher per JVM, a daemon started on first use. Thread-safe.
 */
public final class StallWatch {
  /** Gaps between the watcher's wake-ups longer than this are stalls. */
  public static final Duration STALL_THRESHOLD = Duration.ofMillis(10);

  private static final long PERIOD_NANOS = TimeUnit.MILLISECONDS.toNanos(1);
  private static final Duration KEPT = Duration.ofMinutes(10);
  private static final Duration LOOK_PAST_LIMIT = Duration.ofSeconds(30);

  private static final StallWatch SHARED = new StallWatch();

  private final StallLog log = new StallLog(PERIOD_NANOS, STALL_THRESHOLD.toNanos(), KEPT.toNanos(), System.nanoTime());

  private StallWatch() {
    Thread watcher = new Thread(this::watch, "nis-stall-watch");
    watcher.setDaemon(true);
    watcher.setPriority(Thread.MAX_PRIORITY);
    watcher.start();
  }

  /** The JVM's watcher. */
  public static StallWatch shared() {
    return SHARED;
  }

  /** Runs the call on this thread and says how long it took and how much of that was stalls. */
  public <T> Timed<T> time(Supplier<T> call) {
    long start = System.nanoTime();
    T value = call.get();
    long end = System.nanoTime();
    return new Timed<>(value, Duration.ofNanos(end - start), stalledBetween(start, end));
  }

  /** How long the call took on this thread, less the stalls within it. */
  public Duration unstalledTimeOf(Runnable call) {
    return time(() -> {
      call.run();
      return null;
    }).unstalled();
  }

  /** The time between two {@link System#nanoTime()} readings less the stalls within it. */
  public Duration unstalledBetween(long fromNanos, long toNanos) {
    return Duration.ofNanos(toNanos - fromNanos).minus(stalledBetween(fromNanos, toNanos));
  }

  /**
   * The stalls between two {@link System#nanoTime()} readings. Waits until the watcher has woken
   * after {@code toNanos}, so that a stall still going on at that moment is counted whole.
   */
  public Duration stalledBetween(long fromNanos, long toNanos) {
    long giveUp = System.nanoTime() + LOOK_PAST_LIMIT.toNanos();
    while (log.lastWake() - toNanos < 0) {
      if (System.nanoTime() - giveUp > 0) {
        throw new IllegalStateException("the stall watcher has not woken for " + LOOK_PAST_LIMIT);
      }
      LockSupport.parkNanos(PERIOD_NANOS);
    }
    return Duration.ofNanos(log.stalledBetween(fromNanos, toNanos));
  }

  private void watch() {
    while (true) {
      LockSupport.parkNanos(PERIOD_NANOS);
      log.woke(System.nanoTime());
    }
  }

  /** A timed call's result, its elapsed time and the stalls within it. */
  public record Timed<T>(T value, Duration elapsed, Duration stalled) {
    /** The elapsed time less the stalls: what the call itself spent. */
    public Duration unstalled() {
      return elapsed.minus(stalled);
    }

    public long unstalledMillis() {
      return unstalled().toMillis();
    }
  }

  /** The watcher's record of stalls, fed with its wake-up times. Thread-safe. */
  static final class StallLog {
    private final long periodNanos;
    private final long thresholdNanos;
    private final long keptNanos;
    private final Deque<long[]> stalls = new ArrayDeque<>();
    private volatile long lastWake;

    StallLog(long periodNanos, long thresholdNanos, long keptNanos, long startNanos) {
      this.periodNanos = periodNanos;
      this.thresholdNanos = thresholdNanos;
      this.keptNanos = keptNanos;
      this.lastWake = startNanos;
    }

    long lastWake() {
      return lastWake;
    }

    /** The watcher woke at {@code now}: a gap since the last wake-up beyond the threshold was a stall. */
    synchronized void woke(long now) {
      long previous = lastWake;
      if (now - previous > thresholdNanos) {
        // the watcher meant to wake one period after the previous wake-up: the rest was a stall
        stalls.addLast(new long[] {previous + periodNanos, now});
      }
      while (!stalls.isEmpty() && now - stalls.peekFirst()[1] > keptNanos) {
        stalls.removeFirst();
      }
      lastWake = now;
    }

    /** How much of [from, to] the recorded stalls cover. */
    synchronized long stalledBetween(long from, long to) {
      long covered = 0;
      for (long[] stall : stalls) {
        long start = stall[0] - from > 0 ? stall[0] : from;
        long end = stall[1] - to < 0 ? stall[1] : to;
        if (end - start > 0) {
          covered += end - start;
        }
      }
      return covered;
    }
  }
}
