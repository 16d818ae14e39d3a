package org.nisprotocol.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class CloseOnceTest {
  // Longer than any test may take: a call that waited this long would fail the test's own limit.
  private final CloseOnce once = new CloseOnce(Duration.ofHours(1));
  private final List<String> events = new CopyOnWriteArrayList<>();

  @Test
  void theStepsRunOnceOnAThreadOfTheirOwnAfterIntakeStopsAndTheCallerWaitsForThem() {
    AtomicInteger runs = new AtomicInteger();
    Thread caller = Thread.currentThread();
    Runnable steps = () -> {
      runs.incrementAndGet();
      events.add("steps on " + (Thread.currentThread() == caller ? "the caller" : Thread.currentThread().getName()));
    };

    once.close(false, () -> events.add("intake stopped"), steps);
    assertThat(once.ended()).as("ended when the first call returned").isTrue();
    once.close(false, () -> events.add("intake stopped"), steps);

    assertThat(runs).hasValue(1);
    assertThat(events).containsExactly("intake stopped", "steps on nis-bus-close");
    assertThat(once.begun()).isTrue();
  }

  @Test
  void anInterruptOfTheFirstCallerDoesNotReachTheStepsAndIsKept() throws Exception {
    CountDownLatch stepsStarted = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    CompletableFuture<Boolean> stepsInterrupted = new CompletableFuture<>();
    CompletableFuture<Boolean> callerInterruptedAfter = new CompletableFuture<>();
    Thread caller = Thread.ofPlatform().start(() -> {
      once.close(false, () -> {}, () -> {
        stepsStarted.countDown();
        try {
          stepsInterrupted.complete(!release.await(10, TimeUnit.SECONDS));
        } catch (InterruptedException e) {
          stepsInterrupted.complete(true);
        }
      });
      callerInterruptedAfter.complete(Thread.currentThread().isInterrupted());
    });
    assertThat(stepsStarted.await(10, TimeUnit.SECONDS)).isTrue();

    caller.interrupt();
    assertThat(caller.join(Duration.ofMillis(300))).as("still waiting for the steps after the interrupt").isFalse();
    release.countDown();

    assertThat(stepsInterrupted.get(10, TimeUnit.SECONDS)).as("the steps' wait was cut short").isFalse();
    assertThat(callerInterruptedAfter.get(10, TimeUnit.SECONDS)).as("the caller keeps its interrupt").isTrue();
    assertThat(once.ended()).isTrue();
  }

  @Test
  void theFirstCallerWaitsUntilTheStepsEndPastTheLimitOfLaterCalls() {
    CloseOnce shortLimit = new CloseOnce(Duration.ofMillis(50));

    shortLimit.close(false, () -> {}, () -> {
      sleep(Duration.ofMillis(500));
      events.add("steps ended");
    });

    assertThat(events).containsExactly("steps ended");
    assertThat(shortLimit.ended()).isTrue();
  }

  @Test
  void theFirstCallerHearsWhatTheStepsThrew() {
    assertThatThrownBy(() -> once.close(false, () -> {}, () -> { throw new IllegalStateException("step failed"); }))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("step failed");
    assertThat(once.ended()).isTrue();
  }

  @Test
  void onAnOwnThreadItReturnsAfterStoppingIntakeAndTheStepsRunOnANonDaemonThread() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    CompletableFuture<Thread> ranOn = new CompletableFuture<>();

    once.close(true, () -> events.add("intake stopped"), () -> {
      ranOn.complete(Thread.currentThread());
      await(release);
    });

    assertThat(events).containsExactly("intake stopped");
    Thread closer = ranOn.get(10, TimeUnit.SECONDS);
    assertThat(closer.getName()).isEqualTo("nis-bus-close");
    assertThat(closer.isDaemon()).isFalse();
    assertThat(once.ended()).as("the steps wait for release").isFalse();
    release.countDown();
    closer.join(Duration.ofSeconds(10));
    assertThat(once.ended()).isTrue();
  }

  @Test
  void aLaterCallFromAnotherThreadWaitsUntilTheStepsHaveEnded() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    once.close(true, () -> {}, () -> await(release));

    Thread later = Thread.ofPlatform().start(() -> once.close(false, () -> {}, () -> events.add("ran twice")));
    assertThat(later.join(Duration.ofMillis(300))).as("still waiting for the steps").isFalse();
    release.countDown();

    assertThat(later.join(Duration.ofSeconds(10))).isTrue();
    assertThat(once.ended()).isTrue();
    assertThat(events).isEmpty();
  }

  @Test
  void aLaterCallOnAnOwnThreadOrFromTheStepsThemselvesReturnsAtOnce() {
    assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
      once.close(false, () -> {}, () -> {
        once.close(false, () -> {}, () -> {}); // code the steps complete closes again
        once.close(true, () -> {}, () -> {});
        events.add("steps went on");
      });
    });
    assertThat(events).containsExactly("steps went on");
  }

  @Test
  void whenClosingCannotStartLaterCallsDoNotWaitForIt() {
    assertThatThrownBy(() -> once.close(false, () -> { throw new IllegalStateException("no"); }, () -> events.add("steps")))
        .isInstanceOf(IllegalStateException.class);

    assertThat(once.ended()).isTrue();
    assertTimeoutPreemptively(Duration.ofSeconds(20), () -> once.close(false, () -> {}, () -> {}));
    assertThat(events).isEmpty();
  }

  @Test
  void whenNoClosingThreadCanStartTheFirstCallerRunsTheStepsItselfAndHearsTheirFailure() {
    CloseOnce withoutThreads = new CloseOnce(Duration.ofHours(1), noThreads());
    CompletableFuture<Thread> ranOn = new CompletableFuture<>();

    Thread caller = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
      assertThatThrownBy(() -> withoutThreads.close(false, () -> events.add("intake stopped"), () -> {
            events.add("steps");
            ranOn.complete(Thread.currentThread());
            throw new IllegalStateException("step failed");
          }))
          .hasMessage("step failed");
      return Thread.currentThread();
    });

    assertThat(events).containsExactly("intake stopped", "steps");
    assertThat(ranOn).isCompletedWithValue(caller);
    assertThat(withoutThreads.ended()).isTrue();
  }

  @Test
  void whenNoClosingThreadCanStartForAnOwnThreadTheNextCallFromElsewhereRunsTheSteps() {
    CloseOnce withoutThreads = new CloseOnce(Duration.ofHours(1), noThreads());
    CompletableFuture<Thread> ranOn = new CompletableFuture<>();
    Runnable steps = () -> {
      events.add("steps");
      ranOn.complete(Thread.currentThread());
    };

    assertThatThrownBy(() -> withoutThreads.close(true, () -> events.add("intake stopped"), steps))
        .isInstanceOf(IllegalThreadStateException.class);
    assertThat(withoutThreads.ended()).as("nothing closed yet").isFalse();
    withoutThreads.close(true, () -> {}, steps); // another of the backend's threads: still nothing to run on
    assertThat(events).containsExactly("intake stopped");

    Thread outside = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
      withoutThreads.close(false, () -> {}, () -> events.add("other steps"));
      return Thread.currentThread();
    });

    assertThat(events).containsExactly("intake stopped", "steps");
    assertThat(ranOn).isCompletedWithValue(outside);
    assertThat(withoutThreads.ended()).isTrue();
    withoutThreads.close(false, () -> {}, steps);
    assertThat(events).as("run once").hasSize(2);
  }

  @Test
  void aCallWaitingFromElsewhereWhenTheStepsAreLeftRunsThem() throws Exception {
    CountDownLatch inFactory = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    java.util.concurrent.ThreadFactory spent = noThreads();
    CloseOnce slowToFail = new CloseOnce(Duration.ofHours(1), task -> {
      inFactory.countDown();
      await(release);
      return spent.newThread(task);
    });
    CompletableFuture<Thread> ranOn = new CompletableFuture<>();
    CompletableFuture<Throwable> ownThreadHeard = new CompletableFuture<>();
    Thread own = Thread.ofPlatform().start(() -> {
      try {
        slowToFail.close(true, () -> {}, () -> ranOn.complete(Thread.currentThread()));
        ownThreadHeard.complete(null);
      } catch (RuntimeException e) {
        ownThreadHeard.complete(e);
      }
    });
    assertThat(inFactory.await(10, TimeUnit.SECONDS)).isTrue();
    CompletableFuture<Thread> outside = new CompletableFuture<>();
    Thread later = Thread.ofPlatform().start(() -> {
      slowToFail.close(false, () -> {}, () -> {});
      outside.complete(Thread.currentThread());
    });
    assertThat(later.join(Duration.ofMillis(200))).as("waits while closing has begun").isFalse();

    release.countDown(); // no closing thread: the steps are left, to the call already waiting

    assertThat(outside.get(10, TimeUnit.SECONDS)).isSameAs(later);
    assertThat(ranOn).isCompletedWithValue(later);
    assertThat(ownThreadHeard.get(10, TimeUnit.SECONDS)).isInstanceOf(IllegalThreadStateException.class);
    assertThat(slowToFail.ended()).isTrue();
    own.join(Duration.ofSeconds(10));
  }

  /** A thread factory whose threads cannot start (they already ran), as when the process has no more threads. */
  private static java.util.concurrent.ThreadFactory noThreads() {
    return task -> {
      Thread spent = Thread.ofPlatform().start(() -> {});
      try {
        spent.join();
      } catch (InterruptedException e) {
        throw new AssertionError(e);
      }
      return spent;
    };
  }

  @Test
  void anInterruptedLaterCallStillWaitsAndKeepsTheInterrupt() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    once.close(true, () -> {}, () -> await(release));
    CompletableFuture<Boolean> interruptedAfter = new CompletableFuture<>();
    Thread later = Thread.ofPlatform().start(() -> {
      once.close(false, () -> {}, () -> {});
      interruptedAfter.complete(Thread.currentThread().isInterrupted());
    });

    later.interrupt();
    assertThat(later.join(Duration.ofMillis(300))).as("still waiting after the interrupt").isFalse();
    release.countDown();

    assertThat(interruptedAfter.get(10, TimeUnit.SECONDS)).isTrue();
    assertThat(once.ended()).isTrue();
  }

  private static void sleep(Duration duration) {
    try {
      Thread.sleep(duration);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static void await(CountDownLatch latch) {
    try {
      latch.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
