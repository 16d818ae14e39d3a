package org.nisprotocol.testkit;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.DeliveryLedger;
import org.nisprotocol.core.DeliveryLedger.Claim;
import org.nisprotocol.core.MessageHandler;
import org.nisprotocol.core.MessageHandlers;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;

/**
 * The contract every {@link DeliveryLedger} keeps, and what {@link MessageHandlers#deduplicated}
 * makes of it. A backend's test extends this class and gives ledgers of two instances of the
 * service that share one store ({@link #ledgerOfAnotherInstance}), and says how time passes for
 * the store ({@link #elapse}).
 */
public abstract class DeliveryLedgerContract {
  private static final Duration LONG = Duration.ofMinutes(5);
  private static final Duration SHORT = Duration.ofMillis(300);
  /** Past {@link #SHORT}, with room for a server's expiry to run. */
  private static final Duration PAST_SHORT = Duration.ofMillis(450);

  protected DeliveryLedger ledger;
  protected DeliveryLedger other;
  private String group;
  private ExecutorService threads;

  /** A ledger of this instance of the service. */
  protected abstract DeliveryLedger createLedger();

  /**
   * A ledger of another instance sharing {@code ledger}'s store (the ledger itself where the store
   * is this process's memory).
   */
  protected abstract DeliveryLedger ledgerOfAnotherInstance(DeliveryLedger ledger);

  /**
   * Lets the given time pass as the store sees it: real time, as for a server; a backend on a
   * manual clock advances it instead.
   */
  protected void elapse(Duration duration) {
    ServerProcess.sleep(duration);
  }

  /** Closes what the ledgers use, if anything. */
  protected void closeLedgers() {}

  @BeforeEach
  void createLedgers() {
    ledger = createLedger();
    other = ledgerOfAnotherInstance(ledger);
    group = "group-" + UUID.randomUUID();
    threads = Executors.newCachedThreadPool();
  }

  @AfterEach
  void close() {
    threads.shutdownNow();
    closeLedgers();
  }

  private static String newId() {
    return UUID.randomUUID().toString();
  }

  @Test
  void aClaimHoldsUntilTheMessageIsMarkedHandled() {
    String id = newId();

    assertThat(ledger.claim(group, id, LONG)).isEqualTo(Claim.CLAIMED);
    assertThat(other.claim(group, id, LONG)).isEqualTo(Claim.BUSY);
    assertThat(ledger.claim(group, id, LONG)).as("the claimant's own second claim").isEqualTo(Claim.BUSY);
    assertThat(other.claim("another-" + group, id, LONG)).as("groups are separate").isEqualTo(Claim.CLAIMED);

    ledger.markHandled(group, id, LONG);

    assertThat(other.claim(group, id, LONG)).isEqualTo(Claim.HANDLED);
    assertThat(ledger.claim(group, id, LONG)).isEqualTo(Claim.HANDLED);
  }

  @Test
  void groupsAndIdsThatSpellTheSameTextAreApart() {
    String id = newId();

    assertThat(ledger.claim(group + ":x", id, LONG)).isEqualTo(Claim.CLAIMED);
    assertThat(other.claim(group, "x:" + id, LONG)).isEqualTo(Claim.CLAIMED);
  }

  @Test
  void idsThatDifferOnlyInALoneSurrogateAreApart() {
    // a JSON escape can name half of a UTF-16 pair; UTF-8 would give both halves one form ('?')
    String id = newId();

    assertThat(ledger.claim(group, id + "\uD800", LONG)).isEqualTo(Claim.CLAIMED);
    assertThat(other.claim(group, id + "\uDBFF", LONG)).isEqualTo(Claim.CLAIMED);
    assertThat(other.claim(group, id + "\uD800", LONG)).isEqualTo(Claim.BUSY);
  }

  @Test
  void anyGroupAndIdCanBeClaimed() {
    String longGroup = group + "-" + "g".repeat(600);
    String oddId = newId() + "\u0001tab\tid";

    assertThat(ledger.claim(longGroup, oddId, LONG)).isEqualTo(Claim.CLAIMED);
    assertThat(other.claim(longGroup, oddId, LONG)).isEqualTo(Claim.BUSY);
    ledger.markHandled(longGroup, oddId, LONG);
    assertThat(other.claim(longGroup, oddId, LONG)).isEqualTo(Claim.HANDLED);
  }

