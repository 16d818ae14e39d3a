package org.nisprotocol.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.MessageHandler;

/**
 * A handler whose first call waits until released; it counts its calls and how many ran at once,
 * and keeps the number ({@code n} of the content) each call handled.
 */
final class FirstCallHeld implements MessageHandler {
  final AtomicInteger entered = new AtomicInteger();
  final AtomicInteger mostAtOnce = new AtomicInteger();
  final List<Object> handled = new CopyOnWriteArrayList<>();
  final CountDownLatch firstEntered = new CountDownLatch(1);
  final CountDownLatch releaseFirst = new CountDownLatch(1);
  private final AtomicInteger inHandler = new AtomicInteger();

  @Override
  public void handle(Delivery d) throws Exception {
    mostAtOnce.accumulateAndGet(inHandler.incrementAndGet(), Math::max);
    try {
      if (entered.incrementAndGet() == 1) {
        firstEntered.countDown();
        releaseFirst.await();
      }
      handled.add(d.message().content().get("n"));
    } finally {
      inHandler.decrementAndGet();
    }
  }

  /**
   * For 5 s no call starts beside the held first one (message 2 is published); once released,
   * message 2 is handled and no two calls ever ran at once.
   */
  void assertNothingBesideTheFirstCallThenAllInTurn() {
    await().during(Duration.ofSeconds(5)).atMost(Duration.ofSeconds(6))
        .untilAsserted(() -> assertThat(entered).as("no handler beside the one held").hasValue(1));
    releaseFirst.countDown();
    await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> assertThat(handled).contains(2));
    assertThat(mostAtOnce).hasValue(1);
  }
}
