package org.nisprotocol.embedded;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.MessageHandler;
import org.nisprotocol.core.MessageHandlers;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;

class DeduplicationTest {
  private final InMemoryDeliveryLedger ledger = InMemoryDeliveryLedger.create();

  private static Delivery delivery(NisMessage message, int attempt) {
    return new Delivery(message, "t", 0, 0, attempt, Map.of());
  }

  @Test
  void aRedeliveredMessageReachesTheHandlerOnce() throws Exception {
    List<String> seen = new ArrayList<>();
    MessageHandler handler =
        MessageHandlers.deduplicated(d -> seen.add(d.message().messageId()), ledger, "g", Duration.ofMinutes(5));
    NisMessage message = NisMessage.builder(MessageType.MEMORY_OPERATION, "a").build();

    handler.handle(delivery(message, 1));
    handler.handle(delivery(message, 1));

    assertThat(seen).containsExactly(message.messageId());
  }

  @Test
  void aFailedHandlingIsNotRemembered() throws Exception {
    List<Integer> attempts = new ArrayList<>();
    MessageHandler handler =
        MessageHandlers.deduplicated(
            d -> {
              attempts.add(d.attempt());
              if (d.attempt() == 1) {
                throw new IllegalStateException("first try fails");
              }
            },
            ledger,
            "g",
            Duration.ofMinutes(5));
    NisMessage message = NisMessage.builder(MessageType.MEMORY_OPERATION, "a").build();

    assertThatThrownBy(() -> handler.handle(delivery(message, 1))).isInstanceOf(IllegalStateException.class);
    handler.handle(delivery(message, 2));
    handler.handle(delivery(message, 3));

    assertThat(attempts).containsExactly(1, 2);
  }

  @Test
  void groupsAreDeduplicatedSeparately() throws Exception {
    List<String> seen = new ArrayList<>();
    NisMessage message = NisMessage.builder(MessageType.MEMORY_OPERATION, "a").build();
    MessageHandlers.deduplicated(d -> seen.add("a"), ledger, "group-a", Duration.ofMinutes(1)).handle(delivery(message, 1));
    MessageHandlers.deduplicated(d -> seen.add("b"), ledger, "group-b", Duration.ofMinutes(1)).handle(delivery(message, 1));

    assertThat(seen).containsExactly("a", "b");
  }
}
