package org.nisprotocol.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class MessageCodecTest {
  private static final Instant NOW = Instant.parse("2026-11-21T10:15:30.123456Z");
  private final MessageCodec codec = MessageCodec.create(() -> NOW);

  private static NisMessage fullMessage() {
    return NisMessage.builder(MessageType.SIMULATION_RESULT, "scenario_simulator")
        .messageId("msg_001")
        .priority(MessagePriority.HIGH)
        .targetAgent("coordination_agent")
        .content(
            Map.of(
                "scenario_id", "archaeological_site_001",
                "success_probability", 0.847,
                "iterations", 1000,
                "recommendations", List.of("Increase team size", "Extend timeline"),
                "nested", Map.of("ok", true)))
        .timestamp(Instant.parse("2026-11-21T10:15:30.654321Z"))
        .correlationId("corr-42")
        .integrityScore(87.5)
        .auditFlags(List.of("hype_language"))
        .build();
  }

  @Test
  void aMessageSurvivesTheRoundTrip() {
    NisMessage message = fullMessage();

    NisMessage decoded = codec.decode(codec.encode(message));

    assertThat(decoded).isEqualTo(message);
    assertThat(decoded.content()).isEqualTo(message.content());
  }

  @Test
  void numbersBeyondADoublesRangeKeepTheirValue() {
    String json = "{\"message_type\":\"system_health\",\"source_agent\":\"a\","
        + "\"content\":{\"huge\":1e400,\"negative\":-2.5E+999,\"plain\":0.25}}";

    NisMessage decoded = codec.decode(json.getBytes(StandardCharsets.UTF_8));

    assertThat(decoded.content().get("huge")).isEqualTo(new java.math.BigDecimal("1E+400"));
    assertThat(decoded.content().get("plain")).isEqualTo(0.25);
    JsonNode content = MessageCodec.parse(codec.encode(decoded)).get("content");
    assertThat(content.get("huge").decimalValue()).isEqualByComparingTo("1e400");
    assertThat(content.get("negative").decimalValue()).isEqualByComparingTo("-2.5e999");
  }

  @Test
  void theWireUsesTheGuidesSnakeCaseNamesAndLowercaseEnums() {
    JsonNode json = MessageCodec.parse(codec.encode(fullMessage()));

    assertThat(iterableToList(json.fieldNames()))
        .containsExactly(
            "message_id", "message_type", "priority", "source_agent", "target_agent", "topic",
            "content", "timestamp", "correlation_id", "integrity_score", "audit_flags");
    assertThat(json.get("message_type").textValue()).isEqualTo("simulation_result");
    assertThat(json.get("priority").textValue()).isEqualTo("high");
    assertThat(json.get("topic").textValue()).isEqualTo("nis-simulation");
    assertThat(json.get("timestamp").decimalValue()).isEqualByComparingTo("1795256130.654321");
    assertThat(json.get("content").isObject()).isTrue();
  }

  @Test
  void absentOptionalFieldsAreWrittenAsNull() {
    NisMessage minimal = NisMessage.builder(MessageType.SYSTEM_HEALTH, "demo_agent").build();

    JsonNode json = MessageCodec.parse(codec.encode(minimal));

    assertThat(json.get("target_agent").isNull()).isTrue();
    assertThat(json.get("correlation_id").isNull()).isTrue();
    assertThat(json.get("integrity_score").isNull()).isTrue();
    assertThat(json.get("audit_flags").isEmpty()).isTrue();
  }

  @Test
  void aMinimalInputGetsDefaults() {
    NisMessage message =
        codec.decode(
            "{\"message_type\":\"system_health\",\"source_agent\":\"demo_agent\",\"content\":{\"status\":\"healthy\"}}");

    assertThat(message.messageId()).isNotBlank();
    assertThat(message.priority()).isEqualTo(MessagePriority.NORMAL);
    assertThat(message.topic()).isEqualTo(StreamingTopics.SYSTEM_HEALTH);
    assertThat(message.timestamp()).isEqualTo(NOW);
    assertThat(message.targetAgent()).isEmpty();
    assertThat(message.content()).containsEntry("status", "healthy");
  }

  @Test
  void priorityMayBeALevelOrAnyCaseName() {
    String template =
        "{\"message_type\":\"audit_alert\",\"source_agent\":\"a\",\"content\":{},\"priority\":%s}";

    assertThat(codec.decode(String.format(template, "4")).priority()).isEqualTo(MessagePriority.CRITICAL);
    assertThat(codec.decode(String.format(template, "\"LOW\"")).priority()).isEqualTo(MessagePriority.LOW);
    assertThat(codec.decode(String.format(template, "\"2\"")).priority()).isEqualTo(MessagePriority.NORMAL);
  }

  @ParameterizedTest
  @EnumSource(MessageType.class)
  void everyTypeRoutesToItsTopic(MessageType type) {
    NisMessage message = NisMessage.builder(type, "a").build();

    assertThat(message.topic()).isEqualTo(type.topic()).startsWith("nis-");
    assertThat(MessageType.fromWire(type.wireName())).isEqualTo(type);
  }

  @Test
  void theNineTypesRouteToTheNineTopics() {
    assertThat(Arrays.stream(MessageType.values()).map(MessageType::topic).distinct())
        .containsExactlyInAnyOrderElementsOf(StreamingTopics.all().subList(0, 9));
    assertThat(StreamingTopics.all()).contains(StreamingTopics.EVENTS);
  }

  @Test
  void anUnknownTypeIsRefusedNamingTheTypeAndTheChoices() {
    assertThatThrownBy(
            () -> codec.decode("{\"message_type\":\"telepathy\",\"source_agent\":\"a\",\"content\":{}}"))
        .isInstanceOf(InvalidMessageException.class)
        .hasMessageContaining("unknown message_type 'telepathy'")
        .hasMessageContaining("simulation_result");
  }

  @Test
  void aMissingSourceAgentIsRefused() {
    assertThatThrownBy(() -> codec.decode("{\"message_type\":\"system_health\",\"content\":{}}"))
        .isInstanceOf(InvalidMessageException.class)
        .hasMessageContaining("source_agent is required");
  }

  @Test
  void contentThatIsNotAnObjectIsRefused() {
    assertThatThrownBy(
            () ->
                codec.decode(
                    "{\"message_type\":\"system_health\",\"source_agent\":\"a\",\"content\":[1,2]}"))
        .isInstanceOf(InvalidMessageException.class)
        .hasMessageContaining("content must be a JSON object, got array");
  }

  @Test
  void everyProblemIsReportedAtOnce() {
    assertThatThrownBy(
            () -> codec.decode("{\"message_type\":\"nope\",\"content\":\"text\",\"priority\":9}"))
        .isInstanceOfSatisfying(
            InvalidMessageException.class,
            e ->
                assertThat(e.problems())
                    .hasSize(4)
                    .anyMatch(p -> p.contains("unknown message_type 'nope'"))
                    .anyMatch(p -> p.contains("source_agent is required"))
                    .anyMatch(p -> p.contains("content must be a JSON object"))
                    .anyMatch(p -> p.contains("priority level 9")));
  }

  @Test
  void textThatIsNotJsonIsAMalformedJsonError() {
    assertThatThrownBy(() -> codec.decode("{\"message_type\": "))
        .isInstanceOf(MalformedJsonException.class)
        .hasMessageContaining("not valid JSON");
    assertThatThrownBy(() -> codec.decode(""))
        .isInstanceOf(MalformedJsonException.class)
        .hasMessageContaining("empty");
    assertThatThrownBy(() -> codec.decode("{\"a\":1,\"a\":2}"))
        .isInstanceOf(MalformedJsonException.class)
        .hasMessageContaining("Duplicate field 'a'");
    assertThatThrownBy(() -> codec.decode("{\"a\":1} garbage"))
        .as("text after the document")
        .isInstanceOf(MalformedJsonException.class)
        .hasMessageContaining("not valid JSON");
    assertThatThrownBy(() -> codec.decode("{\"a\":1}{\"b\":2}"))
        .as("a second document")
        .isInstanceOf(MalformedJsonException.class);
    assertThatThrownBy(() -> codec.decode("{\"a\": [1"))
        .as("where the unclosed array started, as the parser says it")
        .isInstanceOf(MalformedJsonException.class)
        .hasMessageContaining("expected close marker for Array (start marker at line 1, column 7)")
        .hasMessageNotContaining("Source");
  }

  @Test
  void bytesThatAreNotTextInTheEncodingTheyLookLikeAreAMalformedJsonError() {
    // Four bytes starting 00 00 00 make the parser read UTF-32, in which these are no characters.
    assertThatThrownBy(() -> codec.decode(new byte[] {0, 0, 0, '{', 0}))
        .isInstanceOf(MalformedJsonException.class)
        .hasMessageStartingWith("body is not valid JSON text");
  }

  /**
   * Numbers of absurd size are refused in a moment with a short message: in plain digits, or
   * rounded to nanoseconds, 1e999999999 and 1e-999999999 take gigabytes or hours.
   */
  @Test
  @Timeout(10)
  void timestampsAndPrioritiesOfAbsurdSizeAreRefusedAtOnce() {
    String message = "{\"message_type\":\"system_health\",\"source_agent\":\"a\",\"content\":{},";
    assertThatThrownBy(() -> codec.decode(message + "\"timestamp\":1e999999999}"))
        .isInstanceOfSatisfying(InvalidMessageException.class, e -> assertThat(e.problems())
            .containsExactly("timestamp 1E+999999999 is out of range"));
    assertThatThrownBy(() -> codec.decode(message + "\"timestamp\":1e-999999999}"))
        .isInstanceOfSatisfying(InvalidMessageException.class, e -> assertThat(e.problems())
            .containsExactly("timestamp 1E-999999999 has more than 100 decimals (nanoseconds are the ninth)"));
    assertThat(codec.decode(message + "\"timestamp\":1763759431.1234561234}").timestamp())
        .as("ten decimals are taken (messages keep microseconds)")
        .isEqualTo(Instant.ofEpochSecond(1763759431L, 123456000));
    assertThatThrownBy(() -> codec.decode(message + "\"priority\":4294967298}"))
        .as("a level that wraps round to 2 as an int")
        .isInstanceOfSatisfying(InvalidMessageException.class, e -> assertThat(e.problems())
            .containsExactly("priority must be a name or a level 1-4, got 4294967298"));
  }

  @Test
  void aMessageIsBuiltOnlyWithATimestampItsReadersTake() {
    // Readers refuse epoch seconds below 0: such a message was accepted and then undecodable.
    assertThatThrownBy(() -> NisMessage.builder(MessageType.SYSTEM_HEALTH, "a")
            .timestamp(Instant.parse("1000-01-01T00:00:00Z")).build())
        .isInstanceOfSatisfying(InvalidMessageException.class, e -> assertThat(e.problems())
            .containsExactly("timestamp 1000-01-01T00:00:00Z is before 1970-01-01T00:00:00Z"));
    for (Instant edge : List.of(Instant.EPOCH, Instant.MAX.truncatedTo(java.time.temporal.ChronoUnit.MICROS))) {
      NisMessage message = NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").timestamp(edge).build();
      assertThat(codec.decode(codec.encode(message)).timestamp()).isEqualTo(edge);
    }
  }

  @Test
  void aMessageThatIsNotAnObjectIsRefused() {
    assertThatThrownBy(() -> codec.decode("[1]".getBytes(StandardCharsets.UTF_8)))
        .isInstanceOf(InvalidMessageException.class)
        .hasMessageContaining("must be a JSON object, got array");
  }

  @Test
  void unknownFieldsAreIgnored() {
    NisMessage message =
        codec.decode(
            "{\"message_type\":\"goal_generation\",\"source_agent\":\"a\",\"content\":{},\"future_field\":1}");

    assertThat(message.messageType()).isEqualTo(MessageType.GOAL_GENERATION);
  }

  @Test
  void contentIsDeeplyImmutable() {
    NisMessage message = fullMessage();

    assertThatThrownBy(() -> message.content().put("x", 1)).isInstanceOf(UnsupportedOperationException.class);
    @SuppressWarnings("unchecked")
    List<Object> recommendations = (List<Object>) message.content().get("recommendations");
    assertThatThrownBy(() -> recommendations.add("x")).isInstanceOf(UnsupportedOperationException.class);
  }

  @Test
  void contentThatIsNotJsonIsRefusedNamingThePath() {
    assertThatThrownBy(
            () -> NisMessage.builder(MessageType.MEMORY_OPERATION, "a").content(Map.of("when", new Object())))
        .isInstanceOf(InvalidMessageException.class)
        .hasMessageContaining("content.when");
  }

  @Test
  void orderingKeyIsTargetThenCorrelationThenSource() {
    NisMessage.Builder builder = NisMessage.builder(MessageType.AGENT_COORDINATION, "source");
    assertThat(builder.build().orderingKey()).isEqualTo("source");
    assertThat(builder.correlationId("corr").build().orderingKey()).isEqualTo("corr");
    assertThat(builder.targetAgent("target").build().orderingKey()).isEqualTo("target");
  }

  @Test
  void generatedMessageIdsAreDistinctVersion4Uuids() {
    java.util.Set<String> ids = new java.util.HashSet<>();
    for (int i = 0; i < 10_000; i++) {
      String id = NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").build().messageId();
      java.util.UUID uuid = java.util.UUID.fromString(id);
      assertThat(uuid.version()).isEqualTo(4);
      assertThat(uuid.variant()).isEqualTo(2);
      ids.add(id);
    }
    assertThat(ids).hasSize(10_000);
  }

  @Test
  void charsThatNeedEscapingAreEscapedAtEveryPositionOfTextsOfEveryLength() {
    // Texts over 12 chars (and shorter ones with a char to escape) are scanned eight bytes at a
    // time, the last word overlapping the one before.
    for (int length = 1; length <= 40; length++) {
      for (int at = 0; at < length; at++) {
        for (char special : new char[] {'"', '\\', '\n', '\u0001', '\u001f'}) {
          char[] chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN".substring(0, length).toCharArray();
          chars[at] = special;
          String text = new String(chars);
          NisMessage message =
              NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").content(Map.of("t", text)).build();

          NisMessage decoded = codec.decode(codec.encode(message));

          assertThat(decoded.content().get("t")).as("length %d, at %d", length, at).isEqualTo(text);
        }
      }
    }
  }

  @Test
  void encodingsOnOneThreadDoNotShareBytes() {
    NisMessage small = fullMessage();
    NisMessage large = messageWithBlobOf(300 * 1024);

    byte[] first = codec.encode(small);
    byte[] largeBytes = codec.encode(large);
    byte[] again = codec.encode(small);

    assertThat(again).isEqualTo(first);
    assertThat(codec.decode(first)).isEqualTo(small);
    assertThat(codec.decode(largeBytes)).isEqualTo(large);
  }

  @Test
  void aThreadKeepsItsGrownWriterOnlyUpToTheCap() {
    NisMessage medium = messageWithBlobOf(MessageCodec.KEPT_WRITER_BYTES / 4);
    NisMessage large = messageWithBlobOf(MessageCodec.KEPT_WRITER_BYTES + 1);

    codec.encode(medium);
    int afterMedium = MessageCodec.keptWriterCapacity();
    codec.encode(large);
    int afterLarge = MessageCodec.keptWriterCapacity();

    assertThat(afterMedium).as("a writer grown below the cap is kept").isGreaterThan(MessageCodec.KEPT_WRITER_BYTES / 4);
    assertThat(afterLarge).as("a writer grown past the cap is dropped").isLessThanOrEqualTo(MessageCodec.KEPT_WRITER_BYTES);
  }

  private static NisMessage messageWithBlobOf(int chars) {
    return NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").content(Map.of("blob", "x".repeat(chars))).build();
  }

  private static List<String> iterableToList(java.util.Iterator<String> names) {
    List<String> list = new java.util.ArrayList<>();
    names.forEachRemaining(list::add);
    return list;
  }
}
