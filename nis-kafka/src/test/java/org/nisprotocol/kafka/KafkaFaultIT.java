package org.nisprotocol.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;
import static org.nisprotocol.testkit.SequencedMessages.message;
import static org.nisprotocol.testkit.SequencedMessages.sequence;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nisprotocol.core.BackendRefusedException;
import org.nisprotocol.core.CircuitBreakerConfig;
import org.nisprotocol.core.DeadLetterHeaders;
import org.nisprotocol.core.HealthStatus;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.MessageHandler;
import org.nisprotocol.core.MessageHandlers;
import org.nisprotocol.core.MessagePriority;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.PublishReceipt;
import org.nisprotocol.core.RetriableException;
import org.nisprotocol.core.RetryPolicy;
import org.nisprotocol.core.StreamingTopics;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.embedded.InMemoryDeliveryLedger;
import org.nisprotocol.testkit.KafkaBroker;
import org.nisprotocol.testkit.StallWatch;

/**
 * Faults on a broker of this class's own: killed mid-stream, down before sending, our own process
 * killed with a full spool, poison pills and handlers that always fail, a member refused by its
 * group (the broker allows one member a group).
 */
class KafkaFaultIT {
  private static KafkaBroker broker;

  @TempDir Path temp;

  @BeforeAll
  static void startBroker() {
    // A group holds one member at most: a second one is refused, as by a full or unauthorized group.
    broker = KafkaBroker.builder().name("fault-kafka").brokerProperty("group.max.size", "1").build();
    broker.start();
  }

  @AfterAll
  static void closeBroker() {
    broker.close();
  }

  @BeforeEach
  void brokerRunning() {
    broker.start();
  }

  private KafkaBusConfig.Builder config(String spool) {
    return FaultTestConfig.of(broker.bootstrapServers(), Duration.ofSeconds(5), temp.resolve(spool));
  }

