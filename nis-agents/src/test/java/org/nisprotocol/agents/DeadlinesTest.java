package org.nisprotocol.agents;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class DeadlinesTest {
  @Test
  void theResultOrWhatTheTaskThrew() throws Exception {
    assertThat(Deadlines.callWithin(Duration.ofSeconds(5), () -> 42)).isEqualTo(42);
    assertThatThrownBy(() -> Deadlines.callWithin(Duration.ofSeconds(5), () -> {
      throw new IllegalStateException("failed");
    })).isInstanceOf(IllegalStateException.class).hasMessage("failed");
  }

  @Test
  void atTheDeadlineTheTaskIsInterruptedAndTheCallerFreed() throws Exception {
    CountDownLatch interrupted = new CountDownLatch(1);

    assertThatThrownBy(() -> Deadlines.callWithin(Duration.ofMillis(50), () -> {
      try {
        Thread.sleep(Duration.ofMinutes(1));
      } catch (InterruptedException e) {
        interrupted.countDown();
      }
      return null;
    })).isInstanceOf(TimeoutException.class);
    assertThat(interrupted.await(10, TimeUnit.SECONDS)).isTrue();
  }

  @Test
  void aCallerInterruptedWhileItWaitsGetsInterruptedExceptionAndInterruptsTheTask() throws Exception {
    CountDownLatch started = new CountDownLatch(1);
    CountDownLatch taskInterrupted = new CountDownLatch(1);
    AtomicReference<Throwable> callerGot = new AtomicReference<>();
    Thread caller = Thread.ofPlatform().start(() -> {
      try {
        Deadlines.callWithin(Duration.ofMinutes(1), () -> {
          started.countDown();
          try {
            Thread.sleep(Duration.ofMinutes(1));
          } catch (InterruptedException e) {
            taskInterrupted.countDown();
          }
          return null;
        });
      } catch (Exception e) {
        callerGot.set(e);
      }
    });
    assertThat(started.await(10, TimeUnit.SECONDS)).isTrue();

    caller.interrupt();

    caller.join(Duration.ofSeconds(10));
    assertThat(caller.isAlive()).isFalse();
    assertThat(callerGot.get()).isInstanceOf(InterruptedException.class);
    assertThat(taskInterrupted.await(10, TimeUnit.SECONDS)).as("the task was interrupted too").isTrue();
  }
}
