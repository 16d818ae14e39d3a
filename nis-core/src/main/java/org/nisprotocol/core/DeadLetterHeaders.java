package org.nisprotocol.core;

/** Header names a dead-lettered message carries, on every backend. */
public final class DeadLetterHeaders {
  /** What the name of every header a dead-lettering adds begins with. */
  public static final String PREFIX = "nis.dlt.";
  /** Class and message of the last error, or why the bytes could not be read. */
  public static final String ERROR = "nis.dlt.error";
  /** How many deliveries were tried. */
  public static final String ATTEMPTS = "nis.dlt.attempts";
  /** The topic the message was read from. */
  public static final String ORIGINAL_TOPIC = "nis.dlt.original.topic";
  /** The partition it was read from. */
  public static final String ORIGINAL_PARTITION = "nis.dlt.original.partition";
  /** Its offset in that partition. */
  public static final String ORIGINAL_OFFSET = "nis.dlt.original.offset";
  /** The consumer group whose handler gave up on it. */
  public static final String GROUP = "nis.dlt.group";
  /**
   * On a dead letter replayed to its topic: the group it is replayed for (its {@link #GROUP});
   * subscriptions of other groups skip it, having handled it when it first came.
   */
  public static final String REPLAYED_FOR = "nis.replayed.for";

  private DeadLetterHeaders() {}

  /** Whether a header is one the bus sets itself on dead letters and their replays. */
  public static boolean isSetByTheBus(String name) {
    return name.startsWith(PREFIX) || name.equals(REPLAYED_FOR);
  }
}
