package org.nisprotocol.embedded;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.MessageBusFullException;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.RetryPolicy;
import org.nisprotocol.core.SubscriptionSpec;

/** What the in-process bus does beyond the shared contract: bounded memory, backpressure, no threads left behind. */
class InMemoryMessageBusTest {

  private static NisMessage message(int sequence) {
    return NisMessage.builder(MessageType.AGENT_COORDINATION, "agent")
        .topic("bounded")
        .content(Map.of("sequence", sequence))
        .build();
  }

  @Test
  void theDispatchersOfATemporaryGroupEndWhenItsSubscriptionCloses() throws Exception {
    try (InMemoryMessageBus bus = InMemoryMessageBus.create(InMemoryMessageBusConfig.defaults().withPartitions(1))) {
      List<Thread> dispatchers = new CopyOnWriteArrayList<>();
      var temporary = bus.subscribe(
          SubscriptionSpec.group("replies-of-one").withTopics("bounded").temporary(),
          d -> dispatchers.add(Thread.currentThread()));
      var durable = bus.subscribe(
          SubscriptionSpec.group("stays").withTopics("bounded"), d -> dispatchers.add(Thread.currentThread()));
      bus.publish(message(0));
      await().atMost(Duration.ofSeconds(10)).until(() -> dispatchers.size() == 2);
      Thread ofTemporary = dispatchers.stream().filter(t -> t.getName().contains("replies-of-one")).findFirst().orElseThrow();
      Thread ofDurable = dispatchers.stream().filter(t -> t.getName().contains("stays")).findFirst().orElseThrow();

      temporary.close();
      durable.close();

      assertThat(ofTemporary.join(Duration.ofSeconds(5))).as("the temporary group's dispatcher ended").isTrue();
      assertThat(ofDurable.isAlive()).as("a durable group keeps its dispatcher (and cursor) for its next subscription").isTrue();
    }
  }

  @Test
  void closingTheBusWaitsForAHandlerOfATemporaryGroupAlreadyForgotten() throws Exception {
    InMemoryMessageBus bus = InMemoryMessageBus.create();
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicBoolean returned = new AtomicBoolean();
    var subscription = bus.subscribe(
        SubscriptionSpec.group("forgotten").withTopics("bounded").temporary(),
        d -> {
          entered.countDown();
          release.await(20, TimeUnit.SECONDS);
          returned.set(true);
        });
    bus.publish(message(0));
    assertThat(entered.await(10, TimeUnit.SECONDS)).isTrue();
    subscription.close(); // the group is forgotten while its handler runs
    CompletableFuture<Boolean> handlerReturnedBeforeClose = CompletableFuture.supplyAsync(() -> {
      bus.close();
      return returned.get();
    });

    await().during(Duration.ofMillis(500)).atMost(Duration.ofSeconds(5))
        .until(() -> !handlerReturnedBeforeClose.isDone()); // close() waits for the handler
    release.countDown();

    assertThat(handlerReturnedBeforeClose.get(20, TimeUnit.SECONDS)).isTrue();
  }

