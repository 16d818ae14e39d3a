package org.nisprotocol.core;

import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * The message bus port: agents publish {@link NisMessage}s to topics and consume them in consumer
 * groups.
 *
 * <p>Contract, shared by every backend and checked by the message bus contract kit:
 *
 * <ul>
 *   <li>{@link #publish} returns once the bus has accepted the message; from then on it is
 *       delivered to every subscribed group or dead-lettered, never dropped. A bus that cannot
 *       accept it throws ({@link RetriableException} when trying later may help).
 *   <li>Each consumer group receives every message of its topics; the members of a group share
 *       them. Delivery is at-least-once: a handler that throws gets the message again, with
 *       backoff, up to the retry budget; then the message goes to the dead-letter topic {@code
 *       <topic>.dlt} with headers naming the error.
 *   <li>Messages with the same {@link NisMessage#orderingKey()} reach a group in publish order.
 *   <li>A new group starts from the oldest message the bus still holds for its topics.
 *   <li>{@link #close()} stops accepting, delivers what was accepted to the subscribed groups
 *       (within the backend's shutdown window), then stops. Handlers still running meanwhile may
 *       publish (an agent answers what it handles), and what they publish is delivered too.
 * </ul>
 */
public interface MessageBus extends Backend {

  /**
   * Publishes a message to its topic and returns once the bus has accepted it.
   *
   * @throws MessageBusFullException when the bus stayed full for the whole publish timeout
   * @throws ClosedException after {@link #close()} (from a running handler, or a thread it
   *     started: once close() has stopped delivering)
   */
  default PublishReceipt publish(NisMessage message) {
    return publish(message, Map.of());
  }

  /**
   * Publishes a message with transport headers (e.g. a W3C {@code traceparent}), which its
   * deliveries carry; see {@link #publish(NisMessage)}.
   */
  PublishReceipt publish(NisMessage message, Map<String, String> headers);

  /**
   * Publishes without waiting: the future completes with the receipt once the bus has accepted
   * the message, or fails with the error {@link #publish} would throw. Lets one caller keep many
   * messages in flight.
   */
  default CompletableFuture<PublishReceipt> publishAsync(NisMessage message) {
    return publishAsync(message, Map.of());
  }

  /** {@link #publishAsync(NisMessage)} with transport headers. The default waits for publish. */
  default CompletableFuture<PublishReceipt> publishAsync(
      NisMessage message, Map<String, String> headers) {
    try {
      return CompletableFuture.completedFuture(publish(message, headers));
    } catch (RuntimeException e) {
      return CompletableFuture.failedFuture(e);
    }
  }

  /**
   * Starts delivering the topics (and message types) of the spec to the handler, as one member of
   * the spec's consumer group.
   *
   * @throws ValidationException when the spec names no topic and no message type, or a bad name
   */
  Subscription subscribe(SubscriptionSpec spec, MessageHandler handler);

  /**
   * Stops accepting, delivers what was accepted, then releases everything. Handlers that run
   * while close() delivers may still publish (from their own thread, or a thread they started,
   * while the handler runs) until it stops delivering: what they publish is delivered too while
   * the shutdown window lasts (a broker-backed bus may leave it for the group's next member).
   * Idempotent. An
   * interrupt of the calling thread does not cut this short; the caller keeps it. Called from a
   * handler (or code run by the bus's own threads), it returns as soon as nothing more is
   * accepted, and delivering and releasing go on on a thread of their own. A handler that hands
   * its work to another thread and waits for it must not call close() from that thread: the bus
   * cannot tell that its handler waits there, and closing waits for the handler.
   */
  @Override
  void close();
}
