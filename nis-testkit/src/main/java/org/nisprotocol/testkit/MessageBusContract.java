package org.nisprotocol.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;
import static org.nisprotocol.testkit.SequencedMessages.message;
import static org.nisprotocol.testkit.SequencedMessages.sequence;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nisprotocol.core.ClosedException;
import org.nisprotocol.core.DeadLetterHeaders;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.InvalidMessageException;
import org.nisprotocol.core.MessageBus;
import org.nisprotocol.core.MessagePriority;
import org.nisprotocol.core.MessageTooLargeException;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.PublishReceipt;
import org.nisprotocol.core.RetryPolicy;
import org.nisprotocol.core.StreamingTopics;
import org.nisprotocol.core.Subscription;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.core.ValidationException;

/**
 * The contract every {@link MessageBus} backend keeps (see the port's Javadoc). A backend's test
 * extends this class and builds a bus in {@link #createBus} whose retry policy is {@link
 * #FAST_RETRIES}.
 *
 * <p>Each test publishes to topics of its own, so a shared broker may hold other data.
 */
public abstract class MessageBusContract {
  /** The retry policy the bus under test must use: 3 attempts, short waits. */
  protected static final RetryPolicy FAST_RETRIES =
      new RetryPolicy(3, Duration.ofMillis(20), Duration.ofMillis(100), 0.5);

  /** How long a test waits for deliveries. */
  protected static final Duration DELIVERY_TIMEOUT = Duration.ofSeconds(30);

  protected MessageBus bus;
  private String run;

  /** A fresh bus using {@link #FAST_RETRIES}. */
  protected abstract MessageBus createBus();

  /**
   * Waits until the subscription receives messages published from now on. Buses whose
   * subscriptions start at once need nothing; a broker-backed bus waits for its partition
   * assignment.
   */
  protected void awaitReady(Subscription subscription) {}

  @BeforeEach
  void createBusUnderTest() {
    run = UUID.randomUUID().toString().substring(0, 8);
    bus = createBus();
  }

  @AfterEach
  void closeBuses() {
    bus.close();
  }

  /** A topic name no other test uses. */
  protected String freshTopic(String label) {
    return "contract-" + label + "-" + run;
  }

  private Subscription subscribe(SubscriptionSpec spec, List<Delivery> sink) {
    Subscription subscription = bus.subscribe(spec, sink::add);
    awaitReady(subscription);
    return subscription;
  }

  @Test
  void publishedMessageArrivesIntact() {
    String topic = freshTopic("intact");
    List<Delivery> received = new CopyOnWriteArrayList<>();
    subscribe(SubscriptionSpec.group("g-" + run).withTopics(topic), received);
    NisMessage sent =
        NisMessage.builder(MessageType.SIMULATION_RESULT, "scenario_simulator")
            .topic(topic)
            .priority(MessagePriority.HIGH)
            .targetAgent("coordination_agent")
            .correlationId("corr-1")
            .integrityScore(92.5)
            .auditFlags(List.of("checked"))
            .content(
                Map.of(
                    "scenario_id", "archaeological_site_001",
                    "success_probability", 0.847,
                    "recommendations", List.of("Increase team size", "Extend timeline")))
            .build();

    PublishReceipt receipt = bus.publish(sent);

    assertThat(receipt.messageId()).isEqualTo(sent.messageId());
    assertThat(receipt.topic()).isEqualTo(topic);
    await().atMost(DELIVERY_TIMEOUT).until(() -> received.size() == 1);
    Delivery delivery = received.get(0);
    assertThat(delivery.message()).isEqualTo(sent);
    assertThat(delivery.topic()).isEqualTo(topic);
    assertThat(delivery.attempt()).isEqualTo(1);
  }

  @Test
  void messageIsRoutedToTheTopicOfItsType() {
    List<Delivery> received = new CopyOnWriteArrayList<>();
    String group = "routing-" + run;
    subscribe(SubscriptionSpec.group(group).withMessageTypes(MessageType.SYSTEM_HEALTH), received);
    NisMessage health =
        NisMessage.builder(MessageType.SYSTEM_HEALTH, "demo_agent")
            .content(Map.of("status", "healthy", "run", run))
            .build();

    PublishReceipt receipt = bus.publish(health);

    assertThat(receipt.topic()).isEqualTo(StreamingTopics.SYSTEM_HEALTH);
    await()
        .atMost(DELIVERY_TIMEOUT)
        .until(() -> received.stream().anyMatch(d -> d.message().messageId().equals(health.messageId())));
  }