  @Test
  void aFullBusMakesPublishWaitThenFailWithoutLosingWhatItAccepted() throws Exception {
    try (InMemoryMessageBus bus =
        InMemoryMessageBus.create(
            InMemoryMessageBusConfig.defaults()
                .withCapacity(10)
                .withPublishTimeout(Duration.ofMillis(200)))) {
      for (int i = 0; i < 10; i++) {
        bus.publish(message(i));
      }
      long start = System.nanoTime();

      assertThatThrownBy(() -> bus.publish(message(10)))
          .isInstanceOf(MessageBusFullException.class)
          .hasMessageContaining("10 accepted messages");
      assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThanOrEqualTo(Duration.ofMillis(200));

      List<Delivery> received = new CopyOnWriteArrayList<>();
      bus.subscribe(SubscriptionSpec.group("late").withTopics("bounded"), received::add);
      await().atMost(Duration.ofSeconds(10)).until(() -> received.size() == 10);
      assertThat(received)
          .extracting(d -> d.message().content().get("sequence"))
          .containsExactlyInAnyOrder(0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
      await().atMost(Duration.ofSeconds(10)).until(() -> bus.pending() == 0);
      bus.publish(message(11));
    }
  }

  @Test
  void aWaitingPublishProceedsAsSoonAsAConsumerMakesRoom() throws Exception {
    try (InMemoryMessageBus bus =
        InMemoryMessageBus.create(
            InMemoryMessageBusConfig.defaults()
                .withCapacity(2)
                .withPartitions(1)
                .withPublishTimeout(Duration.ofSeconds(20)))) {
      CountDownLatch release = new CountDownLatch(1);
      List<Delivery> received = new CopyOnWriteArrayList<>();
      bus.subscribe(
          SubscriptionSpec.group("slow").withTopics("bounded"),
          d -> {
            release.await(20, TimeUnit.SECONDS);
            received.add(d);
          });
      bus.publish(message(0));
      bus.publish(message(1));

      Thread publisher = Thread.ofVirtual().start(() -> bus.publish(message(2)));
      Thread.sleep(100);
      assertThat(publisher.isAlive()).as("publish waits while the bus is full").isTrue();
      release.countDown();
      publisher.join(Duration.ofSeconds(10));

      assertThat(publisher.isAlive()).isFalse();
      await().atMost(Duration.ofSeconds(10)).until(() -> received.size() == 3);
    }
  }

  @Test
  void aGroupWithoutSubscriberKeepsWhatItHasNotTakenAndDeliveredMessagesAreReleased() {
    try (InMemoryMessageBus bus = InMemoryMessageBus.create()) {
      List<Delivery> first = new CopyOnWriteArrayList<>();
      List<Delivery> second = new CopyOnWriteArrayList<>();
      bus.subscribe(SubscriptionSpec.group("a").withTopics("bounded"), first::add);
      bus.subscribe(SubscriptionSpec.group("b").withTopics("bounded"), second::add).close(); // an agent restarting
      for (int i = 0; i < 500; i++) {
        bus.publish(message(i));
      }
      await().atMost(Duration.ofSeconds(10)).until(() -> first.size() == 500);
      assertThat(bus.pending()).as("held for b").isEqualTo(500);

      bus.subscribe(SubscriptionSpec.group("b").withTopics("bounded"), second::add);

      await().atMost(Duration.ofSeconds(10)).until(() -> second.size() == 500 && bus.pending() == 0);
    }
  }

  @Test
  void whenTheBusIsFullWhatOnlyGroupsWithoutSubscriberHoldIsReleased() {
    try (InMemoryMessageBus bus = InMemoryMessageBus.create(
        InMemoryMessageBusConfig.defaults().withCapacity(10).withPartitions(1).withPublishTimeout(Duration.ofMillis(200)))) {
      List<Delivery> first = new CopyOnWriteArrayList<>();
      List<Delivery> second = new CopyOnWriteArrayList<>();
      bus.subscribe(SubscriptionSpec.group("a").withTopics("bounded"), first::add);
      bus.subscribe(SubscriptionSpec.group("b").withTopics("bounded"), second::add).close();
      for (int i = 0; i < 10; i++) {
        bus.publish(message(i));
      }
      await().atMost(Duration.ofSeconds(10)).until(() -> bus.taken("a", "bounded") == 10);

      bus.publish(message(10)); // full: what only b held makes room

      bus.subscribe(SubscriptionSpec.group("b").withTopics("bounded"), second::add);
      await().atMost(Duration.ofSeconds(10)).until(() -> first.size() == 11 && !second.isEmpty());
      assertThat(second).extracting(d -> d.message().content().get("sequence")).containsExactly(10);
    }
  }

  @Test
  void aPublishWaitingForRoomGetsItOnceTheSubscribedGroupsMoveOn() throws Exception {
    try (InMemoryMessageBus bus = InMemoryMessageBus.create(
        InMemoryMessageBusConfig.defaults().withCapacity(10).withPartitions(1).withPublishTimeout(Duration.ofSeconds(20)))) {
      CountDownLatch release = new CountDownLatch(1);
      List<Delivery> first = new CopyOnWriteArrayList<>();
      bus.subscribe(SubscriptionSpec.group("b").withTopics("bounded"), d -> {}).close();
      bus.subscribe(SubscriptionSpec.group("a").withTopics("bounded"), d -> {
        release.await(20, TimeUnit.SECONDS);
        first.add(d);
      });
      for (int i = 0; i < 10; i++) {
        bus.publish(message(i));
      }
      CompletableFuture<Void> eleventh = CompletableFuture.runAsync(() -> bus.publish(message(10)));
      await().during(Duration.ofMillis(300)).atMost(Duration.ofSeconds(5)).until(() -> !eleventh.isDone());

      release.countDown(); // a takes all ten: what b alone holds can go

      eleventh.get(15, TimeUnit.SECONDS);
      await().atMost(Duration.ofSeconds(10)).until(() -> first.size() == 11);
    }
  }

  @Test
  void withNoPublishTimeoutAPublishStillTakesTheRoomTheReleaseMakes() {
    try (InMemoryMessageBus bus = InMemoryMessageBus.create(
        InMemoryMessageBusConfig.defaults().withCapacity(2).withPartitions(1).withPublishTimeout(Duration.ZERO))) {
      bus.subscribe(SubscriptionSpec.group("b").withTopics("bounded"), d -> {}).close();
      bus.subscribe(SubscriptionSpec.group("a").withTopics("bounded"), d -> {});
      bus.publish(message(0));
      bus.publish(message(1));
      await().atMost(Duration.ofSeconds(10)).until(() -> bus.taken("a", "bounded") == 2);

      bus.publish(message(2)); // full until the release: refused before it could take the room
    }
  }

  @Test
  void closeDoesNotWaitOutTheRetryWaitOfAGroupWhoseMemberLeft() throws Exception {
    InMemoryMessageBus bus = InMemoryMessageBus.create(InMemoryMessageBusConfig.defaults().withPartitions(1)
        .withRetryPolicy(new RetryPolicy(3, Duration.ofSeconds(20), Duration.ofSeconds(20), 0)));
    AtomicBoolean failed = new AtomicBoolean();
    var failing = bus.subscribe(SubscriptionSpec.group("lasting").withTopics("bounded"), d -> {
      failed.set(true);
      throw new IllegalStateException("not now");
    });
    bus.publish(message(0));
    await().atMost(Duration.ofSeconds(10)).until(failed::get); // now in its 20 s wait
    failing.close();

    long start = System.nanoTime();
    bus.close();

    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
  }

  /**
   * Handlers that answer what they handle, in a full bus: their answers take the reserve instead of
   * waiting for room that only their own return frees (waiting, they failed, and the messages they
   * handled were dead-lettered).
   */
  @Test
  void handlersAnsweringInAFullBusAreNotFailedByItsBackpressure() throws Exception {
    int capacity = 10;
    try (InMemoryMessageBus bus = InMemoryMessageBus.create(InMemoryMessageBusConfig.defaults()
        .withCapacity(capacity).withPartitions(2).withPublishTimeout(Duration.ofSeconds(1))
        .withRetryPolicy(new RetryPolicy(2, Duration.ofMillis(10), Duration.ofMillis(10), 0)))) {
      CountDownLatch allPublished = new CountDownLatch(1);
      List<Throwable> failures = new CopyOnWriteArrayList<>();
      List<Object> answers = new CopyOnWriteArrayList<>();
      List<Delivery> deadLetters = new CopyOnWriteArrayList<>();
      bus.subscribe(SubscriptionSpec.group("answerer").withTopics("bounded"), d -> {
        allPublished.await();
        try {
          bus.publish(NisMessage.builder(MessageType.AGENT_COORDINATION, "answerer")
              .topic("answers").content(Map.of("to", d.message().content().get("sequence"))).build());
        } catch (RuntimeException e) {
          failures.add(e);
          throw e;
        }
      });
      bus.subscribe(SubscriptionSpec.group("asker").withTopics("answers"), d -> answers.add(d.message().content().get("to")));
      bus.subscribe(SubscriptionSpec.group("letters").withTopics("bounded.dlt"), deadLetters::add);
      List<Thread> handlerThreads = new CopyOnWriteArrayList<>();
      bus.subscribe(SubscriptionSpec.group("threads").withTopics("bounded"), d -> handlerThreads.add(Thread.currentThread()));
      for (int i = 0; i < capacity; i++) {
        // Keys of their own: both partitions' handlers answer at once, and take turns at the reserve.
        bus.publish(NisMessage.builder(MessageType.AGENT_COORDINATION, "agent").targetAgent("agent-" + i)
            .topic("bounded").content(Map.of("sequence", i)).build());
      }
      assertThat(bus.pending()).as("the bus is full").isEqualTo(capacity);
      await().atMost(Duration.ofSeconds(10)).until(() -> handlerThreads.size() == capacity);
      assertThat(handlerThreads.stream().distinct().count()).as("both partitions have messages").isEqualTo(2);
      allPublished.countDown();

      await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(answers).hasSize(capacity));
      assertThat(answers).containsExactlyInAnyOrderElementsOf(IntStream.range(0, capacity).boxed().toList());
      assertThat(failures).isEmpty();
      assertThat(deadLetters).isEmpty();
      // All room back: the reserve and the capacity each hold what they started with.
      await().atMost(Duration.ofSeconds(10)).until(() -> bus.pending() == 0);
      assertThat(bus.handlerReserveLeft()).isEqualTo(1);
    }
  }

