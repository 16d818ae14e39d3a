package org.nisprotocol.core;

import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

/** The topics of the NIS message bus and the rules for topic names. */
public final class StreamingTopics {
  public static final String CONSCIOUSNESS = "nis-consciousness";
  public static final String GOALS = "nis-goals";
  public static final String SIMULATION = "nis-simulation";
  public static final String ALIGNMENT = "nis-alignment";
  public static final String MEMORY = "nis-memory";
  public static final String COORDINATION = "nis-coordination";
  public static final String SYSTEM_HEALTH = "nis-system-health";
  public static final String AUDIT_ALERTS = "nis-audit-alerts";
  public static final String PERFORMANCE = "nis-performance";
  /** The general event stream of the runbook (backups read it). */
  public static final String EVENTS = "nis-events";

  /** Suffix of the dead-letter topic that goes with each topic. */
  public static final String DEAD_LETTER_SUFFIX = ".dlt";

  /**
   * The longest topic name the bus takes: Kafka's limit (249) less the dead-letter suffix, so
   * that every topic has a dead-letter topic.
   */
  public static final int MAX_NAME_LENGTH = 249 - DEAD_LETTER_SUFFIX.length();

  /** What a legal topic name is, for error messages. */
  private static final String NAME_RULE =
      "letters, digits, '.', '_', '-'; 1 to " + MAX_NAME_LENGTH + " of them, so that <topic>"
          + DEAD_LETTER_SUFFIX + " fits Kafka's 249";

  private static final List<String> ALL =
      List.of(
          CONSCIOUSNESS,
          GOALS,
          SIMULATION,
          ALIGNMENT,
          MEMORY,
          COORDINATION,
          SYSTEM_HEALTH,
          AUDIT_ALERTS,
          PERFORMANCE,
          EVENTS);

  private StreamingTopics() {}

  /** The nine routed topics and nis-events, in a fixed order. */
  public static List<String> all() {
    return ALL;
  }

  /** The dead-letter topic of a topic: {@code nis-simulation} → {@code nis-simulation.dlt}. */
  public static String deadLetterTopicOf(String topic) {
    return topic + DEAD_LETTER_SUFFIX;
  }

  /** Whether the topic is the dead-letter topic of another ({@code <topic>.dlt}). */
  public static boolean isDeadLetterTopic(String topic) {
    return topic.endsWith(DEAD_LETTER_SUFFIX) && topic.length() > DEAD_LETTER_SUFFIX.length();
  }

  /**
   * Why a message may not name a dead-letter topic, for an error message: the bus writes those,
   * with headers saying why and where from, and a replay takes what they hold back to their topic
   * for the group that gave up on it (a message written there by a client would go to every group).
   */
  public static String deadLetterTopicProblem(String topic) {
    String of = topic.substring(0, topic.length() - DEAD_LETTER_SUFFIX.length());
    return "topic " + ErrorText.quoted(topic) + " is the dead-letter topic of " + ErrorText.quoted(of)
        + ", which only the bus writes (a handler gave up on a message there); publish to " + ErrorText.quoted(of)
        + " instead";
  }

  /** The problem with a topic name that is not {@link #isValidName valid}, for an error message. */
  public static String invalidNameProblem(String topic) {
    return "topic " + ErrorText.quoted(topic) + " is not a valid topic name (" + NAME_RULE + ")";
  }

  /** Whether a name is a legal topic name ({@link #NAME_RULE}; not "." or ".."). */
  public static boolean isValidName(String topic) {
    if (topic.isEmpty() || topic.length() > MAX_NAME_LENGTH || topic.equals(".") || topic.equals("..")) {
      return false;
    }
    for (int i = 0; i < topic.length(); i++) {
      char c = topic.charAt(i);
      boolean legal =
          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '.' || c == '_' || c == '-';
      if (!legal) {
        return false;
      }
    }
    return true;
  }

  static String wireNames(Enum<?>[] values) {
    return Arrays.stream(values)
        .map(value -> value.name().toLowerCase(java.util.Locale.ROOT))
        .collect(Collectors.joining(", ", "[", "]"));
  }
}
