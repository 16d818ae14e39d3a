package org.nisprotocol.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.MessagePriority;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.PublishReceipt;
import org.nisprotocol.core.RetryPolicy;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.testkit.StallWatch;
import org.nisprotocol.testkit.TestServers;

/** A critical message does not wait behind a backlog of low ones (the urgent lane). */
class KafkaPriorityLaneIT {
  @TempDir Path temp;

  private static NisMessage message(String topic, int i, MessagePriority priority) {
    return NisMessage.builder(MessageType.PERFORMANCE_METRIC, "lane_test")
        .topic(topic)
        .priority(priority)
        .targetAgent("agent-" + (i % 16))
        .content(Map.of("i", i))
        .build();
  }

  @Test
  void criticalMessagesOvertakeABacklogOfLowOnes() throws Exception {
    String topic = "lanes-" + UUID.randomUUID();
    int backlog = 20_000;
    AtomicInteger lowHandled = new AtomicInteger();
    List<Integer> lowHandledWhenCriticalArrived = new CopyOnWriteArrayList<>();
    List<Delivery> critical = new CopyOnWriteArrayList<>();
    try (KafkaMessageBus bus =
        KafkaMessageBus.create(
            KafkaBusConfig.builder(TestServers.kafka().bootstrapServers())
                .topicPartitions(4)
                .spoolDirectory(temp.resolve("spool"))
                .shutdownTimeout(Duration.ofSeconds(5))
                .build())) {
      List<CompletableFuture<PublishReceipt>> sent = new ArrayList<>();
      for (int i = 0; i < backlog; i++) {
        sent.add(bus.publishAsync(message(topic, i, MessagePriority.LOW)));
      }
      CompletableFuture.allOf(sent.toArray(CompletableFuture[]::new)).get();
      bus.subscribe(
          SubscriptionSpec.group("lanes-" + UUID.randomUUID()).withTopics(topic),
          d -> {
            if (d.message().priority() == MessagePriority.CRITICAL) {
              lowHandledWhenCriticalArrived.add(lowHandled.get());
              critical.add(d);
            } else {
              Thread.sleep(1);
              lowHandled.incrementAndGet();
            }
          });
      await().atMost(Duration.ofSeconds(30)).until(() -> lowHandled.get() > 100);

      for (int i = 0; i < 3; i++) {
        bus.publish(message(topic, i, MessagePriority.CRITICAL));
      }

      await().atMost(Duration.ofSeconds(60)).until(() -> critical.size() == 3);
      assertThat(critical).extracting(Delivery::partition).containsOnly(3);
      assertThat(lowHandledWhenCriticalArrived)
          .as("critical messages are handled while most of the backlog still waits")
          .allMatch(handled -> handled < backlog / 2);
    }
  }

  @Test
  void replayedDeadLettersGoBackToTheLaneAndPartitionTheBusGivesThem() throws Exception {
    String topic = "lanes-replay-" + UUID.randomUUID();
    int keys = 16;
    AtomicBoolean handlerFixed = new AtomicBoolean();
    Map<Integer, Integer> firstPartition = new ConcurrentHashMap<>();
    Map<Integer, Integer> replayedPartition = new ConcurrentHashMap<>();
    try (KafkaMessageBus bus =
        KafkaMessageBus.create(
            KafkaBusConfig.builder(TestServers.kafka().bootstrapServers())
                .topicPartitions(4)
                .retryPolicy(new RetryPolicy(1, Duration.ofMillis(10), Duration.ofMillis(10), 0))
                .spoolDirectory(temp.resolve("spool"))
                .shutdownTimeout(Duration.ofSeconds(5))
                .build())) {
      bus.subscribe(
          SubscriptionSpec.group("lanes-replay-" + UUID.randomUUID()).withTopics(topic),
          d -> {
            int i = ((Number) d.message().content().get("i")).intValue();
            if (!handlerFixed.get()) {
              firstPartition.put(i, d.partition());
              throw new IllegalStateException("not yet");
            }
            replayedPartition.put(i, d.partition());
          });
      // Keys 0..15 low, then one critical: all dead-lettered at their first failure.
      for (int i = 0; i < keys; i++) {
        bus.publish(message(topic, i, MessagePriority.LOW));
      }
      bus.publish(message(topic, keys, MessagePriority.CRITICAL));
      await().atMost(Duration.ofSeconds(60)).until(() -> firstPartition.size() == keys + 1);
      await().atMost(Duration.ofSeconds(30))
          .until(() -> bus.metrics().deadLettered.count() == keys + 1);

      handlerFixed.set(true);
      assertThat(bus.replayDeadLetters(topic, Duration.ofSeconds(30))).isEqualTo(keys + 1);

      await().atMost(Duration.ofSeconds(60)).until(() -> replayedPartition.size() == keys + 1);
      assertThat(replayedPartition)
          .as("each replayed message is on the partition the bus first gave it: low ones off the urgent lane")
          .isEqualTo(firstPartition);
      assertThat(replayedPartition.get(keys)).isEqualTo(3);
    }
  }

  @Test
  void urgentMessagesDoNotWaitForTheLingerThatBatchesTheOthers() throws Exception {
    String topic = "lanes-linger-" + UUID.randomUUID();
    int linger = 5_000;
    try (KafkaMessageBus bus =
        KafkaMessageBus.create(
            KafkaBusConfig.builder(TestServers.kafka().bootstrapServers())
                .topicPartitions(4)
                .lingerMs(linger)
                .spoolDirectory(temp.resolve("spool"))
                .shutdownTimeout(Duration.ofSeconds(5))
                .build())) {
      bus.ensureTopic(topic);
      bus.publish(message(topic, 0, MessagePriority.CRITICAL)); // both producers know the topic now

      Duration critical = StallWatch.shared().unstalledTimeOf(() -> bus.publish(message(topic, 1, MessagePriority.CRITICAL)));
      long start = System.nanoTime();
      bus.publish(message(topic, 2, MessagePriority.NORMAL));
      Duration normal = Duration.ofNanos(System.nanoTime() - start);

      assertThat(normal).as("a normal message waits for the linger").isGreaterThan(Duration.ofMillis(linger / 2));
      // Sharing the lingering producer, it would take the whole linger (this JVM's pauses are
      // taken out of its time; the bound leaves room for other slowness).
      assertThat(critical).as("a critical one does not").isLessThan(Duration.ofMillis(linger - 500));
    }
  }
}
