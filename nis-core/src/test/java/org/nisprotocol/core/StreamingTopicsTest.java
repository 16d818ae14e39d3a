package org.nisprotocol.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class StreamingTopicsTest {
  @Test
  void everyValidTopicHasAValidDeadLetterTopicUnderKafkasLimit() {
    String longest = "t".repeat(StreamingTopics.MAX_NAME_LENGTH);
    assertThat(StreamingTopics.isValidName(longest)).isTrue();
    assertThat(StreamingTopics.deadLetterTopicOf(longest)).hasSize(249);
    assertThat(StreamingTopics.isValidName(longest + "t"))
        .as("a topic of 246 characters would have a dead-letter topic of 250")
        .isFalse();
  }

  @Test
  void namesOutsideKafkasAlphabetAreRefused() {
    assertThat(StreamingTopics.isValidName("nis-simulation.v2_a")).isTrue();
    assertThat(StreamingTopics.isValidName("")).isFalse();
    assertThat(StreamingTopics.isValidName("..")).isFalse();
    assertThat(StreamingTopics.isValidName("a b")).isFalse();
    assertThat(StreamingTopics.isValidName("é")).isFalse();
  }

  @Test
  void aMessageOrSubscriptionWithATooLongTopicIsRefusedNamingTheRule() {
    String tooLong = "t".repeat(StreamingTopics.MAX_NAME_LENGTH + 1);
    assertThatThrownBy(() -> NisMessage.builder(MessageType.SYSTEM_HEALTH, "agent").topic(tooLong).build())
        .isInstanceOf(InvalidMessageException.class)
        .hasMessageContaining("1 to 245")
        .hasMessageContaining(".dlt fits Kafka's 249");
    assertThatThrownBy(() -> SubscriptionSpec.group("g").withTopics(tooLong).validated())
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("1 to 245");
  }

  @Test
  void aMessageForADeadLetterTopicIsRefusedWhetherBuiltOrDecoded() {
    assertThatThrownBy(() -> NisMessage.builder(MessageType.GOAL_GENERATION, "agent").topic("nis-goals.dlt").build())
        .isInstanceOf(InvalidMessageException.class)
        .hasMessageContaining("topic 'nis-goals.dlt' is the dead-letter topic of 'nis-goals', which only the bus writes")
        .hasMessageContaining("publish to 'nis-goals' instead");
    String written = MessageCodec.create().encodeToString(
        NisMessage.builder(MessageType.GOAL_GENERATION, "agent").topic("nis-goals").build());
    assertThatThrownBy(() -> MessageCodec.create().decode(
            written.replace("\"nis-goals\"", "\"nis-goals.dlt\"").getBytes(java.nio.charset.StandardCharsets.UTF_8)))
        .isInstanceOf(InvalidMessageException.class)
        .hasMessageContaining("dead-letter topic of 'nis-goals'");
    assertThat(NisMessage.builder(MessageType.GOAL_GENERATION, "agent").topic(".dlt").build().topic())
        .as("no topic before the suffix: a name like any other")
        .isEqualTo(".dlt");
    assertThat(NisMessage.builder(MessageType.GOAL_GENERATION, "agent").topic("nis-goals.dlt-archive").build().topic())
        .isEqualTo("nis-goals.dlt-archive");
  }
}
