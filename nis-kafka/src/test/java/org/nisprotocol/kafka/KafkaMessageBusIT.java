package org.nisprotocol.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;
import static org.nisprotocol.testkit.SequencedMessages.message;
import static org.nisprotocol.testkit.SequencedMessages.sequence;

import com.fasterxml.jackson.databind.JsonNode;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nisprotocol.core.CircuitBreakerConfig;
import org.nisprotocol.core.ClosedException;
import org.nisprotocol.core.DeadLetterHeaders;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.MessageHandler;
import org.nisprotocol.core.MessageHandlers;
import org.nisprotocol.core.MessagePriority;
import org.nisprotocol.core.MessageTooLargeException;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.PublishReceipt;
import org.nisprotocol.core.RetriableException;
import org.nisprotocol.core.RetryPolicy;
import org.nisprotocol.core.StreamingTopics;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.embedded.InMemoryDeliveryLedger;
import org.nisprotocol.testkit.BusySignalLedger;
import org.nisprotocol.testkit.InterruptedClose;
import org.nisprotocol.testkit.StallWatch;
import org.nisprotocol.testkit.TestServers;

/** What the Kafka bus does beyond the shared contract, against the harness's shared broker. */
class KafkaMessageBusIT {
  private static final String TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

  @TempDir Path temp;

  private KafkaBusConfig.Builder config() {
    return KafkaBusConfig.builder(TestServers.kafka().bootstrapServers())
        .topicPartitions(3)
        .retryPolicy(new RetryPolicy(2, Duration.ofMillis(10), Duration.ofMillis(50), 0))
        .spoolDirectory(temp.resolve("spool"))
        .shutdownTimeout(Duration.ofSeconds(15));
  }

