package org.nisprotocol.testkit;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.nisprotocol.testkit.StallWatch.StallLog;

class StallWatchTest {
  private static final long MS = 1_000_000;

  @Test
  void wakeUpsOnTimeRecordNoStall() {
    StallLog log = new StallLog(MS, 10 * MS, 1_000 * MS, 0);
    for (long t = MS; t <= 100 * MS; t += 2 * MS) {
      log.woke(t);
    }
    assertThat(log.stalledBetween(0, 100 * MS)).isZero();
    assertThat(log.lastWake()).isEqualTo(99 * MS);
  }

  @Test
  void aLateWakeUpIsAStallFromWhenTheWatcherMeantToWake() {
    StallLog log = new StallLog(MS, 10 * MS, 1_000 * MS, 0);
    log.woke(MS);
    log.woke(500 * MS); // meant to wake at 2 ms

    assertThat(log.stalledBetween(0, 600 * MS)).isEqualTo(498 * MS);
    assertThat(log.stalledBetween(100 * MS, 200 * MS)).as("only the overlap counts").isEqualTo(100 * MS);
    assertThat(log.stalledBetween(400 * MS, 700 * MS)).isEqualTo(100 * MS);
    assertThat(log.stalledBetween(600 * MS, 700 * MS)).isZero();
  }

  @Test
  void stallsAddUpAndOldOnesAreForgotten() {
    StallLog log = new StallLog(MS, 10 * MS, 1_000 * MS, 0);
    log.woke(51 * MS); // 50 ms stall
    log.woke(52 * MS);
    log.woke(83 * MS); // 30 ms stall
    log.woke(85 * MS); // 2 ms: below the threshold
    assertThat(log.stalledBetween(0, 100 * MS)).isEqualTo(80 * MS);

    log.woke(2_000 * MS); // a stall of its own; the first two are now older than kept
    assertThat(log.stalledBetween(0, 85 * MS)).isZero();
    assertThat(log.stalledBetween(0, 2_000 * MS)).as("from 86 ms on").isEqualTo(1_914 * MS);
  }

  @Test
  void timesAreComparedAcrossTheNanoTimeWrap() {
    long start = Long.MAX_VALUE - 5 * MS;
    StallLog log = new StallLog(MS, 10 * MS, 1_000 * MS, start);
    log.woke(start + 101 * MS); // wraps past Long.MAX_VALUE
    assertThat(log.stalledBetween(start, start + 200 * MS)).isEqualTo(100 * MS);
  }

  @Test
  void aCallThatRunsIsTimedWithTheStallsInsideIt() {
    StallWatch.Timed<Integer> timed = StallWatch.shared().time(() -> 42);
    assertThat(timed.value()).isEqualTo(42);
    assertThat(timed.stalled()).isLessThanOrEqualTo(timed.elapsed());
    assertThat(timed.unstalled()).isEqualTo(timed.elapsed().minus(timed.stalled()));
  }
}
