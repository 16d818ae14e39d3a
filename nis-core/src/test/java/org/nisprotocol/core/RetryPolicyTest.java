package org.nisprotocol.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.DoubleRange;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

class RetryPolicyTest {
  private final RetryPolicy defaults = RetryPolicy.defaults();

  @Property
  void everyWaitStaysWithinTheJitteredCap(
      @ForAll @IntRange(min = 1, max = 10_000) int retry,
      @ForAll @DoubleRange(min = 0, max = 1, maxIncluded = false) double random) {
    Duration wait = defaults.delayBefore(retry, random);

    assertThat(wait).isGreaterThanOrEqualTo(Duration.ofMillis(500));
    assertThat(wait).isLessThan(Duration.ofSeconds(45));
  }

  @Property
  void withoutJitterWaitsDoubleUntilTheCap(@ForAll @IntRange(min = 1, max = 200) int retry) {
    RetryPolicy exact = new RetryPolicy(3, Duration.ofSeconds(1), Duration.ofSeconds(30), 0);

    long expectedSeconds = retry > 5 ? 30 : Math.min(30, 1L << (retry - 1));
    assertThat(exact.delayBefore(retry, 0.3)).isEqualTo(Duration.ofSeconds(expectedSeconds));
  }

  @Test
  void theDefaultsAreThoseOfTheProtocol() {
    assertThat(defaults.maxAttempts()).isEqualTo(3);
    assertThat(defaults.delayBefore(1, 0.5)).isEqualTo(Duration.ofSeconds(1));
    assertThat(defaults.delayBefore(2, 0.5)).isEqualTo(Duration.ofSeconds(2));
    assertThat(defaults.delayBefore(30, 0.5)).isEqualTo(Duration.ofSeconds(30));
  }

  @Test
  void badSettingsAreAllReported() {
    assertThatThrownBy(() -> new RetryPolicy(0, Duration.ofSeconds(-1), Duration.ofSeconds(-2), 2))
        .isInstanceOfSatisfying(ValidationException.class, e -> assertThat(e.problems()).hasSize(4));
  }
}
