package org.nisprotocol.embedded;

import java.time.Duration;
import org.nisprotocol.core.Cache;
import org.nisprotocol.core.NamespaceTtls;
import org.nisprotocol.testkit.CacheContract;
import org.nisprotocol.testkit.ManualClock;

class InMemoryCacheContractTest extends CacheContract {
  private final ManualClock clock = ManualClock.create();

  @Override
  protected Cache createCache(NamespaceTtls namespaceTtls) {
    return InMemoryCache.create(
        InMemoryCacheConfig.defaults().withNamespaceTtls(namespaceTtls).withClock(clock));
  }

  @Override
  protected void elapse(Duration duration) {
    clock.advance(duration);
  }
}
