package org.nisprotocol.redis;

import java.time.Duration;
import java.util.Optional;
import org.nisprotocol.core.Cache;
import org.nisprotocol.core.NamespaceTtls;
import org.nisprotocol.embedded.InMemoryCache;
import org.nisprotocol.embedded.InMemoryCacheConfig;
import org.nisprotocol.testkit.CacheContract;
import org.nisprotocol.testkit.ManualClock;

/**
 * The strategies keep the cache contract: the contract's main namespace is write-through and its
 * other namespace write-back, over the embedded backend.
 */
class StrategyCacheContractTest extends CacheContract {
  private final ManualClock clock = ManualClock.create();
  private final RecordingStore store = new RecordingStore();

  @Override
  protected Cache createCache(NamespaceTtls namespaceTtls) {
    InMemoryCache memory =
        InMemoryCache.create(InMemoryCacheConfig.defaults().withNamespaceTtls(namespaceTtls).withClock(clock));
    return StrategyCache.builder(memory)
        .clock(clock)
        .writeThrough(namespace, store)
        .writeBack(otherNamespace, store)
        .refreshAhead("contract-loaded", (ns, key) -> Optional.empty(), Duration.ofMinutes(1))
        .writeBackInterval(Duration.ofHours(1))
        .build();
  }

  @Override
  protected void elapse(Duration duration) {
    clock.advance(duration);
  }
}
