package org.nisprotocol.core;

import java.time.Duration;

/**
 * Remembers which messages a consumer group is handling and has handled: the store behind {@link
 * MessageHandlers#deduplicated}. Shared by every instance of the service when it is kept in a
 * shared store (Redis), so a redelivery to another instance is recognised too.
 *
 * <p>A consumer claims a message before handling it, and either marks it handled (for the window)
 * or releases the claim when the handler failed. While one consumer holds a claim, another's
 * claim of the same message finds it busy: a redelivery that overlaps a handler still running
 * (its partition moved on at a rebalance, or at a shutdown that left it running) waits for it
 * instead of running it a second time. A claim lapses after its lease, so a consumer that died
 * while handling does not block the message for longer.
 */
public interface DeliveryLedger {

  /** What a claim found. */
  enum Claim {
    /** The message is the caller's to handle: the group neither handles nor handled it. */
    CLAIMED,
    /** The group handled the message within the window: acknowledge it without handling. */
    HANDLED,
    /** Another consumer of the group holds a claim on it (until its lease ends). */
    BUSY
  }

  /**
   * Claims the message for the group, for at most {@code lease}, unless the group handled it or
   * another consumer's claim holds. Atomic among every consumer sharing the ledger.
   */
  Claim claim(String group, String messageId, Duration lease);

  /** Records that the group handled the message (ending the claim); forgotten after the window. */
  void markHandled(String group, String messageId, Duration window);

  /** Gives up this consumer's claim, after the handler failed: the next delivery may claim it. */
  void release(String group, String messageId);
}
