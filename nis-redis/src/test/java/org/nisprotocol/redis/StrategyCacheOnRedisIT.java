package org.nisprotocol.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.CircuitBreaker;
import org.nisprotocol.core.CircuitBreakerConfig;
import org.nisprotocol.core.RetriableException;
import org.nisprotocol.testkit.RedisServer;
import org.nisprotocol.testkit.TestServers;

/** The strategies over the Redis backend. */
class StrategyCacheOnRedisIT {
  private final RedisServer redis = TestServers.redis();
  private final String ns = "strategy-" + UUID.randomUUID().toString().substring(0, 8);

  private RedisCacheConfig config(RedisServer server) {
    return PatientConfig.builder(server).build();
  }

  /** A refresh-ahead cache over the harness's Redis whose reloads wait in {@code executor}. */
  private StrategyCache refreshingAhead(StrategyCacheTest.ManualExecutor executor, StrategyCacheTest.CountingLoader loader) {
    return StrategyCache.builder(RedisCache.create(config(redis)))
        .executor(executor)
        // Long TTLs: Redis counts them down while this JVM pauses, which must not expire what the tests wrote.
        .refreshAhead(ns, loader, Duration.ofSeconds(100))
        .build();
  }

  @Test
  void refreshAheadReadsTheRemainingTtlFromRedisSoItRefreshesWhatOthersWrote() {
    StrategyCacheTest.ManualExecutor executor = new StrategyCacheTest.ManualExecutor();
    StrategyCacheTest.CountingLoader loader = new StrategyCacheTest.CountingLoader();
    try (RedisCache other = RedisCache.create(config(redis));
        StrategyCache cache = refreshingAhead(executor, loader)) {
      other.put(ns, "fresh", "\"from another instance\"", Duration.ofSeconds(90));
      other.put(ns, "ageing", "\"from another instance\"", Duration.ofSeconds(15));

      assertThat(cache.get(ns, "fresh")).contains("\"from another instance\"");
      assertThat(executor.queued()).as("90 % of the TTL left: no reload").isZero();
      assertThat(cache.get(ns, "ageing")).as("answered at once").contains("\"from another instance\"");
      assertThat(executor.queued()).as("15 % of the TTL left: one reload").isEqualTo(1);

      other.put(ns, "ageing-too", "\"from another instance\"", Duration.ofSeconds(15));
      assertThat(cache.getAll(ns, List.of("fresh", "ageing-too")))
          .as("answered at once").containsEntry("ageing-too", "\"from another instance\"");
      assertThat(executor.queued()).as("getAll reads the remaining TTL too: one more reload").isEqualTo(2);

      executor.runAll();

      assertThat(other.get(ns, "ageing")).contains("\"ageing#1\"");
      assertThat(other.get(ns, "ageing-too")).as("the loader's second load").contains("\"ageing-too#2\"");
      try (RawRedis raw = new RawRedis(redis)) {
        assertThat(raw.sync().pttl("nis:cache:" + ns + ":ageing")).isBetween(90_000L, 100_000L);
      }
    }
  }

  @Test
  void aReloadLeavesWhatAnotherInstanceWroteOrDeletedMeanwhile() {
    StrategyCacheTest.ManualExecutor executor = new StrategyCacheTest.ManualExecutor();
    StrategyCacheTest.CountingLoader loader = new StrategyCacheTest.CountingLoader();
    try (RedisCache other = RedisCache.create(config(redis));
        StrategyCache cache = refreshingAhead(executor, loader)) {
      for (String key : List.of("rewritten", "deleted", "untouched")) {
        other.put(ns, key, "\"old\"", Duration.ofSeconds(15));
        assertThat(cache.get(ns, key)).contains("\"old\"");
      }
      assertThat(executor.queued()).as("a reload of each").isEqualTo(3);

      other.put(ns, "rewritten", "\"newer\"", Duration.ofSeconds(90));
      other.delete(ns, "deleted");
      executor.runAll();

      assertThat(loader.calls).as("every reload ran").hasValue(3);
      assertThat(other.get(ns, "rewritten")).as("the other instance's write stands").contains("\"newer\"");
      assertThat(other.get(ns, "deleted")).as("the other instance's delete stands").isEmpty();
      assertThat(other.get(ns, "untouched")).as("the reload replaced the value it refreshed").contains("\"untouched#3\"");
      try (RawRedis raw = new RawRedis(redis)) {
        assertThat(raw.sync().pttl("nis:cache:" + ns + ":untouched")).isBetween(90_000L, 100_000L);
        assertThat(raw.sync().pttl("nis:cache:" + ns + ":rewritten")).isBetween(1L, 90_000L);
      }
    }
  }

