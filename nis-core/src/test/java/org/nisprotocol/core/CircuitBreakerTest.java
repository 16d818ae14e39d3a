package org.nisprotocol.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

class CircuitBreakerTest {
  private Instant now = Instant.parse("2026-01-01T00:00:00Z");
  private final InstantSource clock = () -> now;
  private final List<CircuitBreaker.Transition> transitions = new CopyOnWriteArrayList<>();
  private final CircuitBreaker breaker =
      CircuitBreaker.create(
          "kafka-publish",
          CircuitBreakerConfig.defaults().withOpenDuration(Duration.ofSeconds(60)),
          clock);

  {
    breaker.addListener(transitions::add);
  }

  private void fail(int times) {
    for (int i = 0; i < times; i++) {
      assertThat(breaker.tryAcquire()).isTrue();
      breaker.onFailure();
    }
  }

  @Test
  void opensAfterTheThresholdOfConsecutiveFailures() {
    fail(4);
    assertThat(breaker.state()).isEqualTo(CircuitBreaker.State.CLOSED);

    fail(1);

    assertThat(breaker.state()).isEqualTo(CircuitBreaker.State.OPEN);
    assertThat(breaker.tryAcquire()).isFalse();
    assertThatThrownBy(() -> breaker.call(() -> "x"))
        .isInstanceOf(CallNotPermittedException.class)
        .hasMessageContaining("kafka-publish")
        .hasMessageContaining("open");
  }

  @Test
  void aSuccessResetsTheFailureCount() {
    fail(4);
    breaker.call(() -> "ok");
    fail(4);

    assertThat(breaker.state()).isEqualTo(CircuitBreaker.State.CLOSED);
  }

  @Test
  void halfOpensAfterTheOpenDurationAndClosesAfterSuccessfulProbes() {
    fail(5);
    now = now.plusSeconds(59);
    assertThat(breaker.tryAcquire()).isFalse();

    now = now.plusSeconds(1);
    assertThat(breaker.state()).isEqualTo(CircuitBreaker.State.HALF_OPEN);
    assertThat(breaker.tryAcquire()).isTrue();
    assertThat(breaker.tryAcquire()).isTrue();
    assertThat(breaker.tryAcquire()).as("only two probes at a time").isFalse();
    breaker.onSuccess();
    breaker.onSuccess();

    assertThat(breaker.state()).isEqualTo(CircuitBreaker.State.CLOSED);
    assertThat(transitions)
        .extracting(CircuitBreaker.Transition::to)
        .containsExactly(CircuitBreaker.State.OPEN, CircuitBreaker.State.HALF_OPEN, CircuitBreaker.State.CLOSED);
  }

  @Test
  void aFailedProbeOpensItAgainForAnotherFullPeriod() {
    fail(5);
    now = now.plusSeconds(60);
    assertThat(breaker.tryAcquire()).isTrue();
    breaker.onFailure();

    assertThat(breaker.state()).isEqualTo(CircuitBreaker.State.OPEN);
    now = now.plusSeconds(59);
    assertThat(breaker.tryAcquire()).isFalse();
    now = now.plusSeconds(1);
    assertThat(breaker.tryAcquire()).isTrue();
  }

  @Test
  void callRecordsExceptionsAsFailuresAndRethrowsThem() {
    for (int i = 0; i < 5; i++) {
      assertThatThrownBy(() -> breaker.call(() -> { throw new IllegalStateException("down"); }))
          .isInstanceOf(IllegalStateException.class);
    }

    assertThat(breaker.state()).isEqualTo(CircuitBreaker.State.OPEN);
    assertThat(breaker.failureCount()).isEqualTo(5);
    assertThat(breaker.lastFailureAt()).contains(now);
  }

  @Test
  void aReleasedProbeFreesItsPlaceWithoutClosingOrOpening() {
    fail(5);
    now = now.plusSeconds(60);
    assertThat(breaker.tryAcquire()).isTrue();
    assertThat(breaker.tryAcquire()).isTrue();
    assertThat(breaker.tryAcquire()).isFalse();

    breaker.release();

    assertThat(breaker.state()).isEqualTo(CircuitBreaker.State.HALF_OPEN);
    assertThat(breaker.tryAcquire()).isTrue();
  }

  @Test
  void wireNamesAreThoseOfTheGuide() {
    assertThat(CircuitBreaker.State.HALF_OPEN.wireName()).isEqualTo("half-open");
    assertThat(CircuitBreaker.State.OPEN.wireName()).isEqualTo("open");
  }
}
