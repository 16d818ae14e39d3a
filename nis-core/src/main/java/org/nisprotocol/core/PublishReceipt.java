package org.nisprotocol.core;

import java.util.Objects;

/**
 * What {@link MessageBus#publish} did with a message.
 *
 * @param messageId the message's id
 * @param topic the topic it went to
 * @param status whether it was sent to the bus or kept in the local spool to be sent later
 */
public record PublishReceipt(String messageId, String topic, Status status) {
  public PublishReceipt {
    Objects.requireNonNull(messageId, "messageId");
    Objects.requireNonNull(topic, "topic");
    Objects.requireNonNull(status, "status");
  }

  /** Where an accepted message is. */
  public enum Status {
    /** Accepted by the bus (in-process, or acknowledged by the broker). */
    SENT,
    /** Kept in the durable local spool; sent when the broker is reachable again. */
    SPOOLED;

    public String wireName() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }
}