  @Test
  void aGroupSubscribingLaterStillGetsWhatWasPublished() {
    String topic = freshTopic("late");
    for (int i = 0; i < 10; i++) {
      bus.publish(message(topic, "k", i));
    }
    List<Delivery> received = new CopyOnWriteArrayList<>();
    bus.subscribe(SubscriptionSpec.group("late-" + run).withTopics(topic), received::add);

    await().atMost(DELIVERY_TIMEOUT).until(() -> received.size() == 10);
  }

  @Test
  void aNewGroupStartingAtEndGetsWhatIsPublishedOnceItSubscribedAndNothingOlder() {
    String topic = freshTopic("at-end");
    for (int i = 0; i < 3; i++) {
      bus.publish(message(topic, "k", i));
    }
    List<Integer> received = new CopyOnWriteArrayList<>();

    // No wait for readiness: what is published once subscribe() has returned is the group's.
    bus.subscribe(SubscriptionSpec.group("at-end-" + run).withTopics(topic).startingAtEnd(), d -> received.add(sequence(d)));
    bus.publish(message(topic, "k", 3));
    bus.publish(message(topic, "k", 4));

    await().atMost(DELIVERY_TIMEOUT).until(() -> received.contains(4));
    assertThat(received).as("one key, so anything older would have come first").containsExactly(3, 4);
  }

  @Test
  void aGroupWithAPositionKeepsItWhenItSubscribesStartingAtEnd() {
    String topic = freshTopic("at-end-known");
    String group = "known-" + run;
    takeMessage0ThenClose(SubscriptionSpec.group(group).withTopics(topic)); // its position: after message 0
    bus.publish(message(topic, "k", 1));
    bus.publish(message(topic, "k", 2));
    List<Integer> received = new CopyOnWriteArrayList<>();

    bus.subscribe(SubscriptionSpec.group(group).withTopics(topic).startingAtEnd(), d -> received.add(sequence(d)));

    await().atMost(DELIVERY_TIMEOUT).until(() -> received.contains(2));
    assertThat(received).as("from where the group stood, not from the end").containsExactly(1, 2);
  }

  @Test
  void aTemporaryGroupIsForgottenWhenItsLastSubscriptionCloses() {
    String topic = freshTopic("temporary");
    String group = "temporary-" + run;
    takeMessage0ThenClose(SubscriptionSpec.group(group).withTopics(topic).temporary());
    bus.publish(message(topic, "k", 1));
    List<Integer> received = new CopyOnWriteArrayList<>();

    Subscription again = bus.subscribe(
        SubscriptionSpec.group(group).withTopics(topic).startingAtEnd().temporary(), d -> received.add(sequence(d)));
    awaitReady(again);
    bus.publish(message(topic, "k", 2));

    await().atMost(DELIVERY_TIMEOUT).until(() -> received.contains(2));
    assertThat(received)
        .as("a group new again, so it starts at the end: message 1 came while there was no such group")
        .containsExactly(2);
  }

  /** Publishes message 0 to the spec's topic, lets a subscription of the spec take it, then closes it. */
  private void takeMessage0ThenClose(SubscriptionSpec spec) {
    bus.publish(message(spec.topics().iterator().next(), "k", 0));
    List<Delivery> taken = new CopyOnWriteArrayList<>();
    Subscription subscription = subscribe(spec, taken);
    await().atMost(DELIVERY_TIMEOUT).until(() -> taken.size() == 1);
    subscription.close();
  }

