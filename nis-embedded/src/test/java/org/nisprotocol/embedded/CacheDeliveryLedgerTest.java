package org.nisprotocol.embedded;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.CacheDeliveryLedger;
import org.nisprotocol.testkit.ManualClock;

class CacheDeliveryLedgerTest {
  @Test
  void twoInstancesOnOneCacheShareWhatWasHandledForTheWindow() {
    ManualClock clock = ManualClock.create();
    try (InMemoryCache shared = InMemoryCache.create(InMemoryCacheConfig.defaults().withClock(clock))) {
      CacheDeliveryLedger instanceA = CacheDeliveryLedger.of(shared);
      CacheDeliveryLedger instanceB = CacheDeliveryLedger.of(shared);

      instanceA.markHandled("analysis", "msg-1", Duration.ofMinutes(10));

      assertThat(instanceB.isHandled("analysis", "msg-1")).isTrue();
      assertThat(instanceB.isHandled("other-group", "msg-1")).isFalse();
      clock.advance(Duration.ofMinutes(11));
      assertThat(instanceB.isHandled("analysis", "msg-1")).isFalse();
    }
  }
}
