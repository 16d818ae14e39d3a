package org.nisprotocol.core;

import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.UUID;

/**
 * One agent message: what an agent says, to whom, how urgently, on which topic. Immutable; its
 * content is a deep-immutable JSON object ({@link Map}s, {@link List}s, strings, numbers, booleans
 * and nulls).
 *
 * <p>Build with {@link #builder(MessageType, String)}; read and write JSON with {@link
 * MessageCodec}. The JSON field names are those of the integration guide: message_id,
 * message_type, priority, source_agent, target_agent, topic, content, timestamp, correlation_id,
 * integrity_score, audit_flags.
 */
public final class NisMessage {
  /** The most characters of message_id, source_agent, target_agent and correlation_id. */
  public static final int MAX_ID_LENGTH = 256;

  private final String messageId;
  private final MessageType messageType;
  private final MessagePriority priority;
  private final String sourceAgent;
  private final String targetAgent; // nullable
  private final String topic;
  private final Map<String, Object> content;
  private final Instant timestamp;
  private final String correlationId; // nullable
  private final Double integrityScore; // nullable
  private final List<String> auditFlags;

  private NisMessage(Builder builder) {
    this.messageId = builder.messageId;
    this.messageType = builder.messageType;
    this.priority = builder.priority;
    this.sourceAgent = builder.sourceAgent;
    this.targetAgent = builder.targetAgent;
    this.topic = builder.topic == null ? builder.messageType.topic() : builder.topic;
    this.content = builder.content;
    this.timestamp = builder.timestamp;
    this.correlationId = builder.correlationId;
    this.integrityScore = builder.integrityScore;
    this.auditFlags = List.copyOf(builder.auditFlags);
  }

  /**
   * A random (version 4) UUID as text. Message ids need to be unique, not secret, so this draws
   * from a fast thread-local generator rather than {@link UUID#randomUUID()}'s secure one.
   */
  static String randomId() {
    java.util.concurrent.ThreadLocalRandom random = java.util.concurrent.ThreadLocalRandom.current();
    long high = (random.nextLong() & ~0xF000L) | 0x4000L; // version 4
    long low = (random.nextLong() & 0x3FFFFFFFFFFFFFFFL) | 0x8000000000000000L; // IETF variant
    return new UUID(high, low).toString();
  }

  /**
   * A builder with a fresh message_id, priority normal, empty content, timestamp now and the topic
   * the type routes to.
   */
  public static Builder builder(MessageType messageType, String sourceAgent) {
    return new Builder(messageType, sourceAgent);
  }

  /** A builder that starts as a copy of this message. */
  public Builder toBuilder() {
    Builder builder = new Builder(messageType, sourceAgent);
    builder.messageId = messageId;
    builder.priority = priority;
    builder.targetAgent = targetAgent;
    builder.topic = topic;
    builder.content = content;
    builder.timestamp = timestamp;
    builder.correlationId = correlationId;
    builder.integrityScore = integrityScore;
    builder.auditFlags = new ArrayList<>(auditFlags);
    return builder;
  }

  public String messageId() {
    return messageId;
  }

  public MessageType messageType() {
    return messageType;
  }

  public MessagePriority priority() {
    return priority;
  }

  public String sourceAgent() {
    return sourceAgent;
  }

  public Optional<String> targetAgent() {
    return Optional.ofNullable(targetAgent);
  }

  public String topic() {
    return topic;
  }

  /** The content, a deep-immutable JSON object. */
  public Map<String, Object> content() {
    return content;
  }

  public Instant timestamp() {
    return timestamp;
  }

  public Optional<String> correlationId() {
    return Optional.ofNullable(correlationId);
  }

  /** The self-audit score from 0 to 100, once the message has been audited. */
  public OptionalDouble integrityScore() {
    return integrityScore == null ? OptionalDouble.empty() : OptionalDouble.of(integrityScore);
  }

  public List<String> auditFlags() {
    return auditFlags;
  }

  /**
   * The key that keeps messages in order: messages with the same key are delivered in the order
   * they were published. It is the target agent, else the correlation id, else the source agent.
   */
  public String orderingKey() {
    if (targetAgent != null) {
      return targetAgent;
    }
    return correlationId != null ? correlationId : sourceAgent;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof NisMessage that
        && messageId.equals(that.messageId)
        && messageType == that.messageType
        && priority == that.priority
        && sourceAgent.equals(that.sourceAgent)
        && Objects.equals(targetAgent, that.targetAgent)
        && topic.equals(that.topic)
        && content.equals(that.content)
        && timestamp.equals(that.timestamp)
        && Objects.equals(correlationId, that.correlationId)
        && Objects.equals(integrityScore, that.integrityScore)
        && auditFlags.equals(that.auditFlags);
  }

  @Override
  public int hashCode() {
    return Objects.hash(messageId, messageType, topic, timestamp);
  }

