package org.nisprotocol.core;

import java.util.Locale;

/**
 * How urgent a message is. On the wire a lowercase name ({@code "high"}); on input the level 1-4
 * is accepted too.
 */
public enum MessagePriority {
  LOW(1),
  NORMAL(2),
  HIGH(3),
  CRITICAL(4);

  private final int level;
  private final String wireName;

  MessagePriority(int level) {
    this.level = level;
    this.wireName = name().toLowerCase(Locale.ROOT);
  }

  /** 1 (low) to 4 (critical). */
  public int level() {
    return level;
  }

  /** The name used in JSON, e.g. {@code "high"}. */
  public String wireName() {
    return wireName;
  }

  /**
   * The priority of a level from 1 to 4.
   *
   * @throws IllegalArgumentException naming the value when it is out of range
   */
  public static MessagePriority ofLevel(int level) {
    for (MessagePriority priority : values()) {
      if (priority.level == level) {
        return priority;
      }
    }
    throw new IllegalArgumentException(
        "priority level " + level + " is out of range; expected 1 (low) to 4 (critical)");
  }

  /**
   * Parses a wire name ignoring case, or a level written as digits ({@code "3"}).
   *
   * @throws IllegalArgumentException naming the value and the accepted names
   */
  public static MessagePriority fromWire(String name) {
    for (MessagePriority priority : values()) {
      if (priority.wireName.equalsIgnoreCase(name)) {
        return priority;
      }
    }
    if (name.length() == 1 && Character.isDigit(name.charAt(0))) {
      return ofLevel(name.charAt(0) - '0');
    }
    throw new IllegalArgumentException(
        "unknown priority "
            + ErrorText.quoted(name)
            + "; expected one of "
            + StreamingTopics.wireNames(values())
            + " or a level 1-4");
  }
}
