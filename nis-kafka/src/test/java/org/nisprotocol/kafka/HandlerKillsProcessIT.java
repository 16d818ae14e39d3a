package org.nisprotocol.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nisprotocol.core.DeadLetterHeaders;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.StreamingTopics;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.testkit.TestServers;

/**
 * A handler that ends its process on one message: each start of the process got the message again
 * and died on it, for ever, holding up the messages behind it. The bus counts each end of the
 * process while the message was in hand as an attempt, added to those the handler failed by
 * throwing, and dead-letters the message once its attempts reach the retry budget, however the
 * process ended: halted, by System.exit through the shutdown hook that closes the bus, or after an
 * OutOfMemoryError.
 */
class HandlerKillsProcessIT {
  @TempDir Path temp;

  @ParameterizedTest(name = "the handler ends the process by {0}")
  @ValueSource(strings = {"halt", "exit", "oom"})
  void aMessageWhoseHandlerEndsTheProcessIsDeadLetteredAfterTheRetryBudget(String how) throws Exception {
    try (KafkaMessageBus publisher = publisher()) {
      Run run = consumeUntilTheLastIsHandled(publisher, how);

      assertThat(run.handledTheLast()).as("the messages behind the one that kills were handled").isTrue();
      assertThat(run.attempts())
          .as("the handler had the message once per attempt of the budget, numbered on across starts")
          .containsExactly("HALTING 2 attempt 1", "HALTING 2 attempt 2");
      assertThat(run.starts()).isEqualTo(HaltingConsumerMain.MAX_ATTEMPTS + 1);

      Delivery deadLetter = theOnlyDeadLetter(publisher, run);
      assertThat(deadLetter.headers()).containsEntry(DeadLetterHeaders.ATTEMPTS, "2");
      assertThat(deadLetter.headers().get(DeadLetterHeaders.ERROR))
          .contains("the process ended 2 times while its handler had this message in hand")
          .doesNotContain("threw");
    }
  }

  @Test
  void anAttemptThatThrewAndOneThatEndedTheProcessSpendTheBudgetTogether() throws Exception {
    try (KafkaMessageBus publisher = publisher()) {
      Run run = consumeUntilTheLastIsHandled(publisher, "throw-then-halt");

      assertThat(run.handledTheLast()).as("the messages behind the one that kills were handled").isTrue();
      assertThat(run.attempts())
          .as("two attempts in all: the budget (counted apart, the end would have got a third)")
          .containsExactly("THROWING 2 attempt 1", "HALTING 2 attempt 2");
      assertThat(run.starts()).isEqualTo(2);

      Delivery deadLetter = theOnlyDeadLetter(publisher, run);
      assertThat(deadLetter.headers()).containsEntry(DeadLetterHeaders.ATTEMPTS, "2");
      assertThat(deadLetter.headers().get(DeadLetterHeaders.ERROR))
          .contains("the process ended once while its handler had this message in hand")
          .contains("its handler threw in the other 1 attempt(s)");
    }
  }

  /** What the consumer processes did: their attempts at the message that kills, and how often one started. */
  private record Run(String topic, String group, List<String> attempts, int starts, boolean handledTheLast) {}

  private KafkaMessageBus publisher() {
    return KafkaMessageBus.create(
        KafkaBusConfig.builder(TestServers.kafka().bootstrapServers()).spoolDirectory(temp.resolve("publisher")).build());
  }

  /**
   * Publishes six messages on one partition, the third one that kills, and starts a consumer
   * process after each end until it handled the last (at most the budget and two more times).
   */
  private Run consumeUntilTheLastIsHandled(KafkaMessageBus publisher, String how) throws Exception {
    String topic = "halting-" + UUID.randomUUID();
    String group = "halting-" + UUID.randomUUID();
    Path consumerSpool = temp.resolve("consumer");
    for (int i = 0; i < 6; i++) {
      publisher.publish(NisMessage.builder(MessageType.AGENT_COORDINATION, "planner")
          .topic(topic)
          .targetAgent("one-key") // one partition, in order
          .content(i == 2 ? Map.of("sequence", i, "halt", true) : Map.of("sequence", i))
          .build());
    }
    List<String> attempts = new ArrayList<>();
    boolean handledTheLast = false;
    int starts = 0;
    while (!handledTheLast && starts < HaltingConsumerMain.MAX_ATTEMPTS + 2) {
      starts++;
      Process consumer = JavaMainProcess.start(Duration.ofMinutes(2), HaltingConsumerMain.class,
          TestServers.kafka().bootstrapServers(), consumerSpool.toString(), topic, group, how);
      try (BufferedReader output =
          new BufferedReader(new InputStreamReader(consumer.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = output.readLine()) != null) {
          if (line.startsWith("HALTING") || line.startsWith("THROWING")) {
            attempts.add(line);
          } else if (line.equals("HANDLED 5")) {
            handledTheLast = true;
            break;
          }
        }
      } finally {
        consumer.destroyForcibly();
        consumer.waitFor(10, TimeUnit.SECONDS);
      }
    }
    return new Run(topic, group, attempts, starts, handledTheLast);
  }

  /** The dead letter of the message that kills, checked to be the only one. */
  private static Delivery theOnlyDeadLetter(KafkaMessageBus publisher, Run run) {
    List<Delivery> deadLetters = new CopyOnWriteArrayList<>();
    publisher.subscribe(
        SubscriptionSpec.group("dlt-" + run.group()).withTopics(StreamingTopics.deadLetterTopicOf(run.topic())),
        deadLetters::add);
    await().atMost(Duration.ofSeconds(60)).until(() -> !deadLetters.isEmpty());
    await().during(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(5))
        .until(() -> deadLetters.size() == 1); // only the message that killed
    Delivery deadLetter = deadLetters.getFirst();
    assertThat(deadLetter.message().content()).containsEntry("sequence", 2);
    assertThat(deadLetter.headers()).containsEntry(DeadLetterHeaders.GROUP, run.group());
    return deadLetter;
  }
}
