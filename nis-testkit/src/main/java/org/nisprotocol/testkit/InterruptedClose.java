package org.nisprotocol.testkit;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Checks a close() that waits for a busy handler through interrupts (a pool shut down with
 * {@code shutdownNow()} interrupts the thread that closes): runs it on a thread of its own,
 * interrupts that thread while it waits, asserts it still waits, then lets the handler finish.
 */
public final class InterruptedClose {
  private InterruptedClose() {}

  /** What the closing thread saw as soon as close() returned, and whether it still had its interrupt. */
  public record Outcome<T>(T seenWhenClosed, boolean interruptKept) {}

  /**
   * @param close the close() under test, which waits for a handler held by {@code release}
   * @param seenWhenClosed read on the closing thread as soon as close() returns
   * @param release lets the held handler finish, whatever happens here
   * @param timeout how long close() may take once the handler is released
   */
  public static <T> Outcome<T> run(Runnable close, Supplier<T> seenWhenClosed, CountDownLatch release, Duration timeout)
      throws Exception {
    CompletableFuture<Outcome<T>> outcome = new CompletableFuture<>();
    Thread closer = Thread.ofPlatform().start(() -> {
      try {
        close.run();
        outcome.complete(new Outcome<>(seenWhenClosed.get(), Thread.currentThread().isInterrupted()));
      } catch (RuntimeException | Error e) {
        outcome.completeExceptionally(e);
      }
    });
    try {
      Thread.sleep(300); // close() is waiting for the handler by now, or soon
      closer.interrupt();
      assertThat(closer.join(Duration.ofMillis(300))).as("close() still waits for the handler").isFalse();
    } finally {
      release.countDown();
    }
    return outcome.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
  }
}
