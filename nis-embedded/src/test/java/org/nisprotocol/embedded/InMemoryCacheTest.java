package org.nisprotocol.embedded;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.nisprotocol.testkit.ManualClock;

/** What the in-process cache does beyond the shared contract: its memory bound. */
class InMemoryCacheTest {

  @Test
  void theCacheEvictsToStayWithinItsByteBound() {
    ManualClock clock = ManualClock.create();
    try (InMemoryCache cache =
        InMemoryCache.create(
            InMemoryCacheConfig.defaults().withMaximumBytes(100_000).withClock(clock))) {
      String value = "\"" + "v".repeat(1_000) + "\"";
      for (int i = 0; i < 1_000; i++) {
        cache.put("memory", "key-" + i, value, Duration.ofHours(1));
      }

      long approximateBytesPerEntry = 2 * (value.length() + 16) + 64;
      assertThat(cache.estimatedSize()).isLessThanOrEqualTo(100_000 / approximateBytesPerEntry + 1);
      assertThat(cache.get("memory", "key-999")).contains(value);
    }
  }

  @Test
  void anEntryLargerThanTheWholeCacheIsRefusedNotDroppedSilently() {
    InMemoryCache cache = InMemoryCache.create(InMemoryCacheConfig.defaults().withMaximumBytes(10_000));
    String large = "\"" + "x".repeat(6_000) + "\"";

    org.assertj.core.api.Assertions.assertThatThrownBy(() -> cache.put("memory", "large", large))
        .isInstanceOf(org.nisprotocol.core.ValidationException.class)
        .hasMessageContaining("entry 'large' of namespace 'memory' takes about")
        .hasMessageContaining("at most 10000");
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () -> cache.putAll("memory", java.util.Map.of("large", large)))
        .isInstanceOf(org.nisprotocol.core.ValidationException.class);
    cache.put("memory", "small", "\"fits\"");
    assertThat(cache.get("memory", "small")).contains("\"fits\"");
  }

  @Test
  void expiryFollowsTheInjectedClockNotTheWallClock() {
    ManualClock clock = ManualClock.create();
    try (InMemoryCache cache = InMemoryCache.create(InMemoryCacheConfig.defaults().withClock(clock))) {
      cache.put("system", "k", "1");

      clock.advance(Duration.ofSeconds(299));
      assertThat(cache.get("system", "k")).as("system namespace lives 300 s").contains("1");

      clock.advance(Duration.ofSeconds(2));
      assertThat(cache.get("system", "k")).isEmpty();
    }
  }
}
