package org.nisprotocol.core;

/** One member of a consumer group. Closing it stops deliveries to its handler. */
public interface Subscription extends AutoCloseable {
  SubscriptionSpec spec();

  /**
   * Stops deliveries; a delivery in progress finishes first. Idempotent. Called from the
   * subscription's own handler, it returns at once, and that delivery is the last.
   */
  @Override
  void close();
}
