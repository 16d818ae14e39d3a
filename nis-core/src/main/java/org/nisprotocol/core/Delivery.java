package org.nisprotocol.core;

import java.util.Map;
import java.util.Objects;

/**
 * A message as delivered to a handler, with where it came from.
 *
 * @param message the message
 * @param topic the topic it was read from (a dead-letter topic for dead letters)
 * @param partition the partition of that topic
 * @param offset its position in that partition
 * @param attempt 1 for the first delivery, 2 for the first redelivery, and so on; on Kafka the
 *     count goes on across the members of a group (a rebalance, a restart), and a last attempt whose
 *     dead letter was not written yet is made again with the same number
 * @param headers transport headers, e.g. the dead-letter headers of {@link DeadLetterHeaders}
 */
public record Delivery(
    NisMessage message,
    String topic,
    int partition,
    long offset,
    int attempt,
    Map<String, String> headers) {

  public Delivery {
    Objects.requireNonNull(message, "message");
    Objects.requireNonNull(topic, "topic");
    headers = Map.copyOf(headers);
  }
}
