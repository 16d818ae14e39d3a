package org.nisprotocol.core;

import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A backend's close(), run once, also when called on the backend's own threads.
 *
 * <p>The closing steps run on a thread of their own (not a daemon, so that the JVM does not exit
 * halfway through), where no interrupt meant for the caller cuts their waits short: an
 * interrupted caller (a pool shut down with {@code shutdownNow}, say) still gets its handlers
 * finished and its sends settled. The first caller waits for them through interrupts, which it
 * keeps, until they end (they are bounded themselves), and hears their failure. The steps wait
 * for the backend's threads (handlers, callbacks) to finish what they hold, so a close() called
 * on one of those threads stops intake and returns at once. Any later close() from another
 * thread waits until the steps have ended, at most the given limit; from a backend's thread, or
 * from the thread running the steps (code they complete may call close() again), it returns at
 * once. When no thread can start for the steps, the first caller runs them itself; if it is a
 * backend's thread (where they cannot run), it hears the error, and the next close() from another
 * thread runs them. Thread-safe.
 */
public final class CloseOnce {
  private static final Logger log = LoggerFactory.getLogger(CloseOnce.class);
  /** How often a waiting later call looks for steps left to it. */
  private static final long STEPS_LEFT_CHECK_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

  private final Duration waitLimit;
  private final ThreadFactory closingThreads;
  private final AtomicBoolean begun = new AtomicBoolean();
  /** Steps no thread could start for while a backend's thread called close(): the next outside call runs them. */
  private final AtomicReference<Runnable> stepsLeft = new AtomicReference<>();
  private final CountDownLatch ended = new CountDownLatch(1);
  private volatile Thread closingThread;
  private volatile Throwable failure;

  /** @param waitLimit how long a later close() waits for the steps at most (the first waits until they end) */
  public CloseOnce(Duration waitLimit) {
    this(waitLimit, Thread.ofPlatform().name("nis-bus-close").daemon(false).factory());
  }

  /** With the factory of the closing thread (tests give one that fails). */
  CloseOnce(Duration waitLimit, ThreadFactory closingThreads) {
    this.waitLimit = Objects.requireNonNull(waitLimit, "waitLimit");
    this.closingThreads = Objects.requireNonNull(closingThreads, "closingThreads");
  }

  /** Whether close() has been called. */
  public boolean begun() {
    return begun.get();
  }

  /** Whether the closing steps have run to their end (or closing failed to begin). */
  public boolean ended() {
    return ended.getCount() == 0;
  }

  /**
   * The first call runs {@code stopIntake} on this thread, then {@code steps} on a thread of their
   * own, and waits for them unless {@code onOwnThread} (this is one of the threads the steps wait
   * for). Later calls wait as said above.
   *
   * @throws RuntimeException (or Error) what the steps threw, to the first caller that waited
   */
  public void close(boolean onOwnThread, Runnable stopIntake, Runnable steps) {
    if (!begun.compareAndSet(false, true)) {
      if (!onOwnThread && Thread.currentThread() != closingThread) {
        awaitEndedOrRunStepsLeft();
      }
      return;
    }
    Runnable closing = () -> {
      try {
        steps.run();
      } catch (Throwable e) {
        failure = e;
        if (onOwnThread) {
          log.warn("closing failed", e); // nobody waits to hear it
        }
      } finally {
        ended.countDown();
      }
    };
    try {
      stopIntake.run();
    } catch (RuntimeException | Error e) {
      ended.countDown(); // failed to start closing: later calls do not wait for it
      throw e;
    }
    if (onOwnThread) {
      log.info("close() called on one of the backend's own threads: closing on a thread of its own");
    }
    try {
      Thread closer = Objects.requireNonNull(closingThreads.newThread(closing), "no closing thread was made");
      closingThread = closer;
      closer.start();
    } catch (RuntimeException | Error e) {
      // No thread to be had (the process is short of them): close here unless this is a thread
      // the steps wait for, which leaves them to the next close() from elsewhere.
      if (onOwnThread) {
        closingThread = null;
        stepsLeft.set(closing);
        throw e;
      }
      log.warn("closing on the caller's thread: no thread of its own could start ({})", e.toString());
      closingThread = Thread.currentThread();
      closing.run();
    }
    if (!onOwnThread) {
      awaitThroughInterrupts(ended, Long.MAX_VALUE); // an interrupted caller still gets a closed backend
      rethrowFailure();
    }
  }

  /** Throws what the steps threw, if anything. */
  private void rethrowFailure() {
    Throwable failed = failure;
    if (failed instanceof RuntimeException runtime) {
      throw runtime;
    }
    if (failed instanceof Error error) {
      throw error;
    }
    if (failed != null) {
      throw new IllegalStateException("closing failed", failed);
    }
  }

  /**
   * A later call's wait: until the steps have ended, at most the wait limit, unless the steps were
   * left (no thread could start for them on a backend's thread), possibly while this call waits:
   * then it runs them, with no interrupt of this thread reaching them.
   */
  private void awaitEndedOrRunStepsLeft() {
    long deadline = System.nanoTime() + waitLimit.toNanos();
    while (true) {
      Runnable left = stepsLeft.getAndSet(null);
      if (left != null) {
        closingThread = Thread.currentThread();
        boolean interrupted = Thread.interrupted();
        try {
          left.run();
        } finally {
          if (interrupted) {
            Thread.currentThread().interrupt();
          }
        }
        rethrowFailure();
        return;
      }
      long remaining = deadline - System.nanoTime();
      if (remaining <= 0) {
        log.warn("a close() begun elsewhere has not ended within {}", waitLimit);
        return;
      }
      if (awaitThroughInterrupts(ended, Math.min(remaining, STEPS_LEFT_CHECK_NANOS))) {
        return;
      }
    }
  }

  /**
   * Waits until the latch is open, at most {@code timeoutNanos} ({@link Long#MAX_VALUE}: without a
   * limit), through interrupts, which are kept for the caller: a wait of closing that an interrupt
   * cut short would leave work unfinished. Whether the latch opened.
   */
  public static boolean awaitThroughInterrupts(CountDownLatch latch, long timeoutNanos) {
    long end = System.nanoTime() + timeoutNanos;
    boolean interrupted = false;
    try {
      while (true) {
        try {
          if (timeoutNanos == Long.MAX_VALUE) {
            latch.await();
            return true;
          }
          return latch.await(end - System.nanoTime(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
