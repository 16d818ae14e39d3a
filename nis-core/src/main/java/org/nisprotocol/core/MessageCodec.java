package org.nisprotocol.core;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * The JSON wire format of {@link NisMessage}: UTF-8 JSON with the integration guide's snake_case
 * field names. message_type and priority are lowercase names; timestamp is epoch seconds with a
 * fraction (microseconds).
 *
 * <p>On input only message_type, source_agent and content are required. A missing message_id is
 * generated, a missing timestamp is now, a missing topic is the one the type routes to, a missing
 * priority is normal; priority may be given as a level 1-4. Unknown fields are ignored so that
 * newer writers can talk to older readers. Every problem is reported at once.
 *
 * <p>Thread-safe.
 */
public final class MessageCodec {
  private static final ObjectMapper MAPPER =
      JsonMapper.builder()
          .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .configure(com.fasterxml.jackson.databind.cfg.JsonNodeFeature.STRIP_TRAILING_BIGDECIMAL_ZEROES, false)
          .build();

  private static final BigDecimal NANOS_PER_SECOND = BigDecimal.valueOf(1_000_000_000L);

  private final InstantSource clock;
  private final Supplier<String> messageIds;

  private MessageCodec(InstantSource clock, Supplier<String> messageIds) {
    this.clock = clock;
    this.messageIds = messageIds;
  }

  /** A codec that stamps absent timestamps with the system clock and ids with random UUIDs. */
  public static MessageCodec create() {
    return create(InstantSource.system());
  }

  /** A codec that stamps absent timestamps from the given clock. */
  public static MessageCodec create(InstantSource clock) {
    return new MessageCodec(
        Objects.requireNonNull(clock, "clock"), NisMessage::randomId);
  }

  // Field names with their punctuation, and the enums' quoted wire names, encoded once.
  private static final byte[] MESSAGE_ID = ascii("{\"message_id\":");
  private static final byte[] MESSAGE_TYPE = ascii(",\"message_type\":");
  private static final byte[] PRIORITY = ascii(",\"priority\":");
  private static final byte[] SOURCE_AGENT = ascii(",\"source_agent\":");
  private static final byte[] TARGET_AGENT = ascii(",\"target_agent\":");
  private static final byte[] TOPIC = ascii(",\"topic\":");
  private static final byte[] CONTENT = ascii(",\"content\":");
  private static final byte[] TIMESTAMP = ascii(",\"timestamp\":");
  private static final byte[] CORRELATION_ID = ascii(",\"correlation_id\":");
  private static final byte[] INTEGRITY_SCORE = ascii(",\"integrity_score\":");
  private static final byte[] AUDIT_FLAGS = ascii(",\"audit_flags\":");
  private static final byte[][] TYPE_NAMES = quoted(MessageType.values(), MessageType::wireName);
  private static final byte[][] PRIORITY_NAMES = quoted(MessagePriority.values(), MessagePriority::wireName);

  /**
   * Each thread's writer, reused from message to message: a message is written into it and only
   * the result is copied out, so encoding allocates one array of the message's size. A writer
   * that grew past {@link #KEPT_WRITER_BYTES} for a large message is not kept.
   */
  private static final ThreadLocal<JsonWriter> WRITERS = ThreadLocal.withInitial(() -> new JsonWriter(4096));

  static final int KEPT_WRITER_BYTES = 256 * 1024;

  /** The capacity of the writer this thread keeps for its next message (for tests). */
  static int keptWriterCapacity() {
    return WRITERS.get().capacity();
  }

  /** The message as UTF-8 JSON. */
  public byte[] encode(NisMessage message) {
    // Content holds only JSON values (checked when the message is built), so writing it never
    // runs code that could encode another message on this thread while the writer is in use.
    JsonWriter json = WRITERS.get().reset();
    try {
      return write(json, message);
    } finally {
      if (json.capacity() > KEPT_WRITER_BYTES) {
        WRITERS.remove();
      }
    }
  }

  private static byte[] write(JsonWriter json, NisMessage message) {
    json.bytes(MESSAGE_ID).string(message.messageId());
    json.bytes(MESSAGE_TYPE).bytes(TYPE_NAMES[message.messageType().ordinal()]);
    json.bytes(PRIORITY).bytes(PRIORITY_NAMES[message.priority().ordinal()]);
    json.bytes(SOURCE_AGENT).string(message.sourceAgent());
    json.bytes(TARGET_AGENT);
    optional(json, message.targetAgent().orElse(null));
    json.bytes(TOPIC).string(message.topic());
    json.bytes(CONTENT).value(message.content());
    epochSeconds(json.bytes(TIMESTAMP), message.timestamp());
    json.bytes(CORRELATION_ID);
    optional(json, message.correlationId().orElse(null));
    json.bytes(INTEGRITY_SCORE);
    if (message.integrityScore().isPresent()) {
      json.value(message.integrityScore().getAsDouble());
    } else {
      json.nullValue();
    }
    json.bytes(AUDIT_FLAGS).value(message.auditFlags());
    return json.raw('}').toBytes();
  }