  /**
   * A dead letter is one group's: replaying it must not deliver it again to the topic's other
   * groups, which handled it when it first came (their handlers saw it twice).
   */
  @Test
  void aReplayedDeadLetterGoesBackOnlyToTheGroupThatGaveUpOnIt() throws Exception {
    String topic = "replay-groups-" + UUID.randomUUID();
    AtomicBoolean fixed = new AtomicBoolean();
    AtomicInteger failures = new AtomicInteger();
    List<Integer> seenByFailing = new CopyOnWriteArrayList<>();
    List<Integer> seenByOther = new CopyOnWriteArrayList<>();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().build())) {
      bus.ensureTopic(topic);
      var failing = bus.subscribe(SubscriptionSpec.group("replay-failing-" + UUID.randomUUID()).withTopics(topic), d -> {
        int sequence = sequence(d);
        if (sequence == 1 && !fixed.get()) {
          failures.incrementAndGet();
          throw new IllegalStateException("cannot handle 1 yet");
        }
        seenByFailing.add(sequence);
      });
      var other = bus.subscribe(SubscriptionSpec.group("replay-other-" + UUID.randomUUID()).withTopics(topic),
          d -> seenByOther.add(sequence(d)));
      await().atMost(Duration.ofSeconds(30))
          .until(() -> ((KafkaSubscription) failing).isAssigned() && ((KafkaSubscription) other).isAssigned());
      bus.publish(sequenced(topic, 1));
      await().atMost(Duration.ofSeconds(30)).until(() -> failures.get() == 2 && seenByOther.contains(1));
      fixed.set(true);
      AtomicLong replayed = new AtomicLong();
      await().atMost(Duration.ofSeconds(30)).until(() -> replayed.addAndGet(bus.replayDeadLetters(topic, Duration.ofSeconds(5))) == 1);
      bus.publish(sequenced(topic, 2)); // same key and partition: read after the replayed one

      await().atMost(Duration.ofSeconds(30)).until(() -> seenByFailing.contains(2) && seenByOther.contains(2));
      assertThat(seenByFailing).containsExactly(1, 2);
      assertThat(seenByOther).as("the other group handled 1 when it first came, and not again").containsExactly(1, 2);
    }
  }

  /**
   * A dead letter whose group is gone (deleted here) must not be replayed for it: no one would
   * handle it, and the replay's cursor would move past it for good. The replay stops there with an
   * error naming the group; on request that group's letters go to another group, while a live
   * group's letter goes back to it, once, whether it came before or after the gone group's. The
   * topic's other groups see neither again.
   */
  @Test
  void aDeadLetterOfAGroupThatIsGoneIsReplayedOnlyForTheGroupAskedFor() throws Exception {
    String topic = "replay-gone-" + UUID.randomUUID();
    String goneGroup = "replay-gone-" + UUID.randomUUID();
    String liveGroup = "replay-live-" + UUID.randomUUID();
    String newGroup = "replay-new-" + UUID.randomUUID();
    AtomicInteger goneFailures = new AtomicInteger();
    AtomicInteger liveFailures = new AtomicInteger();
    AtomicBoolean liveFixed = new AtomicBoolean();
    List<Integer> seenByOther = new CopyOnWriteArrayList<>();
    List<Integer> replaysSeenByLive = new CopyOnWriteArrayList<>();
    List<Integer> replaysSeenByNew = new CopyOnWriteArrayList<>();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().build());
        Admin admin = Admin.create(props(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, TestServers.kafka().bootstrapServers()))) {
      bus.ensureTopic(topic);
      var gone = bus.subscribe(SubscriptionSpec.group(goneGroup).withTopics(topic), d -> {
        goneFailures.incrementAndGet();
        throw new IllegalStateException("cannot handle " + sequence(d));
      });
      var live = bus.subscribe(SubscriptionSpec.group(liveGroup).withTopics(topic), d -> {
        if (!liveFixed.get()) {
          liveFailures.incrementAndGet();
          throw new IllegalStateException("cannot handle " + sequence(d) + " yet");
        }
        if (liveGroup.equals(d.headers().get(DeadLetterHeaders.REPLAYED_FOR))) {
          replaysSeenByLive.add(sequence(d));
        }
      });
      var other = bus.subscribe(SubscriptionSpec.group("replay-other-" + UUID.randomUUID()).withTopics(topic),
          d -> seenByOther.add(sequence(d)));
      await().atMost(Duration.ofSeconds(30)).until(() -> ((KafkaSubscription) gone).isAssigned()
          && ((KafkaSubscription) live).isAssigned() && ((KafkaSubscription) other).isAssigned());
      bus.publish(sequenced(topic, 1));
      await().atMost(Duration.ofSeconds(30))
          .until(() -> goneFailures.get() == 2 && liveFailures.get() == 2 && seenByOther.contains(1));
      await().atMost(Duration.ofSeconds(30)) // both dead-lettered
          .until(() -> committedOn(admin, goneGroup, topic) > 0 && committedOn(admin, liveGroup, topic) > 0);
      liveFixed.set(true);
      gone.close();
      await().atMost(Duration.ofSeconds(30)).ignoreExceptions()
          .until(() -> admin.deleteConsumerGroups(List.of(goneGroup)).all().get(10, TimeUnit.SECONDS) == null);

      assertThatThrownBy(() -> bus.replayDeadLetters(topic, Duration.ofSeconds(20)))
          .isInstanceOf(org.nisprotocol.core.NisException.class)
          .hasMessageContaining("group '" + goneGroup + "', which gave up on it, no longer reads " + topic);
      String nobody = "replay-nobody-" + UUID.randomUUID();
      assertThatThrownBy(() -> bus.replayDeadLetters(topic, goneGroup, nobody, Duration.ofSeconds(20)))
          .as("a group asked for that does not read the topic is refused too")
          .isInstanceOf(org.nisprotocol.core.NisException.class)
          .hasMessageContaining("group '" + nobody + "', asked to take the letters of group '" + goneGroup + "'");
      var taker = bus.subscribe(SubscriptionSpec.group(newGroup).withTopics(topic), d -> {
        if (newGroup.equals(d.headers().get(DeadLetterHeaders.REPLAYED_FOR))) {
          replaysSeenByNew.add(sequence(d));
        }
      });
      await().atMost(Duration.ofSeconds(30)).until(() -> ((KafkaSubscription) taker).isAssigned());
      assertThat(bus.replayDeadLetters(topic, goneGroup, newGroup, Duration.ofSeconds(30)))
          .as("the gone group's letter, and the live group's if it came after it").isBetween(1L, 2L);
      bus.publish(sequenced(topic, 2)); // same key and partition: read after the replayed ones

      await().atMost(Duration.ofSeconds(30))
          .until(() -> seenByOther.contains(2) && replaysSeenByNew.contains(1) && replaysSeenByLive.contains(1));
      assertThat(replaysSeenByNew).containsExactly(1);
      assertThat(replaysSeenByLive).as("replayed once, though a replay stopped after or before it").containsExactly(1);
      assertThat(seenByOther).as("the other group handled 1 when it first came, and not again").containsExactly(1, 2);
      assertThat(bus.replayDeadLetters(topic, Duration.ofSeconds(10))).as("nothing is left to replay").isZero();
      assertThatThrownBy(() -> bus.replayDeadLetters(topic, goneGroup, " ", Duration.ofSeconds(1)))
          .isInstanceOf(org.nisprotocol.core.ValidationException.class)
          .hasMessageContaining("toGroup");
    }
  }

  private static long committedOn(Admin admin, String group, String topic) throws Exception {
    return admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(10, TimeUnit.SECONDS)
        .entrySet().stream()
        .filter(e -> e.getKey().topic().equals(topic) && e.getValue() != null)
        .mapToLong(e -> e.getValue().offset())
        .sum();
  }

  /**
   * A subscribe() that races close() either is refused, or makes a subscription that close()
   * closes: none may outlive the bus (its consumer went on polling, its dead letters had no
   * producer).
   */
  @Test
  void aSubscriptionMadeWhileTheBusClosesIsClosedWithIt() throws Exception {
    String topic = "subscribe-close-" + UUID.randomUUID();
    KafkaMessageBus bus = KafkaMessageBus.create(config().build());
    List<KafkaSubscription> made = new CopyOnWriteArrayList<>();
    List<Throwable> otherErrors = new CopyOnWriteArrayList<>();
    Thread subscriber;
    try {
      subscriber = Thread.ofPlatform().name("test-subscriber").start(() -> {
        for (int i = 0; ; i++) {
          try {
            // A new topic each time: subscribe() creates it, which makes room for close() to begin.
            made.add((KafkaSubscription) bus.subscribe(
                SubscriptionSpec.group("subscribe-close-" + UUID.randomUUID()).withTopics(topic + "-" + i), d -> {}));
          } catch (ClosedException e) {
            return;
          } catch (RuntimeException e) {
            otherErrors.add(e);
            return;
          }
        }
      });
      await().atMost(Duration.ofSeconds(30)).until(() -> made.size() >= 3);
    } finally {
      bus.close();
    }
    subscriber.join(Duration.ofSeconds(30));
    assertThat(subscriber.isAlive()).as("subscribe() is refused once the bus has closed").isFalse();
    assertThat(otherErrors).isEmpty();
    assertThat(made).as("every subscription made is closed with the bus").allMatch(KafkaSubscription::isClosed);
  }

  /**
   * Replays run at once, of one topic and of another, replay each dead letter once between them:
   * they share the consumer group {@code nis-dlt-replay}, whose rebalance, when the second replay
   * of a topic joins, moves partitions between replays under way.
   */
  @Test
  void replaysRunAtOnceReplayEachDeadLetterOnce() throws Exception {
    int letters = 300; // replayed one by one, each acknowledged: the first replay lasts seconds
    List<String> topics = List.of("replay-at-once-a-" + UUID.randomUUID(), "replay-at-once-b-" + UUID.randomUUID());
    AtomicBoolean fixed = new AtomicBoolean();
    Map<String, List<Integer>> handled = Map.of(topics.get(0), new CopyOnWriteArrayList<>(), topics.get(1), new CopyOnWriteArrayList<>());
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().build(), registry, InstantSource.system())) {
      Map<String, String> groups = new HashMap<>();
      for (String topic : topics) {
        bus.ensureTopic(topic);
        groups.put(topic, "replay-at-once-" + UUID.randomUUID());
        var subscription = bus.subscribe(SubscriptionSpec.group(groups.get(topic)).withTopics(topic), d -> {
          if (!fixed.get()) {
            throw new IllegalStateException("not yet");
          }
          handled.get(d.topic()).add(sequence(d));
        });
        await().atMost(Duration.ofSeconds(30)).until(((KafkaSubscription) subscription)::isAssigned);
      }
      for (String topic : topics) {
        for (int i = 0; i < letters; i++) {
          bus.publish(message(topic, "agent-" + (i % 5), i));
        }
      }
      await().atMost(Duration.ofSeconds(60)).until(() -> registry.get("nis.messages.dead_lettered").counter().count() == 2 * letters);
      fixed.set(true);

      // A replay of each topic; a second one of the first topic once the first replays are under way.
      List<CompletableFuture<Long>> counts = new ArrayList<>();
      counts.add(replayOnAThreadOfItsOwn(bus, topics.get(0)));
      counts.add(replayOnAThreadOfItsOwn(bus, topics.get(1)));
      await().atMost(Duration.ofSeconds(60)).until(() -> !handled.get(topics.get(0)).isEmpty());
      assertThat(counts.get(0)).as("the first replay is under way when the second of its topic starts").isNotDone();
      counts.add(replayOnAThreadOfItsOwn(bus, topics.get(0)));
      assertThat(counts.get(0).get(90, TimeUnit.SECONDS) + counts.get(2).get(90, TimeUnit.SECONDS))
          .as("the two replays of one topic replayed its letters once between them").isEqualTo(letters);
      assertThat(counts.get(1).get(90, TimeUnit.SECONDS)).isEqualTo(letters);

      for (String topic : topics) {
        // Every replayed record is in Kafka (each replay waited for its sends): all are handled
        // once the group has no lag.
        await().atMost(Duration.ofSeconds(60)).until(() -> handled.get(topic).size() >= letters
            && registry.get("nis.consumer.lag").tag("group", groups.get(topic)).gauge().value() == 0);
        assertThat(handled.get(topic)).as(topic).hasSize(letters).doesNotHaveDuplicates();
        assertThat(bus.replayDeadLetters(topic, Duration.ofSeconds(30))).as("nothing is left to replay").isZero();
      }
    }
  }

  private static CompletableFuture<Long> replayOnAThreadOfItsOwn(KafkaMessageBus bus, String topic) {
    return CompletableFuture.supplyAsync(
        () -> bus.replayDeadLetters(topic, Duration.ofSeconds(60)), runnable -> Thread.ofPlatform().start(runnable));
  }

  /**
   * Only a replay's own header makes a group skip a record: not one another client wrote without
   * a value (it stopped the partition's worker), nor one a handler forwarded from a replayed
   * delivery when publishing anew (the bus drops it).
   */
  @Test
  void aReplayHeaderWithoutValueOrForwardedByAPublisherDoesNotMakeAGroupSkipAMessage() throws Exception {
    String topic = "replay-header-" + UUID.randomUUID();
    List<Integer> seen = new CopyOnWriteArrayList<>();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().build())) {
      bus.ensureTopic(topic);
      var subscription = bus.subscribe(SubscriptionSpec.group("replay-header-" + UUID.randomUUID()).withTopics(topic),
          d -> seen.add(sequence(d)));
      await().atMost(Duration.ofSeconds(30)).until(((KafkaSubscription) subscription)::isAssigned);
      try (KafkaProducer<String, String> raw = rawProducer()) {
        String json = new String(MessageCodec.create(InstantSource.system()).encode(sequenced(topic, 1)), StandardCharsets.UTF_8);
        var record = new ProducerRecord<>(topic, 0, "agent-0", json);
        record.headers().add(DeadLetterHeaders.REPLAYED_FOR, null);
        raw.send(record).get(10, TimeUnit.SECONDS);
      }
      bus.publish(sequenced(topic, 2), Map.of(DeadLetterHeaders.REPLAYED_FOR, "another-group", DeadLetterHeaders.ERROR, "forwarded"));

      await().atMost(Duration.ofSeconds(30)).until(() -> seen.size() >= 2);
      assertThat(seen).containsExactlyInAnyOrder(1, 2);
    }
  }

  private static KafkaProducer<String, String> rawProducer() {
    return new KafkaProducer<>(
        props(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, TestServers.kafka().bootstrapServers()),
        new StringSerializer(),
        new StringSerializer());
  }

  private static NisMessage sequenced(String topic, int sequence) {
    return message(topic, "agent-0", sequence);
  }

  private static Map<String, Object> props(String... keyValues) {
    Map<String, Object> map = new HashMap<>();
    for (int i = 0; i < keyValues.length; i += 2) {
      map.put(keyValues[i], keyValues[i + 1]);
    }
    return map;
  }

  @Test
  void codeChainedOnAReceiptMayPublishAgainWhileTheBudgetIsFull() throws Exception {
    // The chained publish runs on the producer's thread when the first is acknowledged: it finds
    // room only if the first message's bytes were given back before its receipt completed.
    String topic = "chained-" + UUID.randomUUID();
    // Without room the chained publish would wait the send timeout and then spool: the timeout
    // only needs to outlast a first send to a new topic on a busy machine (5 s did not, once).
    KafkaBusConfig tight = config().maxInFlightBytes(1024 * 1024).sendTimeout(Duration.ofSeconds(15)).build();
    try (KafkaMessageBus bus = KafkaMessageBus.create(tight)) {
      bus.publish(NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(topic).content(Map.of()).build());
      Map<String, Object> content = Map.of("blob", "x".repeat(700_000));
      NisMessage first = NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(topic).content(content).build();
      NisMessage second = NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(topic).content(content).build();

      PublishReceipt receipt =
          bus.publishAsync(first).thenCompose(sent -> bus.publishAsync(second)).get(30, TimeUnit.SECONDS);

      assertThat(receipt.status()).isEqualTo(PublishReceipt.Status.SENT);
    }
  }

  /**
   * Publishes chained on receipts go through the bus's hand-off thread; a close() in the middle of
   * such a chain must end it with a clear error, not leave it waiting, and every publish that was
   * acknowledged before must reach the topic (now, or from the spool at the next start).
   */
  @Test
  void aCloseInTheMiddleOfAChainOfPublishesEndsItWithoutLosingWhatWasAcknowledged() throws Exception {
    String topic = "chain-close-" + UUID.randomUUID();
    List<String> acknowledged = new CopyOnWriteArrayList<>();
    List<String> threads = new CopyOnWriteArrayList<>();
    CompletableFuture<Void> chainEnd = new CompletableFuture<>();
    KafkaBusConfig busConfig = config().build();
    KafkaMessageBus bus = KafkaMessageBus.create(busConfig);
    try {
      bus.ensureTopic(topic);
      publishChained(bus, topic, 1, acknowledged, threads, chainEnd);
      await().atMost(Duration.ofSeconds(60)).until(() -> acknowledged.size() >= 50 || chainEnd.isDone());
      assertThat(chainEnd).as("the chain is still going when close() comes").isNotDone();
    } finally {
      bus.close();
    }

    assertThatThrownBy(() -> chainEnd.get(5, TimeUnit.SECONDS))
        .as("the chain ends once close() returned, with the error of a closed bus")
        .hasCauseInstanceOf(ClosedException.class);
    assertThat(threads).as("chained publishes came from the producer's thread, so through the hand-off thread")
        .anyMatch(name -> name.startsWith("kafka-producer-network-thread"));
    Map<String, Integer> seen = new java.util.concurrent.ConcurrentHashMap<>();
    try (KafkaMessageBus next = KafkaMessageBus.create(busConfig)) { // sends what the first left in the spool
      next.subscribe(SubscriptionSpec.group("chain-reader-" + UUID.randomUUID()).withTopics(topic),
          d -> seen.merge(d.message().messageId(), 1, Integer::sum));
      await().atMost(Duration.ofSeconds(60)).until(() -> seen.keySet().containsAll(acknowledged));
    }
    assertThat(acknowledged).hasSizeGreaterThanOrEqualTo(50);
  }

  /** Publishes message {@code sequence}, and from its receipt the next one, until one fails. */
  private static void publishChained(
      KafkaMessageBus bus, String topic, int sequence, List<String> acknowledged, List<String> threads, CompletableFuture<Void> end) {
    NisMessage message = sequenced(topic, sequence);
    threads.add(Thread.currentThread().getName());
    bus.publishAsync(message).whenComplete((receipt, error) -> {
      if (error != null) {
        end.completeExceptionally(error instanceof java.util.concurrent.CompletionException ? error.getCause() : error);
        return;
      }
      acknowledged.add(message.messageId());
      publishChained(bus, topic, sequence + 1, acknowledged, threads, end);
    });
  }

  @Test
  void aSendRefusedOnItsCallersThreadLeavesThatThreadFreeToPublish() throws Exception {
    // send() calls back on its caller when it refuses at once (here: headers that make the record
    // larger than a request may be); that thread must not be taken for the producer's own, on
    // which the blocking publish() is refused.
    String topic = "refused-" + UUID.randomUUID();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().build())) {
      NisMessage message = NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(topic).content(Map.of()).build();
      assertThatThrownBy(() -> bus.publish(message, Map.of("bulky", "x".repeat(1_200_000))))
          .isInstanceOf(MessageTooLargeException.class);

      assertThat(bus.publish(message).status()).isEqualTo(PublishReceipt.Status.SENT);
    }
  }

  @Test
  void aBlockingPublishInCodeChainedOnAReceiptIsRefusedInsteadOfWaitingForever() throws Exception {
    // It would wait on the producer's thread for a send only that thread can settle.
    String topic = "chained-blocking-" + UUID.randomUUID();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().lingerMs(3_000).build())) {
      bus.ensureTopic(topic);
      NisMessage first = NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(topic).content(Map.of()).build();
      NisMessage second = NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(topic).content(Map.of()).build();
      CompletableFuture<String> chainedOn = new CompletableFuture<>();

      CompletableFuture<PublishReceipt> chained = bus.publishAsync(first).thenApply(sent -> {
        chainedOn.complete(Thread.currentThread().getName());
        return bus.publish(second);
      });

      assertThat(chainedOn.get(30, TimeUnit.SECONDS)).as("the linger held the first receipt").startsWith("kafka-producer-network-thread");
      assertThatThrownBy(() -> chained.get(30, TimeUnit.SECONDS))
          .hasCauseInstanceOf(IllegalStateException.class)
          .cause()
          .hasMessageContaining("use publishAsync()");
      assertThat(bus.publishAsync(second).thenCompose(r -> bus.publishAsync(first)).get(30, TimeUnit.SECONDS).status())
          .as("publishAsync() in a chain works")
          .isEqualTo(PublishReceipt.Status.SENT);
    }
  }

  @Test
  void closeCalledFromCodeChainedOnAReceiptReturnsAtOnceAndWhatIsInFlightIsSent() throws Exception {
    // Receipts complete on the producer's thread, which also settles the sends close() waits for:
    // closing there must not hold that thread (it would wait out the shutdown timeout and then
    // cut the sends off).
    String topic = "close-chained-" + UUID.randomUUID();
    StallWatch stalls = StallWatch.shared(); // watching from here
    KafkaBusConfig lingering = config().lingerMs(5_000).shutdownTimeout(Duration.ofSeconds(20)).build();
    KafkaMessageBus bus = KafkaMessageBus.create(lingering);
    try {
      bus.ensureTopic(topic);
      bus.publish(NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(topic).content(Map.of()).build());
      List<CompletableFuture<PublishReceipt>> inFlight = new ArrayList<>();
      CompletableFuture<String> closedOn = new CompletableFuture<>();
      CompletableFuture<Duration> closeTook = new CompletableFuture<>();
      // chained at once, so the linger holds the receipt; the others stay in flight behind it
      inFlight.add(bus.publishAsync(NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(topic).content(Map.of("i", 0)).build()));
      inFlight.get(0).thenRun(() -> {
        closedOn.complete(Thread.currentThread().getName());
        closeTook.complete(stalls.unstalledTimeOf(bus::close));
      });
      for (int i = 1; i < 20; i++) { // few enough that no batch fills up before the linger ends
        inFlight.add(bus.publishAsync(
            NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(topic).content(Map.of("i", i)).build()));
      }

      assertThat(closedOn.get(60, TimeUnit.SECONDS)).as("the receipt was not complete yet").startsWith("kafka-producer-network-thread");
      // it waited the shutdown timeout before
      assertThat(closeTook.get(60, TimeUnit.SECONDS)).as("close() on the producer's thread, pauses of this JVM taken out").isLessThan(Duration.ofSeconds(5));
      for (CompletableFuture<PublishReceipt> receipt : inFlight) {
        assertThat(receipt.get(60, TimeUnit.SECONDS).status()).isEqualTo(PublishReceipt.Status.SENT);
      }
      assertThatThrownBy(() -> bus.publish(NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(topic).build()))
          .isInstanceOf(ClosedException.class);
      await().atMost(Duration.ofSeconds(30)).until(bus::closeFinished);
      assertThat(bus.spooledMessages()).as("nothing was cut off").isZero();
    } finally {
      bus.close();
    }
  }

  @Test
  void anInterruptedSubscriptionCloseStillLetsItsHandlerFinishAndCommit() throws Exception {
    // An agent stopped by a pool's shutdownNow() closes its subscription on an interrupted thread.
    String topic = "unsubscribe-interrupted-" + UUID.randomUUID();
    String group = "interrupted-" + UUID.randomUUID();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().build())) {
      bus.publish(numbered(topic, 0));
      CountDownLatch entered = new CountDownLatch(1);
      CountDownLatch release = new CountDownLatch(1);
      List<Object> finished = new CopyOnWriteArrayList<>();
      var subscription = bus.subscribe(SubscriptionSpec.group(group).withTopics(topic), d -> {
        entered.countDown();
        release.await();
        finished.add(d.message().content().get("n"));
      });
      assertThat(entered.await(60, TimeUnit.SECONDS)).as("the handler is busy").isTrue();

      InterruptedClose.Outcome<List<Object>> closed =
          InterruptedClose.run(subscription::close, () -> List.copyOf(finished), release, Duration.ofSeconds(60));
      assertThat(closed.seenWhenClosed()).as("finished before close() returned").containsExactly(0);
      assertThat(closed.interruptKept()).as("the caller keeps its interrupt").isTrue();

      // Committed: the group's next member starts after it.
      bus.publish(numbered(topic, 1));
      List<Object> next = new CopyOnWriteArrayList<>();
      bus.subscribe(SubscriptionSpec.group(group).withTopics(topic), d -> next.add(d.message().content().get("n")));
      await().atMost(Duration.ofSeconds(60)).until(() -> next.contains(1));
      assertThat(next).containsExactly(1);
    }
  }

  private static NisMessage numbered(String topic, int n) {
    return NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(topic).content(Map.of("n", n)).build();
  }

  @Test
  void theMessageWhoseHandlerClosedTheBusIsCommittedAndNotDeliveredAgain() throws Exception {
    // An agent that stops on a message must not meet that message again on its next start.
    String topic = "stop-" + UUID.randomUUID();
    String group = "stopping-" + UUID.randomUUID();
    KafkaMessageBus first = KafkaMessageBus.create(config().build());
    CompletableFuture<Duration> closeTook = new CompletableFuture<>();
    KafkaSubscription stopping;
    StallWatch stalls = StallWatch.shared(); // pauses of this JVM are not close()'s time
    try {
      first.publish(NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(topic).content(Map.of("stop", true)).build());
      stopping = (KafkaSubscription) first.subscribe(
          SubscriptionSpec.group(group).withTopics(topic), d -> closeTook.complete(stalls.unstalledTimeOf(first::close)));
      assertThat(closeTook.get(60, TimeUnit.SECONDS)).as("close() in a handler").isLessThan(Duration.ofSeconds(5));
      await().atMost(Duration.ofSeconds(30)).until(() -> stopping.isClosed() && first.closeFinished());
    } finally {
      first.close();
    }

    try (KafkaMessageBus second = KafkaMessageBus.create(config().spoolDirectory(temp.resolve("second")).build())) {
      List<Delivery> received = new CopyOnWriteArrayList<>();
      second.subscribe(SubscriptionSpec.group(group).withTopics(topic), received::add);
      NisMessage after = NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(topic).content(Map.of("after", true)).build();
      second.publish(after);
      await().atMost(Duration.ofSeconds(30)).until(() -> !received.isEmpty());
      Thread.sleep(500); // anything else would come in the same poll
      assertThat(received).extracting(d -> d.message().messageId()).containsExactly(after.messageId());
    }
  }

  @Test
  void anyKafkaClientReadsOurRecordsAsJsonKeyedByTheOrderingKey() throws Exception {
    String topic = "wire-out-" + UUID.randomUUID();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().build())) {
      NisMessage message =
          NisMessage.builder(MessageType.SIMULATION_RESULT, "scenario_simulator")
              .topic(topic)
              .targetAgent("coordination_agent")
              .priority(MessagePriority.LOW)
              .content(Map.of("success_probability", 0.847))
              .build();
      bus.publish(message, Map.of("traceparent", TRACEPARENT));

      try (KafkaConsumer<String, String> raw =
          new KafkaConsumer<>(
              props(
                  ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, TestServers.kafka().bootstrapServers(),
                  ConsumerConfig.GROUP_ID_CONFIG, "raw-" + UUID.randomUUID(),
                  ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest"),
              new StringDeserializer(),
              new StringDeserializer())) {
        raw.subscribe(List.of(topic));
        List<ConsumerRecord<String, String>> records = new ArrayList<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (records.isEmpty() && System.nanoTime() < deadline) {
          raw.poll(Duration.ofMillis(200)).forEach(records::add);
        }
        assertThat(records).hasSize(1);
        ConsumerRecord<String, String> record = records.get(0);
        assertThat(record.key()).isEqualTo("coordination_agent");
        JsonNode json = MessageCodec.parse(record.value().getBytes(StandardCharsets.UTF_8));
        assertThat(json.get("message_type").textValue()).isEqualTo("simulation_result");
        assertThat(json.get("priority").textValue()).isEqualTo("low");
        assertThat(json.at("/content/success_probability").doubleValue()).isEqualTo(0.847);
        assertThat(new String(record.headers().lastHeader("traceparent").value(), StandardCharsets.UTF_8))
            .isEqualTo(TRACEPARENT);
      }
    }
  }

  @Test
  void messagesWrittenByAnyKafkaClientAreDelivered() throws Exception {
    String topic = "wire-in-" + UUID.randomUUID();
    List<Delivery> received = new CopyOnWriteArrayList<>();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().build())) {
      var subscription = bus.subscribe(SubscriptionSpec.group("wire-" + UUID.randomUUID()).withTopics(topic), received::add);
      await().atMost(Duration.ofSeconds(30)).until(((KafkaSubscription) subscription)::isAssigned);
      try (KafkaProducer<String, String> raw = rawProducer()) {
        var record =
            new ProducerRecord<>(
                topic,
                "python_agent",
                "{\"message_type\":\"goal_generation\",\"source_agent\":\"python_agent\",\"priority\":3,"
                    + "\"content\":{\"goal\":\"map the site\"},\"timestamp\":1763759431.5}");
        record.headers().add("traceparent", TRACEPARENT.getBytes(StandardCharsets.UTF_8));
        raw.send(record).get(10, TimeUnit.SECONDS);
      }

      await().atMost(Duration.ofSeconds(30)).until(() -> received.size() == 1);
      Delivery delivery = received.get(0);
      assertThat(delivery.message().messageType()).isEqualTo(MessageType.GOAL_GENERATION);
      assertThat(delivery.message().priority()).isEqualTo(MessagePriority.HIGH);
      assertThat(delivery.message().content()).containsEntry("goal", "map the site");
      assertThat(delivery.headers()).containsEntry("traceparent", TRACEPARENT);
    }
  }

  @Test
  void aMessageStampedCenturiesAwayIsHandledOnItsFirstAttempt() throws Exception {
    // Its age overflowed the end-to-end timer, which failed every attempt: dead-lettered, never handled.
    String topic = "far-stamp-" + UUID.randomUUID();
    List<Delivery> received = new CopyOnWriteArrayList<>();
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().build(), registry, InstantSource.system())) {
      var subscription = bus.subscribe(SubscriptionSpec.group("far-" + UUID.randomUUID()).withTopics(topic), received::add);
      await().atMost(Duration.ofSeconds(30)).until(((KafkaSubscription) subscription)::isAssigned);
      for (var when : List.of(java.time.Instant.parse("2603-01-01T00:00:00Z"), java.time.Instant.MAX)) {
        bus.publish(NisMessage.builder(MessageType.SYSTEM_HEALTH, "clock_skewed")
            .topic(topic).timestamp(when).content(Map.of("when", when.toString())).build());
      }

      await().atMost(Duration.ofSeconds(30)).until(() -> received.size() == 2);
      assertThat(received).extracting(Delivery::attempt).containsExactly(1, 1);
      assertThat(registry.counter("nis.messages.failed").count()).isZero();
      assertThat(registry.get("nis.messages.end_to_end.latency").timer().max(TimeUnit.DAYS)).as("recorded, at most 292 years")
          .isGreaterThan(365.0 * 200);
    }
  }

  @Test
  void thePollIntervalOutlastsTheShutdownWindowThatARevokeMayWait() {
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().shutdownTimeout(Duration.ofMinutes(10)).build());
        KafkaMessageBus usual = KafkaMessageBus.create(config().spoolDirectory(temp.resolve("usual")).build())) {
      assertThat(bus.consumerProperties("g", 0)).containsEntry(
          org.apache.kafka.clients.consumer.ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, "660000");
      assertThat(usual.consumerProperties("g", 0)).containsEntry(
          org.apache.kafka.clients.consumer.ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, "300000");
    }
  }

  @Test
  void aReplayTakesAnyPositiveTimeout() {
    String topic = "replay-timeout-" + UUID.randomUUID();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().build())) {
      // Three centuries overflowed the nanosecond clock (an ArithmeticException; Long.MAX_VALUE
      // nanoseconds wrapped round, and the replay ended at once having replayed nothing).
      assertThat(bus.replayDeadLetters(topic, Duration.ofDays(365L * 300))).isZero();
      assertThatThrownBy(() -> bus.replayDeadLetters(topic, Duration.ZERO))
          .isInstanceOf(org.nisprotocol.core.ValidationException.class)
          .hasMessageContaining("timeout must be positive");
    }
  }

  @Test
  void contentOverTheLimitIsRefusedBeforeItReachesKafka() {
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().maxContentBytes(2_000).build())) {
      NisMessage big =
          NisMessage.builder(MessageType.MEMORY_OPERATION, "a")
              .topic("too-big-" + UUID.randomUUID())
              .content(Map.of("blob", "x".repeat(3_000)))
              .build();

      assertThatThrownBy(() -> bus.publish(big))
          .isInstanceOf(MessageTooLargeException.class)
          .hasMessageContaining("at most 2000");
    }
  }

  /**
   * Handlers that never return hold up close() only until the end of the shutdown timeout: the
   * subscriptions still busy near its end are stopped together and share what is left (not a
   * grace period each, nor one after the timeout, which {@code docker stop --time 30} would cut short),
   * and they are closed (their consumers out of the group) when it returns.
   */
  @Test
  void subscriptionsStuckInTheirHandlersAreClosedWithinTheShutdownTimeout() throws Exception {
    java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.CountDownLatch entered = new java.util.concurrent.CountDownLatch(3);
    KafkaBusConfig shortShutdown = config().shutdownTimeout(Duration.ofSeconds(4)).build();
    KafkaMessageBus bus = KafkaMessageBus.create(shortShutdown);
    long closeMillis;
    List<KafkaSubscription> subscriptions = new ArrayList<>();
    try {
      List<String> topics = new ArrayList<>();
      for (int i = 0; i < 3; i++) {
        String topic = "stuck-" + i + "-" + UUID.randomUUID();
        topics.add(topic);
        subscriptions.add((KafkaSubscription) bus.subscribe(
            SubscriptionSpec.group("stuck-" + UUID.randomUUID()).withTopics(topic),
            d -> {
              entered.countDown();
              release.await();
            }));
      }
      await().atMost(Duration.ofSeconds(30)).until(() -> subscriptions.stream().allMatch(KafkaSubscription::isAssigned));
      for (String topic : topics) {
        bus.publish(NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(topic).content(Map.of()).build());
      }
      assertThat(entered.await(30, TimeUnit.SECONDS)).as("every handler is busy").isTrue();

      closeMillis = StallWatch.shared().unstalledTimeOf(bus::close).toMillis(); // this JVM's pauses taken out
      assertThat(subscriptions).allMatch(KafkaSubscription::isClosed, "closed when close() returned");
    } finally {
      release.countDown();
      bus.close();
    }
    // The 4 s timeout and a margin for this machine; a 5 s grace after it would take 9 s and more.
    assertThat(closeMillis).as("close() took %d ms", closeMillis).isLessThan(5_500);
  }

  @Test
  void aSubscriptionStuckInItsHandlerIsClosedWhenItsCloseReturns() throws Exception {
    // Its wait for the handler was fixed when the poll loop ended, and the stop at the end of
    // close()'s time did not shorten it: close() returned with the consumer still open.
    java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.CountDownLatch entered = new java.util.concurrent.CountDownLatch(1);
    String topic = "stuck-one-" + UUID.randomUUID();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().shutdownTimeout(Duration.ofSeconds(6)).build())) {
      KafkaSubscription subscription = (KafkaSubscription) bus.subscribe(
          SubscriptionSpec.group("stuck-one-" + UUID.randomUUID()).withTopics(topic),
          d -> {
            entered.countDown();
            release.await();
          });
      try {
        await().atMost(Duration.ofSeconds(30)).until(subscription::isAssigned);
        bus.publish(NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(topic).content(Map.of()).build());
        assertThat(entered.await(30, TimeUnit.SECONDS)).as("the handler is busy").isTrue();

        long closeMillis = StallWatch.shared().unstalledTimeOf(subscription::close).toMillis();

        assertThat(subscription.isClosed()).as("closed when close() returned (after %d ms)", closeMillis).isTrue();
        assertThat(closeMillis).isLessThan(7_500);
      } finally {
        release.countDown();
      }
    }
  }

  /**
   * A rebalance gives up on a handler that outlasts its wait and lets the message be delivered
   * again on another instance while that handler still runs. With dedupe, the second delivery
   * waits for the first instead of handling the message a second time.
   */
  @Test
  void withDedupeARedeliveryOverlappingAHandlerGivenUpAtARebalanceIsNotHandledTwice() throws Exception {
    String topic = "overlap-" + UUID.randomUUID();
    String group = "overlap-" + UUID.randomUUID();
    // The store both instances share, telling when the redelivery met the first delivery's claim.
    BusySignalLedger ledger = new BusySignalLedger(InMemoryDeliveryLedger.create());
    AtomicInteger handled = new AtomicInteger();
    AtomicInteger returned = new AtomicInteger();
    CountDownLatch firstEntered = new CountDownLatch(1);
    CountDownLatch releaseFirst = new CountDownLatch(1);
    MessageHandler deduplicated = MessageHandlers.deduplicated(
        d -> {
          if (handled.incrementAndGet() == 1) {
            firstEntered.countDown();
            releaseFirst.await();
          }
        },
        ledger, group, Duration.ofMinutes(10));
    MessageHandler counted = d -> {
      deduplicated.handle(d);
      returned.incrementAndGet();
    };
    // A rebalance waits this long for a busy handler before it gives up on it.
    KafkaBusConfig.Builder shortWait = config().shutdownTimeout(Duration.ofSeconds(3));
    try (KafkaMessageBus first = KafkaMessageBus.create(shortWait.spoolDirectory(temp.resolve("first")).build());
        KafkaMessageBus second = KafkaMessageBus.create(shortWait.spoolDirectory(temp.resolve("second")).build())) {
      var firstSubscription = (KafkaSubscription) first.subscribe(SubscriptionSpec.group(group).withTopics(topic), counted);
      await().atMost(Duration.ofSeconds(30)).until(firstSubscription::isAssigned);
      first.publish(NisMessage.builder(MessageType.AGENT_COORDINATION, "a").topic(topic).content(Map.of()).build());
      assertThat(firstEntered.await(30, TimeUnit.SECONDS)).isTrue();

      var secondSubscription = (KafkaSubscription) second.subscribe(SubscriptionSpec.group(group).withTopics(topic), counted);
      // The group rebalances; should the partition stay with the first instance, its next worker
      // waits there for the handler given up on, so the first instance leaves: the partition is
      // the second's, and its redelivery meets the first delivery's claim.
      await().atMost(Duration.ofSeconds(60)).until(secondSubscription::isAssigned);
      firstSubscription.close(); // gives up on the busy handler, which goes on

      assertThat(ledger.awaitBusy(Duration.ofSeconds(60))).as("the message was delivered again").isTrue();
      assertThat(handled).as("the redelivery waits").hasValue(1);
      releaseFirst.countDown();
      await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> assertThat(returned).hasValue(2));
      assertThat(handled).hasValue(1);
    } finally {
      releaseFirst.countDown();
    }
  }

  /**
   * A rebalance gives up on a handler that outlasts its wait; when the partition comes back to the
   * same member while that handler still runs, the partition's new worker waits for it: neither the
   * record in hand nor a later one of its key is handled alongside it.
   */
  @Test
  void aPartitionBackOnTheMemberThatGaveUpOnItsHandlerWaitsForThatHandler() throws Exception {
    String topic = "back-" + UUID.randomUUID();
    String group = "back-" + UUID.randomUUID();
    FirstCallHeld onFirst = new FirstCallHeld();
    // A rebalance waits this long for a busy handler before it gives up on it.
    KafkaBusConfig.Builder shortWait = config().shutdownTimeout(Duration.ofSeconds(3));
    SubscriptionSpec spec = SubscriptionSpec.group(group).withTopics(topic);
    try (KafkaMessageBus first = KafkaMessageBus.create(shortWait.spoolDirectory(temp.resolve("first")).build());
        KafkaMessageBus second = KafkaMessageBus.create(shortWait.spoolDirectory(temp.resolve("second")).build())) {
      var firstSubscription = (KafkaSubscription) first.subscribe(spec, onFirst);
      await().atMost(Duration.ofSeconds(30)).until(firstSubscription::isAssigned);
      first.publish(numbered(topic, 1));
      assertThat(onFirst.firstEntered.await(30, TimeUnit.SECONDS)).isTrue();

      // The group rebalances: the first member gives up on its handler after 3 s; then the second
      // leaves and every partition is the first member's again.
      var secondSubscription = (KafkaSubscription) second.subscribe(spec, d -> {});
      await().atMost(Duration.ofSeconds(60)).until(secondSubscription::isAssigned);
      assertThat(firstSubscription.handlersGivenUpOn()).as("the rebalance gave up on the busy handler").isPositive();
      secondSubscription.close();
      await().atMost(Duration.ofSeconds(60)).until(() -> firstSubscription.assignment().size() == 3);
      first.publish(numbered(topic, 2));

      onFirst.assertNothingBesideTheFirstCallThenAllInTurn();
      assertThat(onFirst.handled.getLast()).as("1 (once on this member or twice) before 2").isEqualTo(2);
      assertThat(onFirst.handled.subList(0, onFirst.handled.size() - 1)).isNotEmpty().containsOnly(1);
    } finally {
      onFirst.releaseFirst.countDown();
    }
  }

  /**
   * A close that comes while a rebalance waits for a busy handler: once the handler returns, what
   * it finished is committed, and the partition's next owner does not handle it again. (The
   * close's wakeup ends the revocation's commit, usually once its request is on its way, which
   * then lands all the same; the commit is tried again for a wakeup that comes before that.)
   */
  @Test
  void aCloseWhileARebalanceWaitsForAHandlerStillCommitsWhatTheHandlerFinished() throws Exception {
    String topic = "revoke-close-" + UUID.randomUUID();
    String group = "revoke-close-" + UUID.randomUUID();
    FirstCallHeld onFirst = new FirstCallHeld();
    List<Object> onSecond = new CopyOnWriteArrayList<>();
    SubscriptionSpec spec = SubscriptionSpec.group(group).withTopics(topic);
    try (KafkaMessageBus first = KafkaMessageBus.create(config().spoolDirectory(temp.resolve("first")).build());
        KafkaMessageBus second = KafkaMessageBus.create(config().spoolDirectory(temp.resolve("second")).build())) {
      var firstSubscription = (KafkaSubscription) first.subscribe(spec, onFirst);
      await().atMost(Duration.ofSeconds(30)).until(firstSubscription::isAssigned);
      first.publish(numbered(topic, 1));
      assertThat(onFirst.firstEntered.await(30, TimeUnit.SECONDS)).isTrue();

      var secondSubscription = (KafkaSubscription) second.subscribe(spec, d -> onSecond.add(d.message().content().get("n")));
      await().atMost(Duration.ofSeconds(60)).until(() -> revokeWaitsForAHandler(group));
      Thread closing = Thread.ofPlatform().start(firstSubscription::close);
      Thread.sleep(500); // close() wakes the consumer up first thing, then waits for the handler
      onFirst.releaseFirst.countDown();
      closing.join(Duration.ofSeconds(30));
      assertThat(closing.isAlive()).as("close() returned").isFalse();
      await().atMost(Duration.ofSeconds(60)).until(() -> secondSubscription.assignment().size() == 3);
      second.publish(numbered(topic, 2)); // the same ordering key, so the same partition, after 1

      await().atMost(Duration.ofSeconds(30)).until(() -> onSecond.contains(2));
      assertThat(onSecond).as("1 was committed when its handler returned, so not handled again").containsExactly(2);
      assertThat(onFirst.handled).containsExactly(1);
    } finally {
      onFirst.releaseFirst.countDown();
    }
  }

  /** Whether a member of the group is in a rebalance that waits for its workers' handlers. */
  private static boolean revokeWaitsForAHandler(String group) {
    return Thread.getAllStackTraces().entrySet().stream()
        .filter(thread -> thread.getKey().getName().equals("nis-consumer-" + group))
        .map(thread -> Arrays.stream(thread.getValue()).map(StackTraceElement::getMethodName).toList())
        .anyMatch(methods -> methods.contains("onPartitionsRevoked") && methods.contains("stopWorkers"));
  }

  /**
   * A subscription closed on a busy handler leaves it running; the group's next subscription on the
   * same bus (an agent restarting) waits for it before it handles the partition.
   */
  @Test
  void theNextSubscriptionOfAGroupWaitsForTheHandlerItsClosedOneLeftRunning() throws Exception {
    String topic = "restart-" + UUID.randomUUID();
    String group = "restart-" + UUID.randomUUID();
    FirstCallHeld handler = new FirstCallHeld();
    SubscriptionSpec spec = SubscriptionSpec.group(group).withTopics(topic);
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().shutdownTimeout(Duration.ofSeconds(3)).build())) {
      var closed = (KafkaSubscription) bus.subscribe(spec, handler);
      await().atMost(Duration.ofSeconds(30)).until(closed::isAssigned);
      bus.publish(numbered(topic, 1));
      assertThat(handler.firstEntered.await(30, TimeUnit.SECONDS)).isTrue();
      closed.close(); // waits 3 s for the busy handler, then leaves it running
      assertThat(closed.handlersGivenUpOn()).as("the close left the handler running").isPositive();

      var next = (KafkaSubscription) bus.subscribe(spec, handler);
      await().atMost(Duration.ofSeconds(60)).until(() -> next.assignment().size() == 3);
      bus.publish(numbered(topic, 2));

      handler.assertNothingBesideTheFirstCallThenAllInTurn();
      assertThat(handler.handled).containsExactly(1, 1, 2); // the first delivery, its redelivery, then 2
    } finally {
      handler.releaseFirst.countDown();
    }
  }

  @Test
  void aFullSpoolRefusesWithARetriableError() {
    // A bootstrap address where nothing listens: every message goes to the spool.
    KafkaBusConfig unreachable =
        KafkaBusConfig.builder("127.0.0.1:" + freePort())
            .spoolDirectory(temp.resolve("small-spool"))
            .spoolMaxBytes(4_096)
            .sendTimeout(Duration.ofSeconds(1))
            .circuitBreaker(new CircuitBreakerConfig(1, Duration.ofMinutes(5), 1))
            .shutdownTimeout(Duration.ofSeconds(2))
            .build();
    try (KafkaMessageBus bus = KafkaMessageBus.create(unreachable)) {
      List<PublishReceipt> receipts = new ArrayList<>();
      assertThatThrownBy(
              () -> {
                for (int i = 0; i < 100; i++) {
                  receipts.add(bus.publish(NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").content(Map.of("i", i)).build()));
                }
              })
          .isInstanceOf(RetriableException.class)
          .hasMessageContaining("spool is full");
      assertThat(receipts).isNotEmpty().extracting(PublishReceipt::status).containsOnly(PublishReceipt.Status.SPOOLED);
      assertThat(bus.spooledMessages()).isEqualTo(receipts.size());
    }
  }

  @Test
  void metersCountWhatHappens() {
    String topic = "metered-" + UUID.randomUUID();
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    List<Delivery> handled = new CopyOnWriteArrayList<>();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().build(), registry, InstantSource.system())) {
      var subscription =
          bus.subscribe(
              SubscriptionSpec.group("metered-" + UUID.randomUUID()).withTopics(topic),
              d -> {
                if (d.message().content().containsKey("fail")) {
                  throw new IllegalStateException("always fails");
                }
                handled.add(d);
              });
      await().atMost(Duration.ofSeconds(30)).until(((KafkaSubscription) subscription)::isAssigned);
      for (int i = 0; i < 5; i++) {
        bus.publish(NisMessage.builder(MessageType.PERFORMANCE_METRIC, "a").topic(topic).content(Map.of("i", i)).build());
      }
      bus.publish(NisMessage.builder(MessageType.PERFORMANCE_METRIC, "a").topic(topic).content(Map.of("fail", true)).build());

      await()
          .atMost(Duration.ofSeconds(30))
          .until(() -> handled.size() == 5 && registry.counter("nis.messages.dead_lettered").count() == 1);
      assertThat(registry.counter("nis.messages.sent").count()).isEqualTo(6);
      assertThat(registry.counter("nis.messages.received").count()).isEqualTo(5);
      assertThat(registry.counter("nis.messages.retried").count()).isEqualTo(1);
      assertThat(registry.timer("nis.messages.send.latency").count()).isEqualTo(6);
      assertThat(registry.timer("nis.messages.end_to_end.latency").count()).isGreaterThanOrEqualTo(5);
      assertThat(registry.find("nis.consumer.lag").gauge()).isNotNull();
      assertThat(registry.find("nis.spool.size").gauge().value()).isZero();
    }
  }

  /**
   * A temporary group is deleted on the broker when its subscription closes, and its meters go with
   * it: otherwise each agent start left an idle group whose lag grows as its topic does.
   */
  @Test
  void aTemporaryGroupIsDeletedWithItsMetersWhenItsSubscriptionCloses() throws Exception {
    String topic = "temporary-" + UUID.randomUUID();
    String temporaryGroup = "temporary-" + UUID.randomUUID();
    String durableGroup = "durable-" + UUID.randomUUID();
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    List<Delivery> handled = new CopyOnWriteArrayList<>();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().build(), registry, InstantSource.system());
        Admin admin = Admin.create(Map.of("bootstrap.servers", TestServers.kafka().bootstrapServers()))) {
      var temporary = bus.subscribe(SubscriptionSpec.group(temporaryGroup).withTopics(topic).temporary(), handled::add);
      var durable = bus.subscribe(SubscriptionSpec.group(durableGroup).withTopics(topic), handled::add);
      await().atMost(Duration.ofSeconds(30))
          .until(() -> ((KafkaSubscription) temporary).isAssigned() && ((KafkaSubscription) durable).isAssigned());
      bus.publish(NisMessage.builder(MessageType.PERFORMANCE_METRIC, "a").topic(topic).content(Map.of("i", 1)).build());
      await().atMost(Duration.ofSeconds(30)).until(() -> handled.size() == 2);
      Set<String> both = Set.of(temporaryGroup, durableGroup);
      assertThat(groupsAmong(admin, both)).containsExactlyInAnyOrderElementsOf(both);
      assertThat(registry.find("nis.consumer.lag").tag("group", temporaryGroup).meters()).hasSize(1);
      assertThat(registry.find("nis.consumer.errors").tag("group", temporaryGroup).meters()).hasSize(1);
      assertThat(registry.find("nis.consumer.handlers.overdue").tag("group", temporaryGroup).meters()).hasSize(1);

      temporary.close();
      durable.close();

      await().atMost(Duration.ofSeconds(30)).until(() -> groupsAmong(admin, both).equals(List.of(durableGroup)));
      assertThat(registry.find("nis.consumer.lag").tag("group", temporaryGroup).meters()).isEmpty();
      assertThat(registry.find("nis.consumer.errors").tag("group", temporaryGroup).meters()).isEmpty();
      assertThat(registry.find("nis.consumer.handlers.overdue").tag("group", temporaryGroup).meters()).isEmpty();
      assertThat(registry.find("nis.consumer.lag").tag("group", durableGroup).gauge()).isNotNull();
    }
  }

  /**
   * A handler that runs past the long-handler warning is counted in the group's
   * nis.consumer.handlers.overdue (and named in a warning) until it returns; the partition's later
   * records wait for it, while another partition's quick handlers run and are not counted.
   */
  @Test
  void aHandlerRunningPastTheLongHandlerWarningIsCountedUntilItReturns() throws Exception {
    String topic = "long-handler-" + UUID.randomUUID();
    String group = "long-handler-" + UUID.randomUUID();
    String stuckKey = keyOnPartition(0);
    String quickKey = keyOnPartition(1);
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    CountDownLatch release = new CountDownLatch(1);
    List<String> handled = new CopyOnWriteArrayList<>();
    KafkaBusConfig busConfig = config().longHandlerWarning(Duration.ofMillis(300)).build();
    try (KafkaMessageBus bus = KafkaMessageBus.create(busConfig, registry, InstantSource.system())) {
      var subscription = (KafkaSubscription) bus.subscribe(SubscriptionSpec.group(group).withTopics(topic), d -> {
        String text = (String) d.message().content().get("text");
        if (text.equals("stuck")) {
          release.await();
        }
        handled.add(text);
      });
      await().atMost(Duration.ofSeconds(30)).until(subscription::isAssigned);
      var overdue = registry.get("nis.consumer.handlers.overdue").tag("group", group).gauge();
      assertThat(overdue.value()).isZero();
      for (String[] keyAndText : List.of(
          new String[] {stuckKey, "stuck"}, new String[] {stuckKey, "after the stuck one"},
          new String[] {quickKey, "quick 1"}, new String[] {quickKey, "quick 2"})) {
        bus.publish(NisMessage.builder(MessageType.AGENT_COORDINATION, "a").topic(topic)
            .targetAgent(keyAndText[0]).content(Map.of("text", keyAndText[1])).build());
      }

      await().atMost(Duration.ofSeconds(30)).until(() -> overdue.value() == 1.0);
      await().atMost(Duration.ofSeconds(30)).until(() -> handled.size() == 2);
      assertThat(handled).as("the other partition goes on; the stuck one's later record waits")
          .containsExactly("quick 1", "quick 2");
      Thread.sleep(1_000); // a few more of the poll loop's checks, each past the warning again
      assertThat(overdue.value()).as("one handler is overdue, counted once").isEqualTo(1.0);

      release.countDown();
      await().atMost(Duration.ofSeconds(30)).until(() -> handled.size() == 4);
      assertThat(handled.subList(2, 4)).containsExactly("stuck", "after the stuck one");
      await().atMost(Duration.ofSeconds(10)).until(() -> overdue.value() == 0.0);
    }
  }

  /** A target agent whose normal messages go to the given partition of a topic of {@link #config()}'s 3. */
  private static String keyOnPartition(int partition) {
    for (int i = 0; ; i++) {
      String key = "agent-" + i;
      if (KafkaMessageBus.laneAwarePartition(3, key.getBytes(StandardCharsets.UTF_8), false) == partition) {
        return key;
      }
    }
  }

  /** Which of the groups the broker knows. */
  private static List<String> groupsAmong(Admin admin, Set<String> groups) throws Exception {
    return admin.listGroups().all().get(30, TimeUnit.SECONDS).stream()
        .map(listing -> listing.groupId())
        .filter(groups::contains)
        .toList();
  }

  /**
   * A worker waiting to try a failed dead-letter write again stops at once when its subscription
   * closes (the record is left for the next owner): close() waited out the whole wait, up to the
   * retry policy's longest delay.
   */
  @Test
  void closingASubscriptionEndsTheWaitBetweenDeadLetterTries() throws Exception {
    String topic = "dlt-wait-" + UUID.randomUUID();
    KafkaBusConfig busConfig = config()
        .retryPolicy(new RetryPolicy(1, Duration.ofSeconds(60), Duration.ofSeconds(60), 0))
        .replicationFactor((short) 2) // for topics the bus creates, on a broker of its own
        .shutdownTimeout(Duration.ofSeconds(30))
        .build();
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    try (KafkaMessageBus bus = KafkaMessageBus.create(busConfig, registry, InstantSource.system());
        Admin admin = Admin.create(props(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, TestServers.kafka().bootstrapServers()))) {
      // The dead-letter topic cannot be made with two replicas on one broker, which may pass (a
      // broker restarting): each dead-letter write fails, and is tried again.
      admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get(30, TimeUnit.SECONDS);
      var subscription = bus.subscribe(SubscriptionSpec.group("dlt-wait-" + UUID.randomUUID()).withTopics(topic), d -> {
        throw new IllegalStateException("always fails");
      });
      bus.publish(NisMessage.builder(MessageType.AGENT_COORDINATION, "dlt_agent")
          .topic(topic).content(Map.of("text", "x")).build());
      await().atMost(Duration.ofSeconds(30))
          .until(() -> registry.get("nis.messages.dead_letter_failures").counter().count() >= 1);

      long start = System.nanoTime();
      subscription.close();
      assertThat(Duration.ofNanos(System.nanoTime() - start))
          .as("close() does not wait out the 60 s before the next dead-letter try")
          .isLessThan(Duration.ofSeconds(10));
    }
  }

  /**
   * At close the subscriptions drain while the spool is sent: a spool that cannot empty yet (its
   * message's topic cannot be made on one broker with two replicas, which may pass) does not hold
   * them back. They used to start draining only once the spool had waited until 5 s before the end.
   */
  @Test
  void closingLetsTheSubscriptionsDrainWhileTheSpoolIsStillBeingSent() throws Exception {
    String topic = "close-drain-" + UUID.randomUUID();
    String stuckTopic = "close-stuck-" + UUID.randomUUID();
    try (Admin admin = Admin.create(props(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, TestServers.kafka().bootstrapServers()))) {
      admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get(30, TimeUnit.SECONDS);
    }
    Path spool = temp.resolve("close-drain");
    NisMessage stuck = NisMessage.builder(MessageType.SYSTEM_HEALTH, "a").topic(stuckTopic).content(Map.of()).build();
    try (DiskSpool left = DiskSpool.open(spool, 1 << 20, false)) {
      left.append(new SpooledRecord(stuckTopic, stuck.orderingKey(), MessageCodec.create().encode(stuck), Map.of(), false)
          .toBytes());
    }
    KafkaBusConfig busConfig = config()
        .spoolDirectory(spool)
        .replicationFactor((short) 2) // for topics the bus creates
        .sendTimeout(Duration.ofSeconds(60)) // the breaker stays closed: Kafka answers, and the spool is sent on
        .shutdownTimeout(Duration.ofSeconds(15))
        .build();
    KafkaMessageBus bus = KafkaMessageBus.create(busConfig);
    try {
      var subscription = (KafkaSubscription) bus.subscribe(SubscriptionSpec.group("close-drain-" + UUID.randomUUID())
          .withTopics(topic), d -> {});
      await().atMost(Duration.ofSeconds(30)).until(subscription::isAssigned);
      assertThat(bus.spooledMessages()).isEqualTo(1);

      Thread closing = Thread.ofPlatform().start(bus::close);
      await().atMost(Duration.ofSeconds(5)).until(subscription::isClosed);
      assertThat(closing.isAlive()).as("the bus still sends its spool").isTrue();
      closing.join(Duration.ofSeconds(30));
      assertThat(closing.isAlive()).isFalse();
      assertThat(bus.spooledMessages()).as("kept for the next start").isEqualTo(1);
    } finally {
      bus.close();
    }
  }

  @Test
  void theNineTopicsAndTheEventStreamAreProvisionedAtStart() throws Exception {
    try (KafkaMessageBus bus = KafkaMessageBus.create(config().build());
        var admin =
            Admin.create(
                props(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, TestServers.kafka().bootstrapServers()))) {
      await()
          .atMost(Duration.ofSeconds(30))
          .until(() -> admin.listTopics().names().get(5, TimeUnit.SECONDS).containsAll(StreamingTopics.all()));
      assertThat(bus.name()).isEqualTo("kafka");
    }
  }

  private static int freePort() {
    try (var socket = new java.net.ServerSocket(0)) {
      return socket.getLocalPort();
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
