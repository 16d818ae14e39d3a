package org.nisprotocol.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class ErrorTextTest {
  @Test
  void aShortValueIsQuotedWhole() {
    assertThat(ErrorText.quoted("telepathy")).isEqualTo("'telepathy'");
    assertThat(ErrorText.quoted("x".repeat(60))).isEqualTo("'" + "x".repeat(60) + "'");
    assertThat(ErrorText.quoted(null)).isEqualTo("null");
  }

  @Test
  void aLongValueIsQuotedByItsStartAndLength() {
    assertThat(ErrorText.quoted("ab".repeat(50_000))).isEqualTo("'" + "ab".repeat(30) + "…' (100000 characters)");
  }

  @Test
  void errorsAboutAMessageShowLongValuesByTheirStart() {
    String huge = "q".repeat(1_000_000);
    assertThatThrownBy(() -> MessageType.fromWire(huge)).hasMessageContaining("1000000 characters").matches(e -> e.getMessage().length() < 400);
    assertThatThrownBy(() -> MessagePriority.fromWire(huge)).hasMessageContaining("1000000 characters").matches(e -> e.getMessage().length() < 400);
    assertThatThrownBy(() -> NisMessage.builder(MessageType.SYSTEM_HEALTH, "agent").topic(huge).build())
        .hasMessageContaining("1000000 characters").matches(e -> e.getMessage().length() < 400);
    assertThatThrownBy(() -> SubscriptionSpec.group("g").withTopics(huge).validated())
        .hasMessageContaining("1000000 characters").matches(e -> e.getMessage().length() < 400);
    assertThatThrownBy(() -> CacheKeys.requireValidNamespace(huge))
        .hasMessageContaining("1000000 characters").matches(e -> e.getMessage().length() < 400);
  }
}