  @Test
  void aGroupThatLeavesWhileRetryingDoesNotKeepTheBusFull() {
    try (InMemoryMessageBus bus = InMemoryMessageBus.create(InMemoryMessageBusConfig.defaults()
        .withCapacity(3).withPartitions(1).withPublishTimeout(Duration.ofMillis(200))
        .withRetryPolicy(new RetryPolicy(5, Duration.ofSeconds(2), Duration.ofSeconds(2), 0)))) {
      List<Delivery> handled = new CopyOnWriteArrayList<>();
      bus.subscribe(SubscriptionSpec.group("a").withTopics("bounded"), handled::add);
      List<Delivery> failing = new CopyOnWriteArrayList<>();
      var failer = bus.subscribe(SubscriptionSpec.group("b").withTopics("bounded"), d -> {
        failing.add(d);
        throw new IllegalStateException("not now");
      });
      for (int i = 0; i < 3; i++) {
        bus.publish(message(i));
      }
      await().atMost(Duration.ofSeconds(10)).until(() -> handled.size() == 3 && !failing.isEmpty());
      failer.close(); // in its backoff: its next attempt finds no member

      for (int i = 3; i < 6; i++) {
        bus.publish(message(i)); // the bus was full for good: MessageBusFullException
      }
      await().atMost(Duration.ofSeconds(10)).until(() -> handled.size() == 6);
    }
  }

