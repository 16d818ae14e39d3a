package org.nisprotocol.agents;

import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Runs work on a virtual thread and stops waiting for it at a deadline. */
final class Deadlines {
  private Deadlines() {}

  /**
   * The task's result, or {@link TimeoutException} once the timeout has passed. On timeout the
   * task's thread is interrupted and abandoned: a task that ignores interruption cannot hold the
   * caller past the deadline (an executor's close would wait for it). When the caller is
   * interrupted while it waits, the task's thread is interrupted too and the caller gets {@link
   * InterruptedException}.
   *
   * @throws Exception what the task threw
   */
  static <T> T callWithin(Duration timeout, Callable<T> task) throws Exception {
    CompletableFuture<T> result = new CompletableFuture<>();
    Thread worker =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    result.complete(task.call());
                  } catch (Throwable e) {
                    result.completeExceptionally(e);
                  }
                });
    try {
      return result.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
    } catch (TimeoutException | InterruptedException e) {
      worker.interrupt();
      throw e;
    } catch (ExecutionException e) {
      if (e.getCause() instanceof Exception cause) {
        throw cause;
      }
      throw e;
    }
  }
}
