package org.nisprotocol.core;

import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Decorators of {@link MessageHandler}s. */
public final class MessageHandlers {
  private static final Logger log = LoggerFactory.getLogger(MessageHandlers.class);

  /** How long a claim of {@link #deduplicated(MessageHandler, DeliveryLedger, String, Duration)} holds: one minute. */
  public static final Duration DEFAULT_LEASE = Duration.ofMinutes(1);

  /** The first wait before a busy message's claim is tried again; it doubles up to {@link #LONGEST_BUSY_WAIT_NANOS}. */
  private static final long FIRST_BUSY_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(10);

  private static final long LONGEST_BUSY_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(250);

  private MessageHandlers() {}

  /**
   * {@link #deduplicated(MessageHandler, DeliveryLedger, String, Duration, Duration)} with claims
   * of {@link #DEFAULT_LEASE}.
   */
  public static MessageHandler deduplicated(
      MessageHandler handler, DeliveryLedger ledger, String group, Duration window) {
    return deduplicated(handler, ledger, group, window, DEFAULT_LEASE);
  }

  /**
   * A handler that sees each message once per group within the window, though the bus may
   * deliver it again (at-least-once): a message already handled is acknowledged without calling
   * the handler. The message is claimed in the ledger before the handler runs and marked handled
   * after it returned; a handler that failed releases its claim, so the message comes again.
   *
   * <p>A delivery of a message another consumer is handling waits (trying the claim again, 10 ms
   * doubling to 250 ms apart) until that one marks it handled, releases it, or its lease ends:
   * so a redelivery that overlaps a handler still running elsewhere (its partition moved on at a
   * rebalance) does not run it twice. The lease bounds how long a consumer that died while
   * handling holds the message up; a handler that runs longer than the lease may see its
   * message handled a second time elsewhere. Interrupted while waiting, the delivery fails with a
   * {@link RetriableException} (and comes again). The wait does not watch its subscription: a
   * rebalance or a close waits for it as for any busy handler (up to the bus's shutdown timeout),
   * and a wait given up on there goes on until its lease ends. When the ledger cannot record a
   * handled message (its store is down), the delivery still succeeds, logged: its claim keeps
   * redeliveries off for the lease, after which the message may be handled again.
   */
  public static MessageHandler deduplicated(
      MessageHandler handler, DeliveryLedger ledger, String group, Duration window, Duration lease) {
    Objects.requireNonNull(handler, "handler");
    Objects.requireNonNull(ledger, "ledger");
    Objects.requireNonNull(group, "group");
    CacheKeys.requirePositive("window", window);
    CacheKeys.requirePositive("lease", lease);
    return delivery -> {
      String id = delivery.message().messageId();
      long wait = FIRST_BUSY_WAIT_NANOS;
      while (true) {
        switch (ledger.claim(group, id, lease)) {
          case HANDLED -> {
            return;
          }
          case CLAIMED -> {
            handleClaimed(handler, delivery, ledger, group, window);
            return;
          }
          case BUSY -> {
            waitWhileBusy(wait, id, group);
            wait = Math.min(2 * wait, LONGEST_BUSY_WAIT_NANOS);
          }
        }
      }
    };
  }

  /** Runs the handler on a message this consumer claimed; releases the claim if it fails, marks the message handled if not. */
  private static void handleClaimed(
      MessageHandler handler, Delivery delivery, DeliveryLedger ledger, String group, Duration window)
      throws Exception {
    String id = delivery.message().messageId();
    try {
      handler.handle(delivery);
    } catch (Exception | Error e) {
      try {
        ledger.release(group, id);
      } catch (RuntimeException releaseFailed) {
        e.addSuppressed(releaseFailed); // the claim lapses with its lease
      }
      throw e;
    }
    try {
      ledger.markHandled(group, id, window);
    } catch (RuntimeException e) {
      // The handler's work is done: failing the delivery would have it run again. The claim
      // still holds redeliveries off for its lease.
      log.warn("message {} was handled, but the ledger of group {} could not record it: {}", id, group, e.toString());
    }
  }

  private static void waitWhileBusy(long nanos, String id, String group) {
    try {
      TimeUnit.NANOSECONDS.sleep(nanos);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RetriableException(
          "interrupted while message " + id + " was being handled by another consumer of group " + group, e);
    }
  }
}