  /** Epoch seconds with six decimals, e.g. {@code 1763759431.123456} (a message's are never before 1970). */
  private static void epochSeconds(JsonWriter json, Instant instant) {
    json.decimal(instant.getEpochSecond(), instant.getNano() / 1_000, 6);
  }

  private static byte[] ascii(String text) {
    return text.getBytes(StandardCharsets.US_ASCII);
  }

  private static <E extends Enum<E>> byte[][] quoted(E[] values, java.util.function.Function<E, String> wireName) {
    byte[][] names = new byte[values.length][];
    for (E value : values) {
      names[value.ordinal()] = ascii('"' + wireName.apply(value) + '"');
    }
    return names;
  }

  private static void optional(JsonWriter json, String value) {
    if (value == null) {
      json.nullValue();
    } else {
      json.string(value);
    }
  }

  /** The message as a JSON string. */
  public String encodeToString(NisMessage message) {
    return new String(encode(message), StandardCharsets.UTF_8);
  }

  /**
   * Parses a message from UTF-8 JSON.
   *
   * @throws MalformedJsonException when the bytes are not JSON at all
   * @throws InvalidMessageException listing every field that is missing or wrong
   */
  public NisMessage decode(byte[] json) {
    return fromTree(parse(json));
  }

  /** Parses a message from a JSON string; see {@link #decode(byte[])}. */
  public NisMessage decode(String json) {
    return decode(json.getBytes(StandardCharsets.UTF_8));
  }

  /**
   * Parses any JSON document, with the same strictness as messages (duplicate keys refused).
   *
   * @throws MalformedJsonException naming where the text stops being JSON
   */
  public static JsonNode parse(byte[] json) {
    try {
      JsonNode node = MAPPER.readTree(json);
      if (node == null || node.isMissingNode()) {
        throw new MalformedJsonException("body is empty; expected a JSON document");
      }
      return node;
    } catch (JsonProcessingException e) {
      throw new MalformedJsonException("body is not valid JSON: " + withoutSourceNote(e.getOriginalMessage())
          + locationOf(e));
    } catch (IOException e) {
      // Bytes that are not text in the encoding the parser took them for (UTF-32 by their
      // first bytes, say): reading from an array fails no other way.
      throw new MalformedJsonException("body is not valid JSON text: " + e.getMessage());
    }
  }

  /** Shared JSON mapper configured as the wire format wants it. */
  public static ObjectMapper mapper() {
    return MAPPER;
  }

  private static final java.util.regex.Pattern SOURCE_NOTE =
      java.util.regex.Pattern.compile("\\[Source: [^;\\]]*; line: (\\d+), column: (\\d+)\\]");

  /**
   * The parser's message with a location it quotes (where an unclosed object started, say) as
   * "line 1, column 1", without the parser's note on how it shows the source.
   */
  private static String withoutSourceNote(String message) {
    return message == null ? "" : SOURCE_NOTE.matcher(message).replaceAll("line $1, column $2");
  }