  @Test
  void aTemporaryGroupLastsWhileAnySubscriptionOfItIsOpen() {
    String topic = freshTopic("temporary-shared");
    String group = "temporary-shared-" + run;
    List<Delivery> stays = new CopyOnWriteArrayList<>();
    List<Delivery> leaves = new CopyOnWriteArrayList<>();
    Subscription staying = subscribe(SubscriptionSpec.group(group).withTopics(topic).temporary(), stays);
    Subscription leaving = subscribe(SubscriptionSpec.group(group).withTopics(topic).temporary(), leaves);

    leaving.close();
    Set<String> sent = new HashSet<>();
    for (int i = 0; i < 20; i++) {
      sent.add(bus.publish(message(topic, "key-" + i, i)).messageId());
    }

    await().atMost(DELIVERY_TIMEOUT).until(() -> ids(stays).containsAll(sent));
    assertThat(ids(leaves)).as("nothing after it closed").doesNotContainAnyElementsOf(sent);
  }

  @Test
  void everyGroupGetsEveryMessage() {
    String topic = freshTopic("groups");
    List<Delivery> first = new CopyOnWriteArrayList<>();
    List<Delivery> second = new CopyOnWriteArrayList<>();
    subscribe(SubscriptionSpec.group("first-" + run).withTopics(topic), first);
    subscribe(SubscriptionSpec.group("second-" + run).withTopics(topic), second);

    Set<String> sent = new HashSet<>();
    for (int i = 0; i < 100; i++) {
      sent.add(bus.publish(message(topic, "key-" + (i % 7), i)).messageId());
    }

    await().atMost(DELIVERY_TIMEOUT).until(() -> ids(first).containsAll(sent) && ids(second).containsAll(sent));
    assertThat(ids(first)).isEqualTo(sent);
    assertThat(ids(second)).isEqualTo(sent);
  }

  @Test
  void membersOfAGroupShareItsMessages() {
    String topic = freshTopic("share");
    String group = "share-" + run;
    Map<String, Integer> deliveriesPerMessage = new ConcurrentHashMap<>();
    List<Delivery> memberA = new CopyOnWriteArrayList<>();
    List<Delivery> memberB = new CopyOnWriteArrayList<>();
    Subscription a =
        bus.subscribe(
            SubscriptionSpec.group(group).withTopics(topic),
            d -> {
              memberA.add(d);
              deliveriesPerMessage.merge(d.message().messageId(), 1, Integer::sum);
            });
    Subscription b =
        bus.subscribe(
            SubscriptionSpec.group(group).withTopics(topic),
            d -> {
              memberB.add(d);
              deliveriesPerMessage.merge(d.message().messageId(), 1, Integer::sum);
            });
    awaitReady(a);
    awaitReady(b);

    Set<String> sent = new HashSet<>();
    for (int i = 0; i < 200; i++) {
      sent.add(bus.publish(message(topic, "agent-" + i, i)).messageId());
    }

    await().atMost(DELIVERY_TIMEOUT).until(() -> deliveriesPerMessage.keySet().containsAll(sent));
    assertThat(deliveriesPerMessage.keySet()).isEqualTo(sent);
    assertThat(deliveriesPerMessage.values()).as("no message goes to both members").containsOnly(1);
    assertThat(memberA.size() + memberB.size()).isEqualTo(sent.size());
  }

  @Test
  void messagesWithTheSameKeyArriveInPublishOrder() {
    String topic = freshTopic("order");
    Map<String, List<Integer>> sequencesByKey = new ConcurrentHashMap<>();
    AtomicInteger count = new AtomicInteger();
    Subscription subscription =
        bus.subscribe(
            SubscriptionSpec.group("order-" + run).withTopics(topic),
            d -> {
              String key = d.message().orderingKey();
              sequencesByKey
                  .computeIfAbsent(key, k -> Collections.synchronizedList(new ArrayList<>()))
                  .add(sequence(d));
              count.incrementAndGet();
            });
    awaitReady(subscription);

    int perKey = 100;
    List<String> keys = List.of("agent-a", "agent-b", "agent-c", "agent-d", "agent-e");
    for (int i = 0; i < perKey; i++) {
      for (String key : keys) {
        bus.publish(message(topic, key, i));
      }
    }

    await().atMost(DELIVERY_TIMEOUT).until(() -> count.get() >= perKey * keys.size());
    List<Integer> expected = new ArrayList<>();
    for (int i = 0; i < perKey; i++) {
      expected.add(i);
    }
    for (String key : keys) {
      assertThat(sequencesByKey.get(key)).as("order of key %s", key).isEqualTo(expected);
    }
  }

