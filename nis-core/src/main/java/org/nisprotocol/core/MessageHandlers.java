package org.nisprotocol.core;

import java.time.Duration;
import java.util.Objects;

/** Decorators of {@link MessageHandler}s. */
public final class MessageHandlers {
  private MessageHandlers() {}

  /**
   * A handler that sees each message once per group within the window, though the bus may
   * deliver it again (at-least-once): a message already handled is acknowledged without calling
   * the handler. The mark is written after the handler returned, so a handler that failed or was
   * cut off gets the message again.
   */
  public static MessageHandler deduplicated(
      MessageHandler handler, DeliveryLedger ledger, String group, Duration window) {
    Objects.requireNonNull(handler, "handler");
    Objects.requireNonNull(ledger, "ledger");
    Objects.requireNonNull(group, "group");
    CacheKeys.requirePositiveTtl(window);
    return delivery -> {
      String id = delivery.message().messageId();
      if (ledger.isHandled(group, id)) {
        return;
      }
      handler.handle(delivery);
      ledger.markHandled(group, id, window);
    };
  }
}
