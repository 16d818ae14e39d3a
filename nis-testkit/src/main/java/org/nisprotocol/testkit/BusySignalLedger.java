package org.nisprotocol.testkit;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.nisprotocol.core.DeliveryLedger;

/**
 * A {@link DeliveryLedger} that passes everything to another and tells when a claim found the
 * message busy: a test waits for that before it lets the first handler go on, so it knows the
 * second delivery met the claim rather than came late.
 */
public class BusySignalLedger implements DeliveryLedger {
  private final DeliveryLedger ledger;
  private final CountDownLatch foundBusy = new CountDownLatch(1);

  public BusySignalLedger(DeliveryLedger ledger) {
    this.ledger = ledger;
  }

  /** Whether a claim found the message busy within the time given. */
  public boolean awaitBusy(Duration atMost) throws InterruptedException {
    return foundBusy.await(atMost.toNanos(), TimeUnit.NANOSECONDS);
  }

  @Override
  public Claim claim(String group, String messageId, Duration lease) {
    Claim claim = ledger.claim(group, messageId, lease);
    if (claim == Claim.BUSY) {
      foundBusy.countDown();
    }
    return claim;
  }

  @Override
  public void markHandled(String group, String messageId, Duration window) {
    ledger.markHandled(group, messageId, window);
  }

  @Override
  public void release(String group, String messageId) {
    ledger.release(group, messageId);
  }
}