  @Test
  void aReleasedClaimCanBeTakenAgainButAHandledMarkStays() {
    String released = newId();
    String handled = newId();
    assertThat(ledger.claim(group, released, LONG)).isEqualTo(Claim.CLAIMED);
    assertThat(ledger.claim(group, handled, LONG)).isEqualTo(Claim.CLAIMED);

    ledger.release(group, released);
    ledger.markHandled(group, handled, LONG);
    ledger.release(group, handled);

    assertThat(other.claim(group, released, LONG)).isEqualTo(Claim.CLAIMED);
    assertThat(other.claim(group, handled, LONG)).isEqualTo(Claim.HANDLED);
  }

  @Test
  void aClaimLapsesAfterItsLeaseAndAHandledMarkAfterItsWindow() {
    String claimed = newId();
    String handled = newId();
    assertThat(ledger.claim(group, claimed, SHORT)).isEqualTo(Claim.CLAIMED);
    ledger.markHandled(group, handled, SHORT);

    elapse(PAST_SHORT);

    assertThat(other.claim(group, claimed, LONG)).isEqualTo(Claim.CLAIMED);
    assertThat(other.claim(group, handled, LONG)).isEqualTo(Claim.CLAIMED);
  }

  @Test
  void ofRacingClaimsOneWins() throws Exception {
    for (int round = 0; round < 10; round++) {
      String id = newId();
      CountDownLatch start = new CountDownLatch(1);
      List<Future<Claim>> claims = new ArrayList<>();
      for (int t = 0; t < 6; t++) {
        DeliveryLedger claimant = t % 2 == 0 ? ledger : other;
        claims.add(threads.submit(() -> {
          start.await();
          return claimant.claim(group, id, LONG);
        }));
      }
      start.countDown();
      List<Claim> outcomes = new ArrayList<>();
      for (Future<Claim> claim : claims) {
        outcomes.add(claim.get(30, TimeUnit.SECONDS));
      }
      assertThat(outcomes).as(id).containsOnlyOnce(Claim.CLAIMED).doesNotContain(Claim.HANDLED);
    }
  }

  private static Delivery delivery(NisMessage message) {
    return new Delivery(message, "topic", 0, 0, 1, Map.of());
  }

  /**
   * The case the claim is for: the message is delivered again (to another instance) while the
   * first handler still runs. The second delivery waits, and then acknowledges it unhandled.
   */
  @Test
  void aRedeliveryWhileTheFirstHandlerRunsWaitsAndDoesNotHandleItAgain() throws Exception {
    NisMessage message = NisMessage.builder(MessageType.MEMORY_OPERATION, "agent").build();
    AtomicInteger handled = new AtomicInteger();
    CountDownLatch firstRunning = new CountDownLatch(1);
    CountDownLatch letFirstFinish = new CountDownLatch(1);
    MessageHandler slowHandler = d -> {
      handled.incrementAndGet();
      firstRunning.countDown();
      letFirstFinish.await();
    };
    BusySignalLedger otherLedger = new BusySignalLedger(other);
    MessageHandler first = MessageHandlers.deduplicated(slowHandler, ledger, group, LONG, LONG);
    MessageHandler second = MessageHandlers.deduplicated(slowHandler, otherLedger, group, LONG, LONG);

    CompletableFuture<Void> firstDelivery = run(first, message);
    assertThat(firstRunning.await(30, TimeUnit.SECONDS)).isTrue();
    CompletableFuture<Void> secondDelivery = run(second, message);
    assertThat(otherLedger.awaitBusy(Duration.ofSeconds(30))).as("the second delivery met the claim").isTrue();

    letFirstFinish.countDown();

    firstDelivery.get(30, TimeUnit.SECONDS);
    secondDelivery.get(30, TimeUnit.SECONDS);
    assertThat(handled).hasValue(1);
  }

