package org.nisprotocol.testkit;

import java.util.Map;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;

/** Messages numbered in their content ({@code "sequence"}), for tests of order, loss and redelivery. */
public final class SequencedMessages {
  private SequencedMessages() {}

  /** A message of the key (its target agent, which orders it) carrying the number. */
  public static NisMessage message(String topic, String key, int sequence) {
    return NisMessage.builder(MessageType.AGENT_COORDINATION, "sequence_agent")
        .topic(topic)
        .targetAgent(key)
        .content(Map.of("sequence", sequence))
        .build();
  }

  /** The number {@link #message} put in a delivered message. */
  public static int sequence(Delivery delivery) {
    return ((Number) delivery.message().content().get("sequence")).intValue();
  }
}