  @Test
  void writeBackReachesTheStoreOnCloseWhileRedisHasItAtOnce() {
    RecordingStore store = new RecordingStore();
    StrategyCache cache =
        StrategyCache.builder(RedisCache.create(config(redis)))
            .writeBack(ns, store)
            .writeBackInterval(Duration.ofHours(1))
            .build();
    cache.put(ns, "k", "\"v\"");
    try (RawRedis raw = new RawRedis(redis)) {
      assertThat(raw.sync().get("nis:cache:" + ns + ":k")).isEqualTo("\"v\"");
    }
    assertThat(store.data).isEmpty();

    cache.close();

    assertThat(store.data).containsEntry(ns + ":k", "\"v\"");
  }

  @Test
  void aWriteThroughWriteRedisRefusedLeavesNoOlderValueForOtherInstancesOnceItIsBack() {
    try (RedisServer own = RedisServer.builder().name("strategy-hung").build()) {
      own.start();
      RecordingStore store = new RecordingStore();
      RedisCacheConfig impatient = config(own).toBuilder()
          .commandTimeout(Duration.ofMillis(200))
          .circuitBreaker(new CircuitBreakerConfig(3, Duration.ofSeconds(2), 2))
          .healthProbeInterval(Duration.ofMillis(100))
          .build();
      try (RedisCache other = RedisCache.create(config(own));
          RedisCache underneath = RedisCache.create(impatient);
          StrategyCache cache = StrategyCache.builder(underneath).writeThrough(ns, store).build()) {
        cache.put(ns, "k", "\"before\"");
        own.pause();
        try {
          await().atMost(Duration.ofSeconds(10)).until(() -> {
            underneath.get(ns, "probe"); // times out, until the breaker opens
            return underneath.health().breaker() == CircuitBreaker.State.OPEN;
          });
          assertThatThrownBy(() -> cache.put(ns, "k", "\"during\"")).isInstanceOf(RetriableException.class);
        } finally {
          own.resume();
        }
        assertThat(store.data).containsEntry(ns + ":k", "\"during\"");

        await().atMost(Duration.ofSeconds(20)).untilAsserted(() ->
            assertThat(other.get(ns, "k")).as("another instance, which no read here settled it for").isEmpty());
        assertThat(cache.get(ns, "k")).isEmpty();
      }
    }
  }

  @Test
  void aReloadWhoseReplaceTimedOutSendsNothingElseToRedis() {
    try (RedisServer own = RedisServer.builder().name("strategy-hung").build()) {
      own.start();
      StrategyCacheTest.ManualExecutor executor = new StrategyCacheTest.ManualExecutor();
      try (RedisCache other = RedisCache.create(config(own));
          StrategyCache cache =
              StrategyCache.builder(RedisCache.create(config(own).toBuilder().commandTimeout(Duration.ofMillis(200)).build()))
                  .executor(executor)
                  .refreshAhead(ns, new StrategyCacheTest.CountingLoader(), Duration.ofSeconds(100))
                  .build()) {
        other.put(ns, "k", "\"old\"", Duration.ofSeconds(15));
        assertThat(cache.get(ns, "k")).contains("\"old\"");
        assertThat(executor.queued()).isEqualTo(1);
        other.put(ns, "k", "\"newer\"", Duration.ofSeconds(90));

        own.pause();
        try {
          executor.runAll(); // the replace times out; it compares with "old" when Redis resumes
        } finally {
          own.resume();
        }

        // A put sent after the timed-out replace would land now, over the other instance's write.
        await().atMost(Duration.ofSeconds(10)).until(() -> other.health().breaker() == CircuitBreaker.State.CLOSED);
        try (RawRedis raw = new RawRedis(own)) {
          assertThat(raw.sync().get("nis:cache:" + ns + ":k")).isEqualTo("\"newer\"");
        }
      }
    }
  }

  @Test
  void aRefreshAheadMissIsLoadedAndAnsweredWhileRedisIsDown() {
    try (RedisServer own = RedisServer.builder().name("strategy-down").build()) {
      own.start();
      StrategyCacheTest.CountingLoader loader = new StrategyCacheTest.CountingLoader();
      try (StrategyCache cache =
          StrategyCache.builder(
                  RedisCache.create(
                      config(own).toBuilder()
                          .commandTimeout(Duration.ofMillis(100))
                          .circuitBreaker(new CircuitBreakerConfig(3, Duration.ofSeconds(30), 2))
                          .build()))
              .refreshAhead(ns, loader, Duration.ofSeconds(10))
              .build()) {
        own.kill();

        assertThat(cache.get(ns, "k")).isEqualTo(Optional.of("\"k#1\""));
        assertThat(cache.get(ns, "k"))
            .as("kept in the local tier though Redis refused it")
            .isEqualTo(Optional.of("\"k#1\""));
        assertThat(loader.calls).hasValue(1);
      }
    }
  }
}
