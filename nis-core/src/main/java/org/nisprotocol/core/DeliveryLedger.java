package org.nisprotocol.core;

import java.time.Duration;

/**
 * Remembers which messages a consumer group has handled, for a while: the store behind {@link
 * MessageHandlers#deduplicated}. Shared by every instance of the service when it is kept in a
 * shared store (Redis), so a redelivery to another instance is recognised too.
 */
public interface DeliveryLedger {
  /** Whether the group has handled the message within the window. */
  boolean isHandled(String group, String messageId);

  /** Records that the group handled the message; forgotten after the window. */
  void markHandled(String group, String messageId, Duration window);
}
