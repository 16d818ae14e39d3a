package org.nisprotocol.core;

import java.util.Locale;

/**
 * The nine kinds of agent message. On the wire each is its lowercase name ({@code
 * "simulation_result"}); each routes to one topic of {@link StreamingTopics}.
 */
public enum MessageType {
  CONSCIOUSNESS_EVENT(StreamingTopics.CONSCIOUSNESS),
  GOAL_GENERATION(StreamingTopics.GOALS),
  SIMULATION_RESULT(StreamingTopics.SIMULATION),
  ALIGNMENT_CHECK(StreamingTopics.ALIGNMENT),
  MEMORY_OPERATION(StreamingTopics.MEMORY),
  AGENT_COORDINATION(StreamingTopics.COORDINATION),
  SYSTEM_HEALTH(StreamingTopics.SYSTEM_HEALTH),
  AUDIT_ALERT(StreamingTopics.AUDIT_ALERTS),
  PERFORMANCE_METRIC(StreamingTopics.PERFORMANCE);

  private final String wireName;
  private final String topic;

  MessageType(String topic) {
    this.wireName = name().toLowerCase(Locale.ROOT);
    this.topic = topic;
  }

  /** The name used in JSON, e.g. {@code "simulation_result"}. */
  public String wireName() {
    return wireName;
  }

  /** The topic a message of this type is published to unless it names another. */
  public String topic() {
    return topic;
  }

  /**
   * Parses a wire name, ignoring case.
   *
   * @throws IllegalArgumentException naming the value and the accepted names
   */
  public static MessageType fromWire(String name) {
    for (MessageType type : values()) {
      if (type.wireName.equalsIgnoreCase(name)) {
        return type;
      }
    }
    throw new IllegalArgumentException(
        "unknown message_type " + ErrorText.quoted(name) + "; expected one of " + StreamingTopics.wireNames(values()));
  }
}
