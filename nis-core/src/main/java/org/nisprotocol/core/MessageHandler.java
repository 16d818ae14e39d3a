package org.nisprotocol.core;

/**
 * Handles one delivered message. Returning normally acknowledges it; throwing asks for a
 * redelivery (with backoff) until the retry budget is spent, after which the message is
 * dead-lettered. Handlers may be called on virtual threads, one message at a time per ordering
 * key.
 */
@FunctionalInterface
public interface MessageHandler {
  void handle(Delivery delivery) throws Exception;
}