  @Test
  void aTypeFilterDeliversOnlyThoseTypes() {
    String topic = freshTopic("types");
    List<Delivery> received = new CopyOnWriteArrayList<>();
    subscribe(
        SubscriptionSpec.group("types-" + run).withTopics(topic).withMessageTypes(MessageType.AUDIT_ALERT),
        received);

    NisMessage wanted = NisMessage.builder(MessageType.AUDIT_ALERT, "health_monitor").topic(topic).build();
    bus.publish(NisMessage.builder(MessageType.PERFORMANCE_METRIC, "agent").topic(topic).build());
    bus.publish(wanted);
    NisMessage marker = NisMessage.builder(MessageType.AUDIT_ALERT, "health_monitor").topic(topic).build();
    bus.publish(NisMessage.builder(MessageType.MEMORY_OPERATION, "agent").topic(topic).build());
    bus.publish(marker);

    await().atMost(DELIVERY_TIMEOUT).until(() -> received.size() >= 2);
    assertThat(ids(received)).containsExactlyInAnyOrder(wanted.messageId(), marker.messageId());
  }

  @Test
  void aFailingHandlerGetsTheMessageAgainUntilItSucceeds() {
    String topic = freshTopic("retry");
    List<Delivery> attempts = new CopyOnWriteArrayList<>();
    List<Delivery> handled = new CopyOnWriteArrayList<>();
    Subscription subscription =
        bus.subscribe(
            SubscriptionSpec.group("retry-" + run).withTopics(topic),
            d -> {
              attempts.add(d);
              if (sequence(d) == 0 && d.attempt() < 3) {
                throw new IllegalStateException("transient failure " + d.attempt());
              }
              handled.add(d);
            });
    awaitReady(subscription);

    bus.publish(message(topic, "k", 0));
    bus.publish(message(topic, "k", 1));

    await().atMost(DELIVERY_TIMEOUT).until(() -> handled.size() == 2);
    assertThat(attempts).extracting(Delivery::attempt).containsExactly(1, 2, 3, 1);
    assertThat(handled)
        .extracting(d -> sequence(d))
        .containsExactly(0, 1);
  }

  /**
   * A handler that leaves its thread interrupted (it caught an InterruptedException and set the
   * flag again, as one should) or throws InterruptedException: the interrupt was its own, not a
   * stop of the bus, so the thread that runs it goes on with the next messages; a thrown one is a
   * failure, tried again.
   */
  @Test
  void aHandlerThatLeavesItsThreadInterruptedDoesNotStopDelivery() {
    String topic = freshTopic("interrupted");
    List<Delivery> attempts = new CopyOnWriteArrayList<>();
    List<Boolean> interruptedAtStart = new CopyOnWriteArrayList<>();
    Subscription subscription =
        bus.subscribe(
            SubscriptionSpec.group("interrupted-" + run).withTopics(topic),
            d -> {
              interruptedAtStart.add(Thread.currentThread().isInterrupted());
              attempts.add(d);
              if (sequence(d) == 0) {
                Thread.currentThread().interrupt();
              }
              if (sequence(d) == 1 && d.attempt() == 1) {
                throw new InterruptedException("the handler's own wait was cut short");
              }
            });
    awaitReady(subscription);

    for (int i = 0; i < 3; i++) {
      bus.publish(message(topic, "k", i));
    }

    await().atMost(DELIVERY_TIMEOUT).until(() -> attempts.size() >= 4);
    assertThat(attempts)
        .extracting(d -> sequence(d) + "#" + d.attempt())
        .containsExactly("0#1", "1#1", "1#2", "2#1");
    assertThat(interruptedAtStart).as("the interrupt reached a later call").containsOnly(false);
  }