  @Test
  void killingTheBrokerMidStreamLosesNothingAcknowledgedAndDedupeShowsEachOnce() throws Exception {
    String topic = "fault-kill-" + UUID.randomUUID();
    Map<String, AtomicInteger> handledTimes = new ConcurrentHashMap<>();
    AtomicInteger rawDeliveries = new AtomicInteger();
    InMemoryDeliveryLedger ledger = InMemoryDeliveryLedger.create();
    String group = "kill-" + UUID.randomUUID();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config("kill").build())) {
      bus.subscribe(
          SubscriptionSpec.group(group).withTopics(topic),
          MessageHandlers.deduplicated(
              delivery -> handledTimes.computeIfAbsent(delivery.message().messageId(), id -> new AtomicInteger()).incrementAndGet(),
              ledger,
              group,
              Duration.ofMinutes(10)));
      bus.subscribe(SubscriptionSpec.group(group + "-raw").withTopics(topic), delivery -> rawDeliveries.incrementAndGet());

      int total = 20_000;
      List<CompletableFuture<PublishReceipt>> receipts = new ArrayList<>(total);
      for (int i = 0; i < total; i++) {
        receipts.add(bus.publishAsync(message(topic, "agent-" + (i % 50), i)));
        if (i == 5_000) {
          broker.kill();
        }
        if (i == 12_000) {
          broker.restart();
        }
      }
      Set<String> acknowledged = ConcurrentHashMap.newKeySet();
      int refused = 0;
      for (CompletableFuture<PublishReceipt> receipt : receipts) {
        try {
          acknowledged.add(receipt.get(60, TimeUnit.SECONDS).messageId());
        } catch (java.util.concurrent.ExecutionException e) {
          refused++;
        }
      }
      assertThat(acknowledged.size() + refused).isEqualTo(total);
      assertThat(acknowledged).as("spool absorbs the outage: nothing is refused").hasSize(total);

      // Both groups, each at its own pace (the raw one was once asserted as soon as the other was
      // done, and was behind): every acknowledged message reaches each.
      await()
          .atMost(Duration.ofSeconds(180))
          .pollInterval(Duration.ofMillis(500))
          .until(() -> handledTimes.keySet().containsAll(acknowledged) && rawDeliveries.get() >= total);
      assertThat(handledTimes.values()).as("deduplicated: each message handled once").allMatch(n -> n.get() == 1);
    }
  }

  @Test
  void messagesSentWhileTheBrokerIsDownAreSpooledAndDeliveredInOrderPerKey() {
    String topic = "fault-down-" + UUID.randomUUID();
    broker.stop();
    List<PublishReceipt> receipts = new ArrayList<>();
    Map<String, List<Integer>> sequencesByKey = new ConcurrentHashMap<>();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config("down").build())) {
      for (int i = 0; i < 200; i++) {
        receipts.add(bus.publish(message(topic, "agent-" + (i % 5), i)));
      }
      assertThat(receipts).extracting(PublishReceipt::status).containsOnly(PublishReceipt.Status.SPOOLED);
      assertThat(bus.spooledMessages()).isEqualTo(200);
      assertThat(bus.checkHealth(Duration.ofSeconds(1)).status()).isEqualTo(HealthStatus.UNHEALTHY);

      broker.start();
      bus.subscribe(
          SubscriptionSpec.group("down-" + UUID.randomUUID()).withTopics(topic),
          delivery ->
              sequencesByKey
                  .computeIfAbsent(delivery.message().orderingKey(), k -> Collections.synchronizedList(new ArrayList<>()))
                  .add(sequence(delivery)));

      await()
          .atMost(Duration.ofSeconds(90))
          .until(() -> sequencesByKey.values().stream().mapToInt(List::size).sum() >= 200);
      assertThat(bus.spooledMessages()).isZero();
      await().atMost(Duration.ofSeconds(10)).until(() -> bus.checkHealth(Duration.ofSeconds(2)).status() == HealthStatus.HEALTHY);
      for (int key = 0; key < 5; key++) {
        List<Integer> expected = new ArrayList<>();
        for (int i = key; i < 200; i += 5) {
          expected.add(i);
        }
        assertThat(sequencesByKey.get("agent-" + key)).as("order of agent-%d", key).isEqualTo(expected);
      }
    }
  }

  /**
   * The broker hangs with sends on their way and a send timeout longer than the shutdown timeout:
   * close() still returns soon after the shutdown timeout, the sends it cut off are spooled, not
   * failed, and the next start delivers them, each key's in the order they were published on each
   * lane (every fourth message is high priority: the urgent lane's producer is cut off too). Small
   * batches give each partition many, which the producer's forced close fails in no particular
   * order.
   */
  @Test
  void closeReturnsSoonAfterTheShutdownTimeoutWhenTheBrokerHangsAndSpoolsWhatItCutOffInOrder() throws Exception {
    String topic = "fault-hang-" + UUID.randomUUID();
    KafkaBusConfig hanging =
        config("hang").sendTimeout(Duration.ofSeconds(30)).shutdownTimeout(Duration.ofSeconds(3)).batchSize(64).build();
    List<CompletableFuture<PublishReceipt>> receipts = new ArrayList<>();
    long closeMillis;
    KafkaMessageBus bus = KafkaMessageBus.create(hanging);
    try {
      createTopicWithAFirstMessage(bus, topic);
      broker.pause();
      for (int i = 0; i < 100; i++) {
        NisMessage message = message(topic, "agent-" + (i % 5), i);
        receipts.add(bus.publishAsync(i % 4 == 3 ? message.toBuilder().priority(MessagePriority.HIGH).build() : message));
      }
      assertThat(receipts).noneMatch(CompletableFuture::isDone);
      // Cut-off receipts complete on the closing thread: closing again there must not wait for itself.
      receipts.get(0).thenRun(bus::close);
      closeMillis = StallWatch.shared().unstalledTimeOf(bus::close).toMillis(); // this JVM's pauses taken out
    } finally {
      bus.close();
      broker.resume();
    }
    assertThat(closeMillis).as("close() took %d ms", closeMillis).isLessThan(3_000 + 6_000);
    assertThat(receipts).allMatch(CompletableFuture::isDone, "settled when close() returned");
    assertThat(receipts).extracting(r -> r.join().status()).containsOnly(PublishReceipt.Status.SPOOLED);

    // First arrivals per key and lane (requests the paused broker had already received are
    // written when it goes on, so a cut-off send can arrive twice).
    Map<String, List<Integer>> firstArrivals = new ConcurrentHashMap<>();
    Set<Integer> seen = ConcurrentHashMap.newKeySet();
    try (KafkaMessageBus next = KafkaMessageBus.create(config("hang").build())) {
      next.subscribe(
          SubscriptionSpec.group("hang-" + UUID.randomUUID()).withTopics(topic),
          delivery -> {
            if (seen.add(sequence(delivery))) {
              firstArrivals
                  .computeIfAbsent(
                      delivery.message().orderingKey() + "/" + delivery.message().priority().wireName(),
                      k -> Collections.synchronizedList(new ArrayList<>()))
                  .add(sequence(delivery));
            }
          });
      await().atMost(Duration.ofSeconds(90)).until(() -> seen.size() == 101);
    }
    Map<String, List<Integer>> expected = new java.util.HashMap<>();
    expected.put("agent-0/normal", new ArrayList<>(List.of(-1)));
    for (int i = 0; i < 100; i++) {
      String lane = i % 4 == 3 ? "high" : "normal";
      expected.computeIfAbsent("agent-" + (i % 5) + "/" + lane, k -> new ArrayList<>()).add(i);
    }
    assertThat(firstArrivals).isEqualTo(expected);
  }

  /**
   * The broker hangs with ten sends on their way; code chained on the first one's receipt
   * (SPOOLED, when its send times out) publishes again. The timeout stops the producers and cuts
   * off the other nine; the chained publish must not wait for them longer than spooling them
   * takes (it once waited on the producer's thread for what only that thread settles: the send
   * timeout and more). The chained message goes to the spool behind the nine and is delivered
   * after them.
   */
  @Test
  void aPublishChainedOnAReceiptWhileTheBrokerHangsIsSpooledBehindWhatWasInFlight() throws Exception {
    String topic = "fault-chained-" + UUID.randomUUID();
    StallWatch stalls = StallWatch.shared(); // watching from here
    KafkaMessageBus bus = KafkaMessageBus.create(config("chained").sendTimeout(Duration.ofSeconds(2)).build());
    try {
      createTopicWithAFirstMessage(bus, topic);
      List<CompletableFuture<PublishReceipt>> receipts = new ArrayList<>();
      CompletableFuture<Long> firstSettledAt = new CompletableFuture<>();
      CompletableFuture<PublishReceipt> chained;
      broker.pause();
      try {
        for (int i = 0; i < 10; i++) {
          receipts.add(bus.publishAsync(message(topic, "agent-0", i)));
        }
        chained = receipts.get(0).thenCompose(first -> {
          firstSettledAt.complete(System.nanoTime());
          return bus.publishAsync(message(topic, "agent-0", 10));
        });
        assertThat(chained.get(30, TimeUnit.SECONDS).status()).isEqualTo(PublishReceipt.Status.SPOOLED);
        long chainedMillis = stalls.unstalledBetween(firstSettledAt.get(), System.nanoTime()).toMillis();
        // waiting on the producer's thread took the send timeout plus 5 s
        assertThat(chainedMillis).as("the chained receipt came %d ms after the first (pauses taken out)", chainedMillis).isLessThan(4_000);
        assertThat(receipts).extracting(r -> r.get(30, TimeUnit.SECONDS).status()).containsOnly(PublishReceipt.Status.SPOOLED);
      } finally {
        broker.resume();
      }

      // First arrivals: what the paused broker had already received is written when it goes on,
      // so a timed-out send can arrive twice.
      List<Integer> firstArrivals = new CopyOnWriteArrayList<>();
      Set<Integer> seen = ConcurrentHashMap.newKeySet();
      bus.subscribe(SubscriptionSpec.group("chained-" + UUID.randomUUID()).withTopics(topic), d -> {
        if (seen.add(sequence(d))) {
          firstArrivals.add(sequence(d));
        }
      });
      await().atMost(Duration.ofSeconds(90)).until(() -> seen.size() == 12);
      assertThat(firstArrivals).containsExactly(-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
    } finally {
      bus.close();
    }
  }

  /**
   * Code chained on the receipt of a send the broker's hang cut off runs on the thread that
   * spools such sends and replaces the producers; a close() called there returns at once, as from
   * any code chained on a receipt (else the receipts after it would wait for the whole close).
   */
  @Test
  void closeCalledFromCodeChainedOnACutOffSendReturnsAtOnce() throws Exception {
    String topic = "fault-cut-off-close-" + UUID.randomUUID();
    StallWatch stalls = StallWatch.shared(); // watching from here
    // A breaker that stays closed and a long shutdown timeout: the close itself waits (up to 55 s)
    // for the spool to drain while the broker hangs, which a close() that did not return at once
    // would wait for too.
    KafkaMessageBus bus = KafkaMessageBus.create(
        config("cut-off-close")
            .sendTimeout(Duration.ofSeconds(2))
            .shutdownTimeout(Duration.ofSeconds(60))
            .circuitBreaker(new CircuitBreakerConfig(1_000, Duration.ofSeconds(1), 1))
            .build());
    CompletableFuture<String> closedOn = new CompletableFuture<>();
    CompletableFuture<Duration> closeTook = new CompletableFuture<>();
    try {
      createTopicWithAFirstMessage(bus, topic);
      broker.pause();
      CompletableFuture<PublishReceipt> first = bus.publishAsync(message(topic, "agent-0", 0));
      bus.publishAsync(message(topic, "agent-0", 1));
      bus.publishAsync(message(topic, "agent-0", 2));
      // The first times out, which stops the producers and cuts off 1 and 2: all three receipts
      // complete on the replacing thread, and so does the chained publish (spooled at once).
      first
          .thenCompose(spooled -> bus.publishAsync(message(topic, "agent-0", 3)))
          .thenRun(() -> {
            closedOn.complete(Thread.currentThread().getName());
            closeTook.complete(stalls.unstalledTimeOf(bus::close));
          });
      assertThat(closedOn.get(30, TimeUnit.SECONDS)).isEqualTo("nis-producer-replacer");
      assertThat(closeTook.get(90, TimeUnit.SECONDS)).as("close() on the replacing thread, pauses taken out").isLessThan(Duration.ofSeconds(4));
      assertThat(bus.closeFinished()).as("still waiting for the spool to drain").isFalse();
      assertThat(bus.spooledMessages()).isEqualTo(4);
      broker.resume();
      bus.close(); // waits for the close begun on the replacing thread, which drains the spool now
      assertThat(bus.closeFinished()).isTrue();
      assertThat(bus.spooledMessages()).as("drained before closing").isZero();
    } finally {
      broker.resume();
      bus.close();
    }
  }


  /**
   * The broker hangs while close() lets a subscription drain: asking it for the end offsets times
   * out, which must not end the drain (the consumer's loop stopped on that error, and the records
   * its workers still held waited for the next start).
   */
  @Test
  void aBrokerThatHangsWhileCloseDrainsDoesNotEndTheDrain() throws Exception {
    String topic = "fault-drain-" + UUID.randomUUID();
    Set<Integer> delivered = ConcurrentHashMap.newKeySet();
    KafkaMessageBus bus = KafkaMessageBus.create(config("drain").shutdownTimeout(Duration.ofSeconds(60)).build());
    CompletableFuture<Void> closing;
    try {
      List<CompletableFuture<PublishReceipt>> receipts = new ArrayList<>();
      for (int i = 0; i < 300; i++) {
        receipts.add(bus.publishAsync(message(topic, "agent-" + (i % 3), i)));
      }
      receipts.forEach(CompletableFuture::join);
      bus.subscribe(
          SubscriptionSpec.group("drain-" + UUID.randomUUID()).withTopics(topic),
          delivery -> {
            Thread.sleep(100); // 100 a partition: 10 s of handling, longer than the hang below
            delivered.add(sequence(delivery));
          });
      await().atMost(Duration.ofSeconds(30)).until(() -> delivered.size() >= 10);

      closing = CompletableFuture.runAsync(bus::close);
      broker.pause();
      Thread.sleep(8_000); // longer than the drain's 5 s requests to the broker
    } finally {
      broker.resume();
    }
    closing.get(90, TimeUnit.SECONDS);
    assertThat(delivered).as("delivered when close() returned").hasSize(300);
  }

  @Test
  void afterAnOutageTheSpoolDrainsWhilePublishingGoesOnWithoutFillingIt() throws Exception {
    // 4,000 messages spooled during the outage, then 20,000 more sent as fast as the bus takes
    // them: 24,000 messages of about 1 KiB would need 26 MB of spool, and it holds 8 MiB. New
    // messages must keep to the drainer's pace rather than pile up behind it.
    String topic = "fault-catch-up-" + UUID.randomUUID();
    String filler = "f".repeat(900);
    Set<Integer> delivered = ConcurrentHashMap.newKeySet();
    broker.stop();
    try (KafkaMessageBus bus =
        KafkaMessageBus.create(config("catch-up").spoolMaxBytes(8L * 1024 * 1024).maxInFlightBytes(1024 * 1024).build())) {
      List<CompletableFuture<PublishReceipt>> receipts = new ArrayList<>();
      for (int i = 0; i < 4_000; i++) {
        receipts.add(bus.publishAsync(withFiller(message(topic, "agent-" + (i % 7), i), filler)));
      }
      assertThat(bus.spooledMessages()).isEqualTo(4_000);

      broker.start();
      bus.subscribe(SubscriptionSpec.group("catch-up-" + UUID.randomUUID()).withTopics(topic), d -> delivered.add(sequence(d)));
      for (int i = 4_000; i < 24_000; i++) {
        receipts.add(bus.publishAsync(withFiller(message(topic, "agent-" + (i % 7), i), filler)));
      }

      int refused = 0;
      for (CompletableFuture<PublishReceipt> receipt : receipts) {
        try {
          receipt.get(60, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
          refused++;
        }
      }
      assertThat(refused).as("messages refused by a full spool").isZero();
      await().atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(200)).until(() -> delivered.size() == 24_000);
      await().atMost(Duration.ofSeconds(10)).until(() -> bus.spooledMessages() == 0);
    }
  }

  private static NisMessage withFiller(NisMessage message, String filler) {
    return NisMessage.builder(message.messageType(), message.sourceAgent())
        .topic(message.topic())
        .targetAgent(message.targetAgent().orElseThrow())
        .content(Map.of("sequence", message.content().get("sequence"), "filler", filler))
        .build();
  }

  @Test
  void aSpoolLeftByAKilledProcessIsDeliveredByTheNextStart() throws Exception {
    String topic = "fault-crash-" + UUID.randomUUID();
    Path spool = temp.resolve("crash-spool");
    broker.stop();
    Process publisher = JavaMainProcess.start(
        Duration.ofMinutes(3), SpoolingPublisherMain.class, broker.bootstrapServers(), spool.toString(), topic, "300");
    try {
      var output = new java.io.BufferedReader(new java.io.InputStreamReader(publisher.getInputStream(), StandardCharsets.UTF_8));
      String line;
      boolean spooled = false;
      while ((line = output.readLine()) != null) {
        if (line.startsWith("SPOOLED 300")) {
          spooled = true;
          break;
        }
      }
      assertThat(spooled).as("the publisher spooled its 300 messages").isTrue();
    } finally {
      publisher.destroyForcibly(); // kill -9: no shutdown hook, no close
      publisher.waitFor(10, TimeUnit.SECONDS);
    }

    broker.start();
    Set<Integer> received = ConcurrentHashMap.newKeySet();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config("unused").spoolDirectory(spool).build())) {
      bus.subscribe(SubscriptionSpec.group("crash-" + UUID.randomUUID()).withTopics(topic), d -> received.add(sequence(d)));
      await().atMost(Duration.ofSeconds(90)).until(() -> received.size() == 300);
      assertThat(bus.spooledMessages()).isZero();
    }
  }

  @Test
  void poisonPillsAndRejectedMessagesAreDeadLetteredAndCanBeReplayed() throws Exception {
    String topic = "fault-poison-" + UUID.randomUUID();
    AtomicBoolean handlerFixed = new AtomicBoolean();
    List<Integer> handled = Collections.synchronizedList(new ArrayList<>());
    try (KafkaMessageBus bus = KafkaMessageBus.create(config("poison").build())) {
      bus.ensureTopic(topic);
      var subscription =
          bus.subscribe(
              SubscriptionSpec.group("poison-" + UUID.randomUUID()).withTopics(topic),
              delivery -> {
                if (sequence(delivery) == 1 && !handlerFixed.get()) {
                  throw new IllegalStateException("cannot handle message 1 yet");
                }
                handled.add(sequence(delivery));
              });
      await().atMost(Duration.ofSeconds(30)).until(() -> ((KafkaSubscription) subscription).isAssigned());

      try (KafkaProducer<byte[], byte[]> raw = rawProducer()) {
        raw.send(new ProducerRecord<>(topic, 0, "agent".getBytes(StandardCharsets.UTF_8), "{not json at all".getBytes(StandardCharsets.UTF_8)))
            .get(10, TimeUnit.SECONDS);
      }
      NisMessage rejected = message(topic, "agent", 1);
      bus.publish(rejected);
      for (int i = 2; i <= 5; i++) {
        bus.publish(message(topic, "agent", i));
      }

      await().atMost(Duration.ofSeconds(60)).until(() -> handled.containsAll(List.of(2, 3, 4, 5)));
      List<ConsumerRecord<byte[], byte[]>> deadLetters = readAll(StreamingTopics.deadLetterTopicOf(topic), 2);
      assertThat(deadLetters).hasSize(2);
      ConsumerRecord<byte[], byte[]> poison = deadLetters.stream()
          .filter(r -> header(r, DeadLetterHeaders.ERROR).startsWith("undecodable message")).findFirst().orElseThrow();
      assertThat(new String(poison.value(), StandardCharsets.UTF_8)).isEqualTo("{not json at all");
      assertThat(header(poison, DeadLetterHeaders.ORIGINAL_TOPIC)).isEqualTo(topic);
      ConsumerRecord<byte[], byte[]> failed = deadLetters.stream()
          .filter(r -> header(r, DeadLetterHeaders.ERROR).contains("cannot handle message 1 yet")).findFirst().orElseThrow();
      assertThat(header(failed, DeadLetterHeaders.ATTEMPTS)).isEqualTo("3");
      assertThat(header(failed, DeadLetterHeaders.ORIGINAL_OFFSET)).isNotBlank();

      handlerFixed.set(true);
      long replayed = bus.replayDeadLetters(topic, Duration.ofSeconds(30));

      assertThat(replayed).isEqualTo(2);
      await().atMost(Duration.ofSeconds(60)).until(() -> handled.contains(1));
      assertThat(bus.replayDeadLetters(topic, Duration.ofSeconds(10)))
          .as("the poison pill went back to the dead letters; replay resumes after what it replayed")
          .isEqualTo(1);
      assertThat(readAll(StreamingTopics.deadLetterTopicOf(topic), 3))
          .as("a replayed message dead-lettered again is no one group's replay there (the poison pill's second time)")
          .hasSizeGreaterThanOrEqualTo(3)
          .allSatisfy(r -> assertThat(r.headers().lastHeader(DeadLetterHeaders.REPLAYED_FOR)).isNull());
    }
  }

  /**
   * Records damaged on the broker's disk (their batch's checksum no longer matches), which Kafka
   * cannot hand out, are dead-lettered without a value, with headers naming where they were, and
   * the partition goes on after them (before, the subscription stopped there for good).
   */
  @Test
  void recordsDamagedOnTheBrokerAreDeadLetteredAndThePartitionGoesOn() throws Exception {
    String topic = "fault-corrupt-" + UUID.randomUUID();
    String group = "corrupt-" + UUID.randomUUID();
    List<Integer> handled = new CopyOnWriteArrayList<>();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config("corrupt").build())) {
      bus.ensureTopic(topic);
      List<NisMessage> messages = new ArrayList<>();
      for (int i = 1; i <= 4; i++) {
        messages.add(message(topic, "agent", i));
      }
      // Partition 0 gets three batches: message 1 at offset 0, messages 2 and 3 at offsets 1 and 2
      // (one batch: the producer lingers until flushed), message 4 at offset 3.
      try (KafkaProducer<byte[], byte[]> raw = new KafkaProducer<>(
          Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers(), ProducerConfig.LINGER_MS_CONFIG, 60_000),
          new ByteArraySerializer(), new ByteArraySerializer())) {
        for (List<NisMessage> batch : List.of(messages.subList(0, 1), messages.subList(1, 3), messages.subList(3, 4))) {
          List<java.util.concurrent.Future<?>> sent = new ArrayList<>();
          for (NisMessage m : batch) {
            sent.add(raw.send(new ProducerRecord<>(topic, 0, null, MessageCodec.create().encode(m))));
          }
          raw.flush();
          for (var ack : sent) {
            ack.get(10, TimeUnit.SECONDS);
          }
        }
      }
      damageOnDisk(topic, 0, messages.get(2).messageId()); // the second batch

      bus.subscribe(SubscriptionSpec.group(group).withTopics(topic), delivery -> handled.add(sequence(delivery)));

      await().atMost(Duration.ofSeconds(60)).until(() -> handled.contains(4));
      assertThat(handled).containsExactly(1, 4);
      List<ConsumerRecord<byte[], byte[]>> letters = readAll(StreamingTopics.deadLetterTopicOf(topic), 2);
      assertThat(letters).hasSize(2);
      assertThat(letters).extracting(r -> header(r, DeadLetterHeaders.ORIGINAL_OFFSET)).containsExactlyInAnyOrder("1", "2");
      assertThat(letters).allSatisfy(letter -> {
        assertThat(letter.value()).as("bytes whose checksum fails are not passed on").isNull();
        assertThat(header(letter, DeadLetterHeaders.ERROR)).contains("corrupt");
        assertThat(header(letter, DeadLetterHeaders.ORIGINAL_TOPIC)).isEqualTo(topic);
        assertThat(header(letter, DeadLetterHeaders.ORIGINAL_PARTITION)).isEqualTo("0");
        assertThat(header(letter, DeadLetterHeaders.GROUP)).isEqualTo(group);
      });
      try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers()))) {
        await().atMost(Duration.ofSeconds(30)).alias("the group's commit passed the damaged records").until(() -> {
          var offset = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(10, TimeUnit.SECONDS)
              .get(new org.apache.kafka.common.TopicPartition(topic, 0));
          return offset != null && offset.offset() == 4;
        });
      }
      assertThat(bus.replayDeadLetters(topic, Duration.ofSeconds(10)))
          .as("a letter without a value has nothing to send back")
          .isZero();
    }
  }

  /**
   * Messages spooled during an outage that Kafka then refuses for good (too large for their topic)
   * do not hold up the spool: each goes to its dead-letter topic, or, where that refuses it too, to
   * the refused-messages file in the spool directory; the messages behind them are delivered.
   * Before, the drainer sent the refused one again and again, and everything behind it (every
   * message published after, on any topic) stayed in the spool.
   */
  @Test
  void spooledMessagesKafkaRefusesForGoodAreSetAsideAndTheRestIsDelivered() throws Exception {
    String topic = "fault-refused-" + UUID.randomUUID();
    String strictTopic = "fault-refused-strict-" + UUID.randomUUID();
    Map<String, String> small = Map.of("max.message.bytes", "4096");
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers()))) {
      admin.createTopics(List.of(
              new org.apache.kafka.clients.admin.NewTopic(topic, 3, (short) 1).configs(small),
              new org.apache.kafka.clients.admin.NewTopic(strictTopic, 3, (short) 1).configs(small),
              new org.apache.kafka.clients.admin.NewTopic(StreamingTopics.deadLetterTopicOf(strictTopic), 3, (short) 1).configs(small)))
          .all().get(30, TimeUnit.SECONDS);
    }
    String group = "refused-" + UUID.randomUUID();
    List<Integer> handled = new CopyOnWriteArrayList<>();
    Path spool = temp.resolve("refused");
    try (KafkaMessageBus bus = KafkaMessageBus.create(config("refused").build())) {
      var subscription = bus.subscribe(SubscriptionSpec.group(group).withTopics(topic), delivery -> handled.add(sequence(delivery)));
      await().atMost(Duration.ofSeconds(30)).until(((KafkaSubscription) subscription)::isAssigned);
      broker.stop();
      NisMessage tooLarge = large(topic, 2);
      NisMessage tooLargeForBoth = large(strictTopic, 3);
      List<PublishReceipt> receipts = List.of(
          bus.publish(message(topic, "agent", 1)), bus.publish(tooLarge), bus.publish(tooLargeForBoth), bus.publish(message(topic, "agent", 4)));
      assertThat(receipts).extracting(PublishReceipt::status).containsOnly(PublishReceipt.Status.SPOOLED);

      broker.start();

      await().atMost(Duration.ofSeconds(90)).until(() -> handled.contains(4));
      assertThat(handled).containsExactly(1, 4);
      await().atMost(Duration.ofSeconds(10)).until(() -> bus.spooledMessages() == 0);
      List<ConsumerRecord<byte[], byte[]>> letters = readAll(StreamingTopics.deadLetterTopicOf(topic), 1);
      assertThat(letters).hasSize(1);
      ConsumerRecord<byte[], byte[]> letter = letters.getFirst();
      assertThat(MessageCodec.create().decode(letter.value()).messageId()).isEqualTo(tooLarge.messageId());
      assertThat(header(letter, DeadLetterHeaders.ERROR)).contains("RecordTooLargeException");
      assertThat(header(letter, DeadLetterHeaders.ORIGINAL_TOPIC)).isEqualTo(topic);
      List<String> refused = java.nio.file.Files.readAllLines(spool.resolve(KafkaMessageBus.REFUSED_FILE));
      assertThat(refused).hasSize(1);
      var line = MessageCodec.mapper().readTree(refused.getFirst());
      assertThat(line.path("topic").asText()).isEqualTo(strictTopic);
      assertThat(MessageCodec.create().decode(line.path("message").asText()).messageId()).isEqualTo(tooLargeForBoth.messageId());
      assertThat(line.path("error").asText()).contains("RecordTooLargeException", StreamingTopics.deadLetterTopicOf(strictTopic));

      assertThat(bus.replayDeadLetters(topic, Duration.ofSeconds(30)))
          .as("the letter, still too large for its topic, is passed over (sent back, it would stop every replay)")
          .isZero();
    }
  }

  /**
   * Dead letters their topic refuses for good do not hold up the partition: one too large for its
   * dead-letter topic goes there without its value (its error says so; the record stays at its
   * offset), and one whose dead-letter topic refuses even that (its records may be 300 bytes at
   * most) goes to the refused-messages file. The records behind them are handled. Before, the worker
   * tried again for ever and the partition stood still behind it.
   */
  @Test
  void deadLettersTheirTopicRefusesForGoodDoNotHoldUpThePartition() throws Exception {
    String topic = "fault-dlt-small-" + UUID.randomUUID();
    String strictTopic = "fault-dlt-strict-" + UUID.randomUUID();
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers()))) {
      admin.createTopics(List.of(
              new org.apache.kafka.clients.admin.NewTopic(topic, 3, (short) 1),
              new org.apache.kafka.clients.admin.NewTopic(StreamingTopics.deadLetterTopicOf(topic), 3, (short) 1)
                  .configs(Map.of("max.message.bytes", "4096")),
              new org.apache.kafka.clients.admin.NewTopic(strictTopic, 3, (short) 1),
              new org.apache.kafka.clients.admin.NewTopic(StreamingTopics.deadLetterTopicOf(strictTopic), 3, (short) 1)
                  .configs(Map.of("max.message.bytes", "300"))))
          .all().get(30, TimeUnit.SECONDS);
    }
    Path spool = temp.resolve("dlt-refused");
    String group = "dlt-refused-" + UUID.randomUUID();
    List<Integer> handled = new CopyOnWriteArrayList<>();
    MessageHandler oddOnesFail = delivery -> {
      if (sequence(delivery) % 2 == 1) {
        throw new IllegalStateException("cannot handle " + sequence(delivery));
      }
      handled.add(sequence(delivery));
    };
    try (KafkaMessageBus bus = KafkaMessageBus.create(config("dlt-refused").compressionType("none").build())) {
      for (String subscribed : List.of(topic, strictTopic)) {
        // A group each: this broker takes one member a group.
        var subscription = bus.subscribe(SubscriptionSpec.group(group + "-" + subscribed).withTopics(subscribed), oddOnesFail);
        await().atMost(Duration.ofSeconds(30)).until(((KafkaSubscription) subscription)::isAssigned);
      }
      // One ordering key: each topic's two messages are on one partition, the failing one first.
      NisMessage tooLargeForItsLetter = large(topic, 1);
      bus.publish(tooLargeForItsLetter);
      bus.publish(message(topic, "agent", 2));
      NisMessage refusedAnyway = message(strictTopic, "agent", 3);
      bus.publish(refusedAnyway);
      bus.publish(message(strictTopic, "agent", 4));

      await().atMost(Duration.ofSeconds(60)).until(() -> handled.containsAll(List.of(2, 4)));
      List<ConsumerRecord<byte[], byte[]>> letters = readAll(StreamingTopics.deadLetterTopicOf(topic), 1);
      assertThat(letters).hasSize(1);
      ConsumerRecord<byte[], byte[]> letter = letters.getFirst();
      assertThat(letter.value()).isNull();
      assertThat(header(letter, DeadLetterHeaders.ERROR))
          .contains("cannot handle 1", "is left out of this letter", "RecordTooLargeException");
      assertThat(header(letter, DeadLetterHeaders.ORIGINAL_TOPIC)).isEqualTo(topic);
      assertThat(header(letter, DeadLetterHeaders.GROUP)).isEqualTo(group + "-" + topic);
      List<String> refused = java.nio.file.Files.readAllLines(spool.resolve(KafkaMessageBus.REFUSED_FILE));
      assertThat(refused).hasSize(1);
      var line = MessageCodec.mapper().readTree(refused.getFirst());
      assertThat(line.path("topic").asText()).isEqualTo(strictTopic);
      assertThat(line.path("group").asText()).isEqualTo(group + "-" + strictTopic);
      assertThat(line.path("offset").asLong()).isZero();
      assertThat(line.path("error").asText()).contains("cannot handle 3", "is left out of this letter", "refused it");
      assertThat(MessageCodec.create().decode(line.path("message").asText()).messageId())
          .isEqualTo(refusedAnyway.messageId());
    }
  }

  /**
   * A record in the spool that this version cannot read (written by another version, or damaged
   * in a way its checksum did not catch) goes to the refused-messages file with its bytes, and the
   * messages behind it are delivered. Before, the drainer failed on it again and again, and the
   * spool only grew until full.
   */
  @Test
  void anUnreadableSpooledRecordIsSetAsideAndTheRestIsDelivered() throws Exception {
    String topic = "fault-unreadable-" + UUID.randomUUID();
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers()))) {
      admin.createTopics(List.of(new org.apache.kafka.clients.admin.NewTopic(topic, 3, (short) 1)))
          .all().get(30, TimeUnit.SECONDS);
    }
    Path spool = temp.resolve("unreadable");
    byte[] unreadable = {99, 1, 2, 3}; // format 99
    NisMessage behind = message(topic, "agent", 2);
    try (DiskSpool left = DiskSpool.open(spool, 1 << 20, false)) {
      left.append(unreadable);
      left.append(new SpooledRecord(topic, behind.orderingKey(), MessageCodec.create().encode(behind), Map.of(), false).toBytes());
    }
    List<Integer> handled = new CopyOnWriteArrayList<>();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config("unreadable").build())) {
      bus.subscribe(SubscriptionSpec.group("unreadable-" + UUID.randomUUID()).withTopics(topic),
          delivery -> handled.add(sequence(delivery)));

      await().atMost(Duration.ofSeconds(60)).until(() -> handled.contains(2));
      await().atMost(Duration.ofSeconds(10)).until(() -> bus.spooledMessages() == 0);
      List<String> refused = java.nio.file.Files.readAllLines(spool.resolve(KafkaMessageBus.REFUSED_FILE));
      assertThat(refused).hasSize(1);
      var line = MessageCodec.mapper().readTree(refused.getFirst());
      assertThat(java.util.Base64.getDecoder().decode(line.path("record_base64").asText())).isEqualTo(unreadable);
      assertThat(line.path("error").asText()).contains("cannot read", "unknown format 99");
    }
  }

  /** A message of about 20 KB of text that does not compress. */
  private static NisMessage large(String topic, int sequence) {
    byte[] noise = new byte[15_000];
    new java.util.Random(sequence).nextBytes(noise);
    NisMessage message = message(topic, "agent", sequence);
    return NisMessage.builder(message.messageType(), message.sourceAgent())
        .topic(topic)
        .targetAgent(message.targetAgent().orElseThrow())
        .content(Map.of("sequence", sequence, "noise", java.util.Base64.getEncoder().encodeToString(noise)))
        .build();
  }

  /**
   * A topic Kafka refuses to create (a replication factor above the brokers there are) is a
   * refusal the caller hears at once, not a spooled message that would wait in the spool for good.
   */
  @Test
  void aPublishToATopicKafkaRefusesToCreateFailsWithItsReason() {
    String topic = "fault-no-create-" + UUID.randomUUID();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config("no-create").replicationFactor(2).build())) {
      assertThatThrownBy(() -> bus.publish(message(topic, "agent", 1)))
          .isInstanceOf(BackendRefusedException.class)
          .isNotInstanceOf(RetriableException.class)
          .hasMessageContaining("Kafka refused to create topic " + topic)
          .hasMessageContaining("replication factor");
      assertThat(bus.spooledMessages()).isZero();
    }
  }

  /** Changes one character of {@code text} in the partition's log file, so its batch's checksum fails. */
  private static void damageOnDisk(String topic, int partition, String text) throws Exception {
    Path directory = broker.dataDirectory().resolve(topic + "-" + partition);
    Path log;
    try (var files = java.nio.file.Files.list(directory)) {
      log = files.filter(f -> f.toString().endsWith(".log")).findFirst().orElseThrow();
    }
    byte[] bytes = java.nio.file.Files.readAllBytes(log);
    byte[] needle = text.getBytes(StandardCharsets.US_ASCII);
    int at = indexOf(bytes, needle);
    assertThat(at).as("the text is in the log file").isNotNegative();
    try (var file = new java.io.RandomAccessFile(log.toFile(), "rw")) {
      file.seek(at);
      file.write(bytes[at] == 'x' ? 'y' : 'x');
    }
  }

  private static int indexOf(byte[] bytes, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= bytes.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (bytes[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  private KafkaProducer<byte[], byte[]> rawProducer() {
    return new KafkaProducer<>(
        Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers()),
        new ByteArraySerializer(),
        new ByteArraySerializer());
  }

  /**
   * A record whose handler keeps failing keeps its attempt count when its partition moves to
   * another member (here: the first member closes while waiting to try again, and a second one
   * joins the group): the commit carries the attempts, so the retry budget holds across members.
   */
  @Test
  void aFailingRecordKeepsItsAttemptCountWhenItsPartitionMovesToAnotherMember() throws Exception {
    String topic = "fault-attempts-" + UUID.randomUUID();
    String group = "attempts-" + UUID.randomUUID();
    List<String> attempts = new CopyOnWriteArrayList<>();
    RetryPolicy fourTriesTwoSecondsApart = new RetryPolicy(4, Duration.ofSeconds(2), Duration.ofSeconds(2), 0);
    try (KafkaMessageBus bus = KafkaMessageBus.create(config("attempts").retryPolicy(fourTriesTwoSecondsApart).build())) {
      bus.ensureTopic(topic);
      var first = bus.subscribe(SubscriptionSpec.group(group).withTopics(topic), delivery -> {
        attempts.add("first member, attempt " + delivery.attempt());
        throw new IllegalStateException("cannot handle it");
      });
      await().atMost(Duration.ofSeconds(30)).until(() -> ((KafkaSubscription) first).isAssigned());
      bus.publish(message(topic, "agent", 1));
      await().atMost(Duration.ofSeconds(30)).until(() -> attempts.size() == 2);
      first.close();
      assertThat(attempts).containsExactly("first member, attempt 1", "first member, attempt 2");

      var second = bus.subscribe(SubscriptionSpec.group(group).withTopics(topic), delivery -> {
        attempts.add("second member, attempt " + delivery.attempt());
        throw new IllegalStateException("cannot handle it");
      });
      List<ConsumerRecord<byte[], byte[]>> deadLetters = readAll(StreamingTopics.deadLetterTopicOf(topic), 1);

      assertThat(deadLetters).hasSize(1);
      // The attempts tell the fix apart: without the carried count the second member makes four
      // of its own (1 to 4), and its dead letter says 4 all the same.
      assertThat(attempts).containsExactly(
          "first member, attempt 1", "first member, attempt 2", "second member, attempt 3", "second member, attempt 4");
      assertThat(header(deadLetters.get(0), DeadLetterHeaders.ATTEMPTS)).isEqualTo("4");
      second.close();
    }
  }

  private List<ConsumerRecord<byte[], byte[]>> readAll(String topic, int expected) {
    List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
    try (KafkaConsumer<byte[], byte[]> consumer =
        new KafkaConsumer<>(
            Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers(),
                ConsumerConfig.GROUP_ID_CONFIG, "reader-" + UUID.randomUUID(),
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest"),
            new ByteArrayDeserializer(),
            new ByteArrayDeserializer())) {
      consumer.subscribe(List.of(topic));
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (records.size() < expected && System.nanoTime() < deadline) {
        consumer.poll(Duration.ofMillis(200)).forEach(records::add);
      }
    }
    return records;
  }

  private static String header(ConsumerRecord<byte[], byte[]> record, String name) {
    var header = record.headers().lastHeader(name);
    return header == null ? "" : new String(header.value(), StandardCharsets.UTF_8);
  }

  @Test
  void aMemberItsGroupRefusesKeepsTryingAndTakesOverWhenThereIsRoom() throws Exception {
    String topic = "fault-full-" + UUID.randomUUID();
    String group = "full-" + UUID.randomUUID();
    var registry = new SimpleMeterRegistry();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config("full-spool").build(), registry, InstantSource.system())) {
      createTopicWithAFirstMessage(bus, topic);
      List<Integer> first = new CopyOnWriteArrayList<>();
      List<Integer> second = new CopyOnWriteArrayList<>();
      var firstMember = bus.subscribe(SubscriptionSpec.group(group).withTopics(topic), d -> first.add(sequence(d)));
      await().atMost(Duration.ofSeconds(30)).until(((KafkaSubscription) firstMember)::isAssigned);
      var secondMember = bus.subscribe(SubscriptionSpec.group(group).withTopics(topic), d -> second.add(sequence(d)));
      await().atMost(Duration.ofSeconds(30))
          .alias("the full group refused the second member")
          .until(() -> registry.get("nis.consumer.errors").tag("group", group).counter().count() >= 1);
      assertThat(((KafkaSubscription) secondMember).isClosed()).as("the refused member is still open").isFalse();

      firstMember.close();
      await().atMost(Duration.ofSeconds(30)).until(((KafkaSubscription) secondMember)::isAssigned);
      bus.publish(message(topic, "agent-1", 1));
      await().atMost(Duration.ofSeconds(30)).until(() -> second.contains(1));
      assertThat(first).doesNotContain(1);
    }
  }

  @Test
  void closingTheBusDoesNotWaitOutTheRetriesOfAMemberItsGroupRefuses() throws Exception {
    String topic = "fault-full-close-" + UUID.randomUUID();
    String group = "full-close-" + UUID.randomUUID();
    var registry = new SimpleMeterRegistry();
    try (KafkaMessageBus holder = KafkaMessageBus.create(config("holder-spool").build())) {
      createTopicWithAFirstMessage(holder, topic);
      var member = holder.subscribe(SubscriptionSpec.group(group).withTopics(topic), d -> {});
      await().atMost(Duration.ofSeconds(30)).until(((KafkaSubscription) member)::isAssigned);
      KafkaMessageBus refused = KafkaMessageBus.create(config("refused-spool").build(), registry, InstantSource.system());
      refused.subscribe(SubscriptionSpec.group(group).withTopics(topic), d -> {});
      await().atMost(Duration.ofSeconds(30))
          .until(() -> registry.get("nis.consumer.errors").tag("group", group).counter().count() >= 1);

      long start = System.nanoTime();
      refused.close();
      assertThat(Duration.ofNanos(System.nanoTime() - start))
          .as("the refused member has nothing to drain: close() does not wait for the 20 s shutdown timeout")
          .isLessThan(Duration.ofSeconds(10));
    }
  }

  /**
   * Publishes -1, which creates the topic, and waits until Kafka has it: a first send to a new
   * topic can outlast these tests' short send timeouts on a loaded machine, and is then spooled
   * and sent from there.
   */
  private static void createTopicWithAFirstMessage(KafkaMessageBus bus, String topic) {
    bus.publish(message(topic, "agent-0", -1));
    await().atMost(Duration.ofSeconds(60)).until(() -> bus.spooledMessages() == 0);
  }
}
