package org.nisprotocol.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.nisprotocol.testkit.SequencedMessages.message;
import static org.nisprotocol.testkit.SequencedMessages.sequence;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.PublishReceipt;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.testkit.KafkaBroker;
import org.nisprotocol.testkit.TcpProxy;

/**
 * Faults of the network between the bus and its broker: every client reaches the broker through a
 * {@link TcpProxy} (the broker advertises the proxy's address), which can stall the path; a
 * connection the client gives up during the stall loses what it had sent.
 */
class KafkaNetworkFaultIT {
  private static TcpProxy proxy;
  private static KafkaBroker broker;

  @TempDir Path temp;

  @BeforeAll
  static void startBrokerBehindAProxy() {
    proxy = TcpProxy.start(() -> broker.bootstrapServers());
    broker = KafkaBroker.builder()
        .name("network-fault-kafka")
        .brokerProperty("advertised.listeners", "PLAINTEXT://" + proxy.address())
        .build();
    broker.start();
  }

  @AfterAll
  static void closeBrokerAndProxy() {
    proxy.close();
    broker.close();
  }

  @AfterEach
  void pathOpen() {
    proxy.resume();
  }

  private KafkaBusConfig.Builder config(String spool) {
    return FaultTestConfig.of(proxy.address(), Duration.ofSeconds(2), temp.resolve(spool));
  }

  /**
   * The path stalls while one key's messages go out one by one, each on a request of its own.
   * The first times out: the producer gives up its connection (losing the requests on it) and,
   * left alone, would send the later ones again on a new connection under a new producer epoch,
   * without the first. The path comes back while those are still on their way: they must not
   * reach Kafka ahead of the first (which went to the spool). Regression test for a later message
   * of a key landing before an earlier one after a broker hang.
   */
  @Test
  void aSendTimingOutDuringAStallDoesNotLetLaterMessagesOfItsKeyOvertakeIt() throws Exception {
    String topic = "stall-order-" + UUID.randomUUID();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config("stall-order").build())) {
      bus.publish(message(topic, "agent-0", -1)); // creates the topic
      await().atMost(Duration.ofSeconds(60)).until(() -> bus.spooledMessages() == 0);
      List<CompletableFuture<PublishReceipt>> receipts = new ArrayList<>();
      proxy.stall();
      try {
        for (int i = 0; i < 10; i++) {
          receipts.add(bus.publishAsync(message(topic, "agent-0", i)));
          Thread.sleep(150); // a request each; the last ones are still young when the first times out
        }
        assertThat(receipts.get(0).get(30, TimeUnit.SECONDS).status()).isEqualTo(PublishReceipt.Status.SPOOLED);
      } finally {
        proxy.resume();
      }
      for (CompletableFuture<PublishReceipt> receipt : receipts) {
        assertThat(receipt.get(30, TimeUnit.SECONDS).status()).isIn(PublishReceipt.Status.SENT, PublishReceipt.Status.SPOOLED);
      }

      List<Integer> firstArrivals = new CopyOnWriteArrayList<>();
      Set<Integer> seen = ConcurrentHashMap.newKeySet();
      bus.subscribe(SubscriptionSpec.group("stall-order-" + UUID.randomUUID()).withTopics(topic), delivery -> {
        int sequence = sequence(delivery);
        if (seen.add(sequence)) {
          firstArrivals.add(sequence);
        }
      });
      await().atMost(Duration.ofSeconds(90)).until(() -> seen.size() == 11);
      assertThat(firstArrivals).containsExactly(-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
    }
  }

  /**
   * The path stalls past the group's session timeout while a handler is busy: the broker drops the
   * member, and once the path is back the consumer finds its partitions lost (nothing of them may
   * be committed) and joins again. The partitions come back to the same subscription, whose new
   * worker must wait for the handler left running: neither its record nor a later one is handled
   * beside it, and its record, never committed, is handled again after it.
   */
  @Test
  void aPartitionLostWhileItsHandlerRunsIsHandledAgainOnlyAfterThatHandlerReturns() throws Exception {
    String topic = "lost-" + UUID.randomUUID();
    Duration sessionTimeout = Duration.ofSeconds(6); // the broker's least
    FirstCallHeld handler = new FirstCallHeld();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config("lost").sessionTimeout(sessionTimeout).build())) {
      var subscription = (KafkaSubscription) bus.subscribe(
          SubscriptionSpec.group("lost-" + UUID.randomUUID()).withTopics(topic), handler);
      await().atMost(Duration.ofSeconds(60)).until(() -> subscription.assignment().size() == 3);
      bus.publish(numbered(topic, 1));
      assertThat(handler.firstEntered.await(30, TimeUnit.SECONDS)).isTrue();

      proxy.stall();
      try {
        Thread.sleep(sessionTimeout.plusSeconds(4).toMillis()); // the broker drops the silent member
      } finally {
        proxy.resume();
      }
      await().atMost(Duration.ofSeconds(60))
          .until(() -> subscription.partitionsLost() > 0 && subscription.assignment().size() == 3);
      bus.publish(numbered(topic, 2));

      handler.assertNothingBesideTheFirstCallThenAllInTurn();
      assertThat(handler.handled).containsExactly(1, 1, 2); // the held call, its redelivery, then 2
    } finally {
      handler.releaseFirst.countDown();
    }
  }

  private static NisMessage numbered(String topic, int n) {
    return NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(topic).content(Map.of("n", n)).build();
  }
}