  /** An exception, or an Error other than running out of memory (which it once stopped the partition's delivery for good). */
  @ParameterizedTest(name = "the handler throws {0}")
  @ValueSource(strings = {"java.lang.IllegalArgumentException", "java.util.ServiceConfigurationError"})
  void aMessageItsHandlerAlwaysRejectsIsDeadLetteredAndLaterOnesFlow(String thrown) {
    String topic = freshTopic("dlt");
    String group = "dlt-" + run;
    List<Delivery> handled = new CopyOnWriteArrayList<>();
    Subscription subscription =
        bus.subscribe(
            SubscriptionSpec.group(group).withTopics(topic),
            d -> {
              if (sequence(d) == 0) {
                if (thrown.endsWith("Error")) {
                  throw new java.util.ServiceConfigurationError("cannot handle sequence 0");
                }
                throw new IllegalArgumentException("cannot handle sequence 0");
              }
              handled.add(d);
            });
    awaitReady(subscription);
    List<Delivery> deadLetters = new CopyOnWriteArrayList<>();
    subscribe(
        SubscriptionSpec.group("dlt-reader-" + run).withTopics(StreamingTopics.deadLetterTopicOf(topic)),
        deadLetters);

    NisMessage poison = message(topic, "k", 0);
    bus.publish(poison);
    bus.publish(message(topic, "k", 1));

    await().atMost(DELIVERY_TIMEOUT).until(() -> handled.size() == 1 && deadLetters.size() == 1);
    Delivery deadLetter = deadLetters.get(0);
    assertThat(deadLetter.message()).isEqualTo(poison);
    assertThat(deadLetter.topic()).isEqualTo(topic + ".dlt");
    assertThat(deadLetter.headers())
        .containsEntry(DeadLetterHeaders.ATTEMPTS, "3")
        .containsEntry(DeadLetterHeaders.ORIGINAL_TOPIC, topic)
        .containsEntry(DeadLetterHeaders.GROUP, group)
        .containsKey(DeadLetterHeaders.ORIGINAL_OFFSET);
    assertThat(deadLetter.headers().get(DeadLetterHeaders.ERROR))
        .contains(thrown)
        .contains("cannot handle sequence 0");
  }

  @Test
  void aClosedSubscriptionGetsNothingMore() {
    String topic = freshTopic("unsub");
    String group = "unsub-" + run;
    List<Delivery> stopped = new CopyOnWriteArrayList<>();
    Subscription leaving = subscribe(SubscriptionSpec.group(group).withTopics(topic), stopped);
    bus.publish(message(topic, "k", 0));
    await().atMost(DELIVERY_TIMEOUT).until(() -> stopped.size() == 1);

    leaving.close();
    List<Delivery> staying = new CopyOnWriteArrayList<>();
    subscribe(SubscriptionSpec.group(group).withTopics(topic), staying);
    bus.publish(message(topic, "k", 1));

    await().atMost(DELIVERY_TIMEOUT).until(() -> staying.size() == 1);
    assertThat(stopped).hasSize(1);
  }

  @Test
  void closeDeliversEverythingAcceptedFirst() {
    String topic = freshTopic("close");
    Set<String> delivered = ConcurrentHashMap.newKeySet();
    Subscription subscription =
        bus.subscribe(
            SubscriptionSpec.group("close-" + run).withTopics(topic),
            d -> {
              Thread.sleep(1);
              delivered.add(d.message().messageId());
            });
    awaitReady(subscription);
    Set<String> sent = new HashSet<>();
    for (int i = 0; i < 300; i++) {
      sent.add(bus.publish(message(topic, "agent-" + (i % 3), i)).messageId());
    }

    bus.close();

    assertThat(delivered).isEqualTo(sent);
  }

