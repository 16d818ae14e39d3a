package org.nisprotocol.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.KafkaException;
import org.junit.jupiter.api.Test;

/** The consumer's wait between tries after errors, and when a streak of errors ends. */
class ConsumerErrorStreakTest {
  private final AtomicLong nanos = new AtomicLong();
  private final ConsumerErrorStreak streak = new ConsumerErrorStreak("g", nanos::get);

  private Duration fail() {
    nanos.addAndGet(Duration.ofMillis(10).toNanos());
    return streak.failed(new KafkaException("group is full"));
  }

  @Test
  void theWaitDoublesFromOneSecondToThirtyAtMost() {
    List<Long> waits = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      waits.add(fail().toSeconds());
    }
    assertThat(waits).containsExactly(1L, 2L, 4L, 8L, 16L, 30L, 30L, 30L);
    assertThat(streak.count()).isEqualTo(8);
  }

  @Test
  void aPollWithPartitionsEndsTheStreak() {
    fail();
    fail();
    fail();

    streak.pollSucceeded(() -> true);

    assertThat(streak.count()).isZero();
    assertThat(fail()).isEqualTo(Duration.ofSeconds(1));
  }

  @Test
  void aPollWithoutPartitionsSoonAfterAnErrorDoesNotEndIt() {
    // Such a poll may only have begun to join the group that refused the member.
    fail();
    fail();
    nanos.addAndGet(Duration.ofSeconds(29).toNanos());

    streak.pollSucceeded(() -> false);

    assertThat(streak.count()).isEqualTo(2);
    assertThat(fail()).isEqualTo(Duration.ofSeconds(4));
  }

  @Test
  void thirtySecondsWithoutAnErrorEndTheStreakEvenWithoutPartitions() {
    // A member of a group whose topics have no partitions for it yet still works.
    fail();
    fail();
    nanos.addAndGet(Duration.ofSeconds(31).toNanos());

    streak.pollSucceeded(() -> false);

    assertThat(streak.count()).isZero();
    assertThat(fail()).isEqualTo(Duration.ofSeconds(1));
  }

  @Test
  void aPollWithoutAStreakChangesNothing() {
    streak.pollSucceeded(() -> true);
    streak.pollSucceeded(() -> false);

    assertThat(streak.count()).isZero();
    assertThat(fail()).isEqualTo(Duration.ofSeconds(1));
  }
}
