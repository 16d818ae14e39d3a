package org.nisprotocol.redis;

import java.util.ArrayList;
import java.util.List;
import org.nisprotocol.core.CacheDeliveryLedger;
import org.nisprotocol.core.DeliveryLedger;
import org.nisprotocol.testkit.DeliveryLedgerContract;
import org.nisprotocol.testkit.TestServers;

/**
 * The ledger contract for the cache's ledger on the shared real Redis: two instances, each with a
 * client of its own. Redis expires entries in real time.
 */
class RedisDeliveryLedgerContractIT extends DeliveryLedgerContract {
  private final List<RedisCache> caches = new ArrayList<>();

  private DeliveryLedger newInstance() {
    RedisCache cache = RedisCache.create(PatientConfig.builder(TestServers.redis()).build());
    caches.add(cache);
    return CacheDeliveryLedger.of(cache);
  }

  @Override
  protected DeliveryLedger createLedger() {
    return newInstance();
  }

  @Override
  protected DeliveryLedger ledgerOfAnotherInstance(DeliveryLedger ledger) {
    return newInstance();
  }

  @Override
  protected void closeLedgers() {
    caches.forEach(RedisCache::close);
  }
}