  @Test
  void handlersMayStillPublishWhileTheBusCloses() {
    // A consume-process-publish handler (an agent answering a request) runs on during close(),
    // which delivers what was accepted: its publish must not be refused, or the message it
    // handles fails for no fault of its own and is retried until it is dead-lettered.
    String requests = freshTopic("relay-in");
    String answers = freshTopic("relay-out");
    List<Throwable> refused = new CopyOnWriteArrayList<>();
    Set<Integer> handled = ConcurrentHashMap.newKeySet();
    Subscription relay = bus.subscribe(
        SubscriptionSpec.group("relay-" + run).withTopics(requests),
        d -> {
          Thread.sleep(2);
          try {
            bus.publish(message(answers, "k", sequence(d)));
          } catch (RuntimeException e) {
            refused.add(e);
            throw e;
          }
          handled.add(sequence(d));
        });
    awaitReady(relay);
    Set<Integer> answered = ConcurrentHashMap.newKeySet();
    String answerGroup = "answers-" + run;
    awaitReady(bus.subscribe(SubscriptionSpec.group(answerGroup).withTopics(answers), d -> answered.add(sequence(d))));
    Set<Integer> sent = new HashSet<>();
    for (int i = 0; i < 100; i++) {
      bus.publish(message(requests, "agent-" + (i % 3), i));
      sent.add(i);
    }

    bus.close();

    assertThat(refused).as("publishes refused to handlers during close()").isEmpty();
    assertThat(handled).as("requests handled before close() returned").isEqualTo(sent);
    // An answer published late in close() may be left on a broker for the group's next member.
    MessageBus next = createBus();
    try {
      next.subscribe(SubscriptionSpec.group(answerGroup).withTopics(answers), d -> answered.add(sequence(d)));
      await().atMost(DELIVERY_TIMEOUT).until(() -> answered.containsAll(sent));
    } finally {
      next.close();
    }
  }

  /** Starts a thread that publishes the message once told to, completing the outcome with null or the error. */
  private Thread publishingThread(CountDownLatch go, NisMessage message, CompletableFuture<Throwable> outcome) {
    return Thread.ofPlatform().daemon().start(() -> {
      try {
        go.await();
        bus.publish(message);
        outcome.complete(null);
      } catch (Throwable e) {
        outcome.complete(e);
      }
    });
  }