  private static String locationOf(JsonProcessingException e) {
    return e.getLocation() == null
        ? ""
        : " (line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")";
  }

  private NisMessage fromTree(JsonNode node) {
    if (!node.isObject()) {
      throw new InvalidMessageException(
          "a message must be a JSON object, got " + node.getNodeType().name().toLowerCase());
    }
    List<String> problems = new ArrayList<>();
    MessageType type = null;
    JsonNode typeNode = node.path("message_type");
    if (typeNode.isMissingNode() || typeNode.isNull()) {
      problems.add("message_type is required");
    } else if (!typeNode.isTextual()) {
      problems.add("message_type must be a string, got " + typeNode);
    } else {
      try {
        type = MessageType.fromWire(typeNode.textValue());
      } catch (IllegalArgumentException e) {
        problems.add(e.getMessage());
      }
    }
    String source = requiredText(node, "source_agent", problems);
    JsonNode contentNode = node.path("content");
    if (contentNode.isMissingNode() || contentNode.isNull()) {
      problems.add("content is required (a JSON object)");
    } else if (!contentNode.isObject()) {
      problems.add(
          "content must be a JSON object, got "
              + contentNode.getNodeType().name().toLowerCase()
              + " "
              + abbreviate(contentNode.toString()));
    }
    MessagePriority priority = priority(node.path("priority"), problems);
    String messageId = optionalText(node, "message_id", problems);
    String target = optionalText(node, "target_agent", problems);
    String topic = optionalText(node, "topic", problems);
    String correlationId = optionalText(node, "correlation_id", problems);
    Instant timestamp = timestamp(node.path("timestamp"), problems);
    Double score = null;
    JsonNode scoreNode = node.path("integrity_score");
    if (scoreNode.isNumber()) {
      score = scoreNode.doubleValue();
    } else if (!scoreNode.isMissingNode() && !scoreNode.isNull()) {
      problems.add("integrity_score must be a number, got " + abbreviate(scoreNode.toString()));
    }
    List<String> flags = new ArrayList<>();
    JsonNode flagsNode = node.path("audit_flags");
    if (flagsNode.isArray()) {
      for (JsonNode flag : flagsNode) {
        if (flag.isTextual()) {
          flags.add(flag.textValue());
        } else {
          problems.add("audit_flags must hold strings, got " + abbreviate(flag.toString()));
          break;
        }
      }
    } else if (!flagsNode.isMissingNode() && !flagsNode.isNull()) {
      problems.add("audit_flags must be an array of strings, got " + abbreviate(flagsNode.toString()));
    }
    if (!problems.isEmpty()) {
      throw new InvalidMessageException(problems);
    }
    NisMessage.Builder builder =
        NisMessage.builder(type, source)
            .messageId(messageId == null ? messageIds.get() : messageId)
            .priority(priority)
            .trustedContent(JsonValues.fromObjectNode(contentNode))
            .timestamp(timestamp == null ? clock.instant() : timestamp)
            .auditFlags(flags);
    if (target != null) {
      builder.targetAgent(target);
    }
    if (topic != null) {
      builder.topic(topic);
    }
    if (correlationId != null) {
      builder.correlationId(correlationId);
    }
    if (score != null) {
      builder.integrityScore(score);
    }
    return builder.build();
  }

  private static String requiredText(JsonNode node, String field, List<String> problems) {
    JsonNode value = node.path(field);
    if (value.isMissingNode() || value.isNull()) {
      problems.add(field + " is required");
      return null;
    }
    return optionalText(node, field, problems);
  }

  private static String optionalText(JsonNode node, String field, List<String> problems) {
    JsonNode value = node.path(field);
    if (value.isMissingNode() || value.isNull()) {
      return null;
    }
    if (!value.isTextual()) {
      problems.add(field + " must be a string, got " + abbreviate(value.toString()));
      return null;
    }
    return value.textValue();
  }

  private static MessagePriority priority(JsonNode value, List<String> problems) {
    if (value.isMissingNode() || value.isNull()) {
      return MessagePriority.NORMAL;
    }
    try {
      if (value.isIntegralNumber()) {
        if (!value.canConvertToInt()) { // intValue() would wrap round to some level
          problems.add("priority must be a name or a level 1-4, got " + abbreviate(value.toString()));
          return MessagePriority.NORMAL;
        }
        return MessagePriority.ofLevel(value.intValue());
      }
      if (value.isTextual()) {
        return MessagePriority.fromWire(value.textValue());
      }
      problems.add("priority must be a name or a level 1-4, got " + abbreviate(value.toString()));
    } catch (IllegalArgumentException e) {
      problems.add(e.getMessage());
    }
    return MessagePriority.NORMAL;
  }

  /** Decimals a timestamp may have; those past the ninth are rounded away. */
  static final int MAX_TIMESTAMP_DECIMALS = 100;

  private static Instant timestamp(JsonNode value, List<String> problems) {
    if (value.isMissingNode() || value.isNull()) {
      return null;
    }
    if (!value.isNumber()) {
      problems.add(
          "timestamp must be epoch seconds as a number, got " + abbreviate(value.toString()));
      return null;
    }
    BigDecimal seconds = value.decimalValue();
    // Shown as written (1e999999999 stays short), and compared by magnitude first, so that no
    // arithmetic on such a number runs: it would spell out or divide by a power of ten of that size.
    if (seconds.signum() < 0 || seconds.compareTo(BigDecimal.valueOf(Instant.MAX.getEpochSecond() + 1)) >= 0) {
      problems.add("timestamp " + abbreviate(seconds.toString()) + " is out of range");
      return null;
    }
    if (seconds.scale() > MAX_TIMESTAMP_DECIMALS) {
      problems.add("timestamp " + abbreviate(seconds.toString()) + " has more than " + MAX_TIMESTAMP_DECIMALS
          + " decimals (nanoseconds are the ninth)");
      return null;
    }
    long whole = seconds.longValue();
    long nanos =
        seconds.subtract(BigDecimal.valueOf(whole)).multiply(NANOS_PER_SECOND)
            .setScale(0, RoundingMode.HALF_UP).longValueExact();
    return Instant.ofEpochSecond(whole, nanos);
  }

  private static String abbreviate(String text) {
    return text.length() <= 60 ? text : text.substring(0, 57) + "...";
  }
}