  @Override
  public String toString() {
    return "NisMessage[message_id="
        + messageId
        + ", message_type="
        + messageType.wireName()
        + ", priority="
        + priority.wireName()
        + ", source_agent="
        + sourceAgent
        + ", target_agent="
        + targetAgent
        + ", topic="
        + topic
        + ", correlation_id="
        + correlationId
        + "]";
  }

  /** Builds a {@link NisMessage}; {@link #build()} checks every field and reports all problems. */
  public static final class Builder {
    private String messageId; // a fresh random id when not set
    private final MessageType messageType;
    private MessagePriority priority = MessagePriority.NORMAL;
    private final String sourceAgent;
    private String targetAgent;
    private String topic;
    private Map<String, Object> content = Map.of();
    private Instant timestamp; // now when not set
    private String correlationId;
    private Double integrityScore;
    private List<String> auditFlags = new ArrayList<>();

    private Builder(MessageType messageType, String sourceAgent) {
      this.messageType = Objects.requireNonNull(messageType, "messageType");
      this.sourceAgent = Objects.requireNonNull(sourceAgent, "sourceAgent");
    }

    public Builder messageId(String messageId) {
      this.messageId = Objects.requireNonNull(messageId, "messageId");
      return this;
    }

    public Builder priority(MessagePriority priority) {
      this.priority = Objects.requireNonNull(priority, "priority");
      return this;
    }

    public Builder targetAgent(String targetAgent) {
      this.targetAgent = Objects.requireNonNull(targetAgent, "targetAgent");
      return this;
    }

    /** Publishes to this topic instead of the one the type routes to. */
    public Builder topic(String topic) {
      this.topic = Objects.requireNonNull(topic, "topic");
      return this;
    }

    /**
     * The content: a map of JSON values (maps with string keys, lists, strings, numbers, booleans,
     * nulls). It is copied; later changes to the argument do not show.
     *
     * @throws InvalidMessageException naming the first value that is not JSON
     */
    public Builder content(Map<String, ?> content) {
      this.content = JsonValues.immutableObject(Objects.requireNonNull(content, "content"));
      return this;
    }

    Builder trustedContent(Map<String, Object> immutableContent) {
      this.content = immutableContent;
      return this;
    }

    /** When the message was created; kept to the microsecond, as on the wire. */
    public Builder timestamp(Instant timestamp) {
      this.timestamp = Objects.requireNonNull(timestamp, "timestamp").truncatedTo(ChronoUnit.MICROS);
      return this;
    }

    public Builder correlationId(String correlationId) {
      this.correlationId = Objects.requireNonNull(correlationId, "correlationId");
      return this;
    }

    public Builder integrityScore(double integrityScore) {
      this.integrityScore = integrityScore;
      return this;
    }

    public Builder auditFlags(List<String> auditFlags) {
      this.auditFlags = new ArrayList<>(auditFlags);
      return this;
    }

    /**
     * @throws InvalidMessageException listing every field that is wrong
     */
    public NisMessage build() {
      // Defaults are drawn here, not up front, so decoding (which sets both) does not pay for them.
      if (messageId == null) {
        messageId = randomId();
      }
      if (timestamp == null) {
        timestamp = Instant.now().truncatedTo(ChronoUnit.MICROS);
      }
      List<String> problems = new ArrayList<>();
      requireText(problems, "message_id", messageId);
      requireText(problems, "source_agent", sourceAgent);
      if (targetAgent != null) {
        requireText(problems, "target_agent", targetAgent);
      }
      if (correlationId != null) {
        requireText(problems, "correlation_id", correlationId);
      }
      if (topic != null && !StreamingTopics.isValidName(topic)) {
        problems.add(StreamingTopics.invalidNameProblem(topic));
      } else if (topic != null && StreamingTopics.isDeadLetterTopic(topic)) {
        problems.add(StreamingTopics.deadLetterTopicProblem(topic));
      }
      if (integrityScore != null
          && (integrityScore.isNaN() || integrityScore < 0 || integrityScore > 100)) {
        problems.add("integrity_score " + integrityScore + " is outside 0-100");
      }
      if (timestamp.getEpochSecond() < 0) {
        // The wire format's epoch seconds start at 1970, and readers refuse earlier ones: such a
        // message would be accepted here and be undecodable by every consumer.
        problems.add("timestamp " + timestamp + " is before 1970-01-01T00:00:00Z");
      }
      if (!problems.isEmpty()) {
        throw new InvalidMessageException(problems);
      }
      return new NisMessage(this);
    }

    private static void requireText(List<String> problems, String field, String value) {
      if (value.isBlank()) {
        problems.add(field + " must not be blank");
      } else if (value.length() > MAX_ID_LENGTH) {
        problems.add(field + " is " + value.length() + " characters long; at most " + MAX_ID_LENGTH + " allowed");
      }
    }
  }
}