  @Test
  void aRedeliveryWhileTheFirstHandlerFailsHandlesItOnceTheClaimIsReleased() throws Exception {
    NisMessage message = NisMessage.builder(MessageType.MEMORY_OPERATION, "agent").build();
    AtomicInteger calls = new AtomicInteger();
    CountDownLatch firstRunning = new CountDownLatch(1);
    CountDownLatch letFirstFail = new CountDownLatch(1);
    MessageHandler failsFirst = d -> {
      if (calls.incrementAndGet() == 1) {
        firstRunning.countDown();
        letFirstFail.await();
        throw new IllegalStateException("first try fails");
      }
    };
    BusySignalLedger otherLedger = new BusySignalLedger(other);
    MessageHandler first = MessageHandlers.deduplicated(failsFirst, ledger, group, LONG, LONG);
    MessageHandler second = MessageHandlers.deduplicated(failsFirst, otherLedger, group, LONG, LONG);

    CompletableFuture<Void> firstDelivery = run(first, message);
    assertThat(firstRunning.await(30, TimeUnit.SECONDS)).isTrue();
    CompletableFuture<Void> secondDelivery = run(second, message);
    assertThat(otherLedger.awaitBusy(Duration.ofSeconds(30))).as("the second delivery met the claim").isTrue();
    assertThat(calls).as("the second delivery waits").hasValue(1);
    letFirstFail.countDown();

    assertThat(firstDelivery).failsWithin(Duration.ofSeconds(30));
    secondDelivery.get(30, TimeUnit.SECONDS);
    assertThat(calls).hasValue(2);
    assertThat(ledger.claim(group, message.messageId(), LONG)).isEqualTo(Claim.HANDLED);
  }

  /** A consumer that died while handling holds the message up for its lease, not for longer. */
  @Test
  void theClaimOfAConsumerThatDiedLapsesAndTheMessageIsHandled() throws Exception {
    NisMessage message = NisMessage.builder(MessageType.MEMORY_OPERATION, "agent").build();
    assertThat(ledger.claim(group, message.messageId(), SHORT)).isEqualTo(Claim.CLAIMED); // never released
    AtomicInteger handled = new AtomicInteger();

    BusySignalLedger otherLedger = new BusySignalLedger(other);
    CompletableFuture<Void> delivery =
        run(MessageHandlers.deduplicated(d -> handled.incrementAndGet(), otherLedger, group, LONG, LONG), message);
    assertThat(otherLedger.awaitBusy(Duration.ofSeconds(30))).as("the delivery met the claim").isTrue();
    assertThat(handled).as("it waits").hasValue(0);
    elapse(PAST_SHORT);

    delivery.get(30, TimeUnit.SECONDS);
    assertThat(handled).hasValue(1);
    assertThat(ledger.claim(group, message.messageId(), LONG)).isEqualTo(Claim.HANDLED);
  }

  /** The handler's work is done: failing the delivery because the mark was lost would run it again. */
  @Test
  void aHandledMessageTheLedgerCannotRecordIsStillAcknowledgedAndStaysClaimed() throws Exception {
    NisMessage message = NisMessage.builder(MessageType.MEMORY_OPERATION, "agent").build();
    DeliveryLedger cannotRecord = new BusySignalLedger(ledger) {
      @Override
      public void markHandled(String group, String messageId, Duration window) {
        throw new IllegalStateException("store down");
      }
    };
    AtomicInteger handled = new AtomicInteger();

    MessageHandlers.deduplicated(d -> handled.incrementAndGet(), cannotRecord, group, LONG, LONG)
        .handle(delivery(message));

    assertThat(handled).hasValue(1);
    assertThat(other.claim(group, message.messageId(), LONG)).as("its claim holds for the lease").isEqualTo(Claim.BUSY);
  }

  private CompletableFuture<Void> run(MessageHandler handler, NisMessage message) {
    return CompletableFuture.runAsync(() -> {
      try {
        handler.handle(delivery(message));
      } catch (RuntimeException e) {
        throw e;
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }, threads);
  }
}