  @Test
  void closingTheBusWaitsForAHandlerWhoseSubscriptionClosedMeanwhile() throws Exception {
    InMemoryMessageBus bus = InMemoryMessageBus.create();
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    List<Object> answers = new CopyOnWriteArrayList<>();
    var subscription = bus.subscribe(SubscriptionSpec.group("lasting").withTopics("bounded"), d -> {
      entered.countDown();
      release.await(20, TimeUnit.SECONDS);
      try {
        answers.add(bus.publish(message(99)).status()); // its answer still goes out
      } catch (RuntimeException e) {
        answers.add(e);
      }
    });
    bus.publish(message(0));
    assertThat(entered.await(10, TimeUnit.SECONDS)).isTrue();
    subscription.close();
    CompletableFuture<Void> closed = CompletableFuture.runAsync(bus::close);

    await().during(Duration.ofMillis(500)).atMost(Duration.ofSeconds(5)).until(() -> !closed.isDone());
    release.countDown();

    closed.get(20, TimeUnit.SECONDS);
    assertThat(answers).containsExactly(org.nisprotocol.core.PublishReceipt.Status.SENT);
  }

  @Test
  void eachPartitionOfADeadLetterTopicKeepsTheNewestLetters() {
    try (InMemoryMessageBus bus = InMemoryMessageBus.create(InMemoryMessageBusConfig.defaults()
        .withCapacity(5).withPartitions(1)
        .withRetryPolicy(new RetryPolicy(1, Duration.ofMillis(10), Duration.ofMillis(10), 0)))) {
      AtomicBoolean markerHandled = new AtomicBoolean();
      bus.subscribe(SubscriptionSpec.group("a").withTopics("bounded"), d -> {
        if (d.message().content().get("sequence").equals(100)) {
          markerHandled.set(true);
          return;
        }
        throw new IllegalStateException("poison");
      });
      for (int i = 0; i < 8; i++) {
        bus.publish(message(i));
      }
      bus.publish(message(100)); // one partition, in order: handled once all 8 are dead letters
      await().atMost(Duration.ofSeconds(10)).until(markerHandled::get);

      List<Delivery> deadLetters = new CopyOnWriteArrayList<>();
      bus.subscribe(SubscriptionSpec.group("dlt").withTopics("bounded.dlt"), deadLetters::add);

      await().atMost(Duration.ofSeconds(10)).until(() -> deadLetters.size() == 5);
      assertThat(deadLetters).extracting(d -> d.message().content().get("sequence")).containsExactly(3, 4, 5, 6, 7);
    }
  }

  @Test
  void messagesOnATopicNobodyReadsWaitForTheFirstSubscriber() {
    try (InMemoryMessageBus bus = InMemoryMessageBus.create()) {
      for (int i = 0; i < 5; i++) {
        bus.publish(message(i));
      }
      assertThat(bus.pending()).isEqualTo(5);
    }
  }
}
