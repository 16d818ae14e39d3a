package org.nisprotocol.embedded;

import java.time.Duration;
import org.nisprotocol.core.CacheDeliveryLedger;
import org.nisprotocol.core.DeliveryLedger;
import org.nisprotocol.testkit.DeliveryLedgerContract;
import org.nisprotocol.testkit.ManualClock;

/** The ledger contract for the cache's ledger, two instances on one in-process cache with a manual clock. */
class CacheDeliveryLedgerContractTest extends DeliveryLedgerContract {
  private final ManualClock clock = ManualClock.create();
  private final InMemoryCache shared = InMemoryCache.create(InMemoryCacheConfig.defaults().withClock(clock));

  @Override
  protected DeliveryLedger createLedger() {
    return CacheDeliveryLedger.of(shared);
  }

  @Override
  protected DeliveryLedger ledgerOfAnotherInstance(DeliveryLedger ledger) {
    return CacheDeliveryLedger.of(shared);
  }

  @Override
  protected void elapse(Duration duration) {
    clock.advance(duration);
  }

  @Override
  protected void closeLedgers() {
    shared.close();
  }
}
