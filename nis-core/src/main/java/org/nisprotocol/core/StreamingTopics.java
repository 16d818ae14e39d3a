package org.nisprotocol.core;

import java.util.Arrays;
import java.util.List;
import java.util.regex.Pattern;
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

  // Kafka's own rule for topic names.
  private static final Pattern VALID_NAME = Pattern.compile("[a-zA-Z0-9._-]{1,249}");

  private StreamingTopics() {}

  /** The nine routed topics and nis-events, in a fixed order. */
  public static List<String> all() {
    return ALL;
  }

  /** The dead-letter topic of a topic: {@code nis-simulation} → {@code nis-simulation.dlt}. */
  public static String deadLetterTopicOf(String topic) {
    return topic + DEAD_LETTER_SUFFIX;
  }

  /** Whether a name is a legal topic name (letters, digits, '.', '_', '-'; 1 to 249 of them). */
  public static boolean isValidName(String topic) {
    return VALID_NAME.matcher(topic).matches() && !topic.equals(".") && !topic.equals("..");
  }

  static String wireNames(Enum<?>[] values) {
    return Arrays.stream(values)
        .map(value -> value.name().toLowerCase(java.util.Locale.ROOT))
        .collect(Collectors.joining(", ", "[", "]"));
  }
}