  @Test
  void onlyHandlersStillRunningMayPublishWhileTheBusCloses() throws Exception {
    // A thread a handler started is the handler's while the handler runs (an agent's worker
    // publishes its answer), and only then (a pool thread it happened to start must not publish
    // through close() for good); other threads not at all.
    String spawning = freshTopic("spawn");
    String slow = freshTopic("slow");
    String elsewhere = freshTopic("elsewhere");
    CountDownLatch spawned = new CountDownLatch(1);
    CountDownLatch publishNow = new CountDownLatch(1);
    CompletableFuture<Throwable> leftBehind = new CompletableFuture<>();
    Subscription spawner = bus.subscribe(SubscriptionSpec.group("spawner-" + run).withTopics(spawning), d -> {
      publishingThread(publishNow, message(elsewhere, "k", 1), leftBehind);
      spawned.countDown();
    });
    CountDownLatch slowEntered = new CountDownLatch(1);
    CountDownLatch releaseSlow = new CountDownLatch(1);
    CompletableFuture<Throwable> workingForIt = new CompletableFuture<>();
    Subscription busy = bus.subscribe(SubscriptionSpec.group("slow-" + run).withTopics(slow), d -> {
      Thread worker = publishingThread(publishNow, message(elsewhere, "k", 2), workingForIt);
      slowEntered.countDown();
      worker.join(); // the handler waits for its worker, as an agent's does
      releaseSlow.await();
    });
    awaitReady(spawner);
    awaitReady(busy);
    bus.publish(message(spawning, "k", 0));
    assertThat(spawned.await(DELIVERY_TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("the handler started its thread").isTrue();
    bus.publish(message(slow, "k", 0));
    assertThat(slowEntered.await(DELIVERY_TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("a handler keeps close() busy").isTrue();

    Thread closing = Thread.ofPlatform().start(bus::close);
    try {
      await().atMost(DELIVERY_TIMEOUT).until(() -> {
        try {
          bus.publish(message(elsewhere, "k", 0));
          return false;
        } catch (ClosedException e) {
          return true; // close() has begun: this thread, no handler's, is refused
        }
      });
      publishNow.countDown();
      assertThat(workingForIt.get(DELIVERY_TIMEOUT.toSeconds(), TimeUnit.SECONDS))
          .as("the thread of a handler still running, publishing while close() delivers")
          .isNull();
      assertThat(leftBehind.get(DELIVERY_TIMEOUT.toSeconds(), TimeUnit.SECONDS))
          .as("the thread of a handler that has returned, publishing while close() delivers")
          .isInstanceOf(ClosedException.class);
      assertThat(closing.isAlive()).as("close() still waits for the busy handler").isTrue();
    } finally {
      releaseSlow.countDown();
      assertThat(closing.join(DELIVERY_TIMEOUT)).as("close() returned").isTrue();
    }
  }

  @Test
  void anInterruptedCloseStillLetsTheHandlerInProgressFinish() throws Exception {
    // A pool shut down with shutdownNow() interrupts the thread that closes the bus.
    String topic = freshTopic("interrupted-close");
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    List<Integer> finished = new CopyOnWriteArrayList<>();
    bus.subscribe(
        SubscriptionSpec.group("interrupted-" + run).withTopics(topic),
        d -> {
          entered.countDown();
          release.await();
          finished.add(sequence(d));
        });
    bus.publish(message(topic, "k", 0));
    assertThat(entered.await(DELIVERY_TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("the handler is busy").isTrue();

    InterruptedClose.Outcome<List<Integer>> closed =
        InterruptedClose.run(bus::close, () -> List.copyOf(finished), release, DELIVERY_TIMEOUT);

    assertThat(closed.seenWhenClosed()).as("the handler finished before close() returned").containsExactly(0);
    assertThat(closed.interruptKept()).as("the caller keeps its interrupt").isTrue();
  }

  @Test
  void aHandlerMayCloseTheBus() throws Exception {
    // An agent told to stop closes the bus from its handler: close() must not wait for that
    // handler to return (it would wait out the whole shutdown timeout), and what was accepted
    // before is still delivered.
    String topic = freshTopic("close-from-handler");
    for (int i = 0; i < 10; i++) {
      bus.publish(message(topic, "k", i));
    }
    List<Integer> delivered = new CopyOnWriteArrayList<>();
    CompletableFuture<Duration> closeTook = new CompletableFuture<>();
    StallWatch stalls = StallWatch.shared(); // pauses of this JVM are not close()'s time
    bus.subscribe(
        SubscriptionSpec.group("closer-" + run).withTopics(topic),
        d -> {
          int sequence = sequence(d);
          if (sequence == 0) {
            closeTook.complete(stalls.unstalledTimeOf(bus::close));
          }
          delivered.add(sequence);
        });

    assertThat(closeTook.get(DELIVERY_TIMEOUT.toSeconds(), TimeUnit.SECONDS))
        .as("close() called from a handler")
        .isLessThan(Duration.ofSeconds(5));
    assertThatThrownBy(() -> bus.publish(message(topic, "k", 10))).isInstanceOf(ClosedException.class);

    bus.close(); // from here: waits until the close the handler began has ended
    assertThat(delivered).containsExactly(0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
  }

  @Test
  void aHandlerMayCloseItsOwnSubscription() throws Exception {
    // close() waits for the delivery in progress, which here is its caller's.
    String topic = freshTopic("unsub-in-handler");
    String group = "leaving-" + run;
    for (int i = 0; i < 5; i++) {
      bus.publish(message(topic, "k", i));
    }
    AtomicReference<Subscription> self = new AtomicReference<>();
    CountDownLatch subscribed = new CountDownLatch(1);
    List<Integer> leaving = new CopyOnWriteArrayList<>();
    CompletableFuture<Duration> closeTook = new CompletableFuture<>();
    StallWatch stalls = StallWatch.shared(); // pauses of this JVM are not close()'s time
    self.set(bus.subscribe(
        SubscriptionSpec.group(group).withTopics(topic),
        d -> {
          subscribed.await();
          leaving.add(sequence(d));
          closeTook.complete(stalls.unstalledTimeOf(self.get()::close));
        }));
    subscribed.countDown();

    assertThat(closeTook.get(DELIVERY_TIMEOUT.toSeconds(), TimeUnit.SECONDS))
        .as("close() called from its own handler")
        .isLessThan(Duration.ofSeconds(5));
    List<Integer> staying = new CopyOnWriteArrayList<>();
    bus.subscribe(
        SubscriptionSpec.group(group).withTopics(topic),
        d -> staying.add(sequence(d)));
    await().atMost(DELIVERY_TIMEOUT).until(() -> staying.size() >= 4);
    assertThat(leaving).as("the delivery that closed it was the last").containsExactly(0);
    assertThat(staying).containsExactly(1, 2, 3, 4);
  }

  @Test
  void aMessageOverTheDefaultLimitOf1MiBIsRefusedAndNothingIsDelivered() {
    // The same limit on every backend: what a laptop accepts, a cluster accepts too.
    String topic = freshTopic("too-large");
    List<Delivery> received = new CopyOnWriteArrayList<>();
    subscribe(SubscriptionSpec.group("large-" + run).withTopics(topic), received);
    NisMessage tooLarge = NisMessage.builder(MessageType.SYSTEM_HEALTH, "a")
        .topic(topic)
        .content(Map.of("blob", "x".repeat(1024 * 1024)))
        .build();

    assertThatThrownBy(() -> bus.publish(tooLarge))
        .isInstanceOf(MessageTooLargeException.class)
        .hasMessageContaining(tooLarge.messageId())
        .hasMessageContaining("at most 1048576");
    bus.publish(message(topic, "k", 1));
    await().atMost(DELIVERY_TIMEOUT).until(() -> !received.isEmpty());
    assertThat(received).extracting(SequencedMessages::sequence).containsExactly(1);
  }

  @Test
  void aMessageWhoseTextUtf8CannotCarryIsRefusedAndNothingIsDelivered() {
    String topic = freshTopic("lone-surrogate");
    List<Delivery> received = new CopyOnWriteArrayList<>();
    subscribe(SubscriptionSpec.group("lone-" + run).withTopics(topic), received);
    NisMessage halfAPair = NisMessage.builder(MessageType.SYSTEM_HEALTH, "a")
        .topic(topic)
        .content(Map.of("text", "half of a pair: \uD83D"))
        .build();

    assertThatThrownBy(() -> bus.publish(halfAPair))
        .isInstanceOf(InvalidMessageException.class)
        .hasMessageContaining("lone surrogate \\ud83d");
    assertThat(bus.publishAsync(halfAPair, Map.of()))
        .failsWithin(Duration.ofSeconds(5))
        .withThrowableOfType(ExecutionException.class)
        .withCauseInstanceOf(InvalidMessageException.class);
    // a header is text on the wire too: Kafka would carry '?' in its place
    assertThatThrownBy(() -> bus.publish(message(topic, "k", 0), Map.of("note", "cut \uDE00")))
        .isInstanceOf(InvalidMessageException.class)
        .hasMessageContaining("header 'note'")
        .hasMessageContaining("lone surrogate \\ude00");
    assertThatThrownBy(() -> bus.publish(message(topic, "k", 0), Map.of("n\uD83D", "v")))
        .isInstanceOf(InvalidMessageException.class)
        .hasMessageContaining("header name");
    assertThat(bus.publishAsync(message(topic, "k", 0), Map.of("note", "\uD83D")))
        .failsWithin(Duration.ofSeconds(5))
        .withThrowableOfType(ExecutionException.class)
        .withCauseInstanceOf(InvalidMessageException.class);
    bus.publish(message(topic, "k", 1), Map.of("note", "a pair \uD83D\uDE00 is fine"));
    await().atMost(DELIVERY_TIMEOUT).until(() -> !received.isEmpty());
    assertThat(received).extracting(SequencedMessages::sequence).containsExactly(1);
    assertThat(received.get(0).headers()).containsEntry("note", "a pair \uD83D\uDE00 is fine");
  }

  @Test
  void publishAfterCloseIsRefused() {
    bus.close();

    assertThatThrownBy(() -> bus.publish(message(freshTopic("closed"), "k", 0)))
        .isInstanceOf(ClosedException.class)
        .hasMessageContaining("closed");
  }

  @Test
  void aSubscriptionWithNothingToReadIsRefused() {
    assertThatThrownBy(() -> bus.subscribe(SubscriptionSpec.group("nothing"), d -> {}))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("at least one topic or message type");
    assertThatThrownBy(() -> bus.subscribe(SubscriptionSpec.group("bad").withTopics("no spaces allowed"), d -> {}))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("no spaces allowed");
  }

  private static Set<String> ids(List<Delivery> deliveries) {
    Set<String> ids = new HashSet<>();
    deliveries.forEach(d -> ids.add(d.message().messageId()));
    return ids;
  }
}
