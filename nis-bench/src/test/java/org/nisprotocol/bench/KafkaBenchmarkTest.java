package org.nisprotocol.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class KafkaBenchmarkTest {

  @Test
  void theMedianIntervalUsesTheRanksOfTheBinomialTable() {
    // Published tables of the distribution-free 95% interval of a median: n=10 ranks 2 and 9,
    // n=20 ranks 6 and 15, n=30 ranks 10 and 21.
    assertThat(KafkaBenchmark.medianIntervalRank(10)).isEqualTo(2);
    assertThat(KafkaBenchmark.medianIntervalRank(20)).isEqualTo(6);
    assertThat(KafkaBenchmark.medianIntervalRank(30)).isEqualTo(10);
  }

  @Test
  void fiveRoundsAreTooFewForAnInterval() {
    // Even the smallest and largest of five miss the median with probability 2/32 > 5 %.
    assertThat(KafkaBenchmark.medianIntervalRank(5)).isZero();
    assertThat(KafkaBenchmark.medianIntervalRank(6)).isEqualTo(1);
  }

  @Test
  void moreRoundsThanTheBinomialCanBeComputedForAreRefused() {
    assertThat(KafkaBenchmark.medianIntervalRank(1_000)).isBetween(450, 500);
    assertThatThrownBy(() -> KafkaBenchmark.medianIntervalRank(1_001)).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void theSlowestCriticalMessagesAreNamedSlowestFirstWithTheirPublishCalls() {
    long ms = 1_000_000;
    long[] latencies = {5 * ms, 900 * ms, 7 * ms, 120 * ms};
    long[] publishCalls = {1 * ms, 850 * ms, 2 * ms, 3 * ms};
    assertThat(KafkaBenchmark.slowest(latencies, publishCalls, 2, 6, 70_000))
        .startsWith("4 critical messages, 6 partitions, about 70,000 low ones still waiting")
        .endsWith(": #1: 900.0/850.0 #3: 120.0/3.0");
  }
}
