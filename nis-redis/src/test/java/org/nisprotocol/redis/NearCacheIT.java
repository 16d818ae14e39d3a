package org.nisprotocol.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nisprotocol.testkit.RedisServer;
import org.nisprotocol.testkit.StallWatch;
import org.nisprotocol.testkit.TestServers;

/** Two cache instances on one Redis, each with a near cache of the same namespaces. */
class NearCacheIT {
  // Started when this class is loaded, before any write whose staleness is measured from then.
  private static final StallWatch STALLS = StallWatch.shared();

  private final RedisServer redis = TestServers.redis();
  private final String run = UUID.randomUUID().toString().substring(0, 8);
  private final String ns = "near-" + run;
  private final String lruNs = "near-lru-" + run;
  private final SimpleMeterRegistry registryA = new SimpleMeterRegistry();
  private final SimpleMeterRegistry registryB = new SimpleMeterRegistry();
  private RedisCache a;
  private RedisCache b;
  private RawRedis raw;

  @BeforeEach
  void connect() {
    RedisCacheConfig config =
        PatientConfig.builder(redis)
            .nearCache(ns, NearCache.defaults())
            .nearCache(lruNs, NearCache.lru(2))
            .build();
    a = RedisCache.create(config, registryA);
    b = RedisCache.create(config, registryB);
    raw = new RawRedis(redis);
    await().atMost(Duration.ofSeconds(5)).until(() -> a.health().nearCacheInvalidations() && b.health().nearCacheInvalidations());
  }

  @AfterEach
  void close() {
    a.close();
    b.close();
    raw.close();
  }

  /**
   * Reads until the read is fresh; returns how long after the call the last stale answer came.
   * Measured on the answers, not on the wait: the fresh read itself goes to Redis, and on a busy
   * machine that round trip is not staleness. Stalls of this JVM ({@link StallWatch}) are taken
   * out: the invalidation could not be handled while nothing here ran.
   */
  static long millisServedStale(BooleanSupplier freshRead) {
    return millisServedStale(System.nanoTime(), freshRead);
  }

  /** As {@link #millisServedStale(BooleanSupplier)}, counted from the given nanoTime. */
  static long millisServedStale(long written, BooleanSupplier freshRead) {
    long lastStaleAnswer = written;
    while (!freshRead.getAsBoolean()) {
      lastStaleAnswer = System.nanoTime();
      // only ends a read that never turns fresh; the staleness itself is checked by the caller
      assertThat(lastStaleAnswer - written).as("stale for too long").isLessThan(TimeUnit.SECONDS.toNanos(20));
      Thread.onSpinWait();
    }
    return STALLS.unstalledBetween(written, lastStaleAnswer).toMillis();
  }

  @Test
  void aRepeatedReadIsServedLocally() {
    a.put(ns, "k", "\"v1\"");
    assertThat(b.get(ns, "k")).contains("\"v1\"");
    // a's own invalidation may reach b after b's first read, which then keeps nothing: read on
    // until b answers locally
    await().atMost(Duration.ofSeconds(5)).until(() -> {
      b.get(ns, "k");
      return nearHits(registryB) > 0;
    });
    double hitsBefore = nearHits(registryB);
    long gets = raw.calls("get");

    for (int i = 0; i < 10; i++) {
      assertThat(b.get(ns, "k")).contains("\"v1\"");
    }

    assertThat(raw.calls("get")).isEqualTo(gets);
    assertThat(nearHits(registryB) - hitsBefore).isEqualTo(10);
  }

  private double nearHits(SimpleMeterRegistry registry) {
    return registry.get("nis.cache.hits").tags("namespace", ns, "tier", "near").functionCounter().count();
  }

  @Test
  void aWriteThroughOneInstanceIsNotServedStaleByTheOtherForMoreThan100Ms() {
    List<Long> staleMillis = new ArrayList<>();
    for (int i = 1; i <= 30; i++) {
      String previous = "\"v" + (i - 1) + "\"";
      String next = "\"v" + i + "\"";
      if (i > 1) {
        assertThat(b.get(ns, "k")).contains(previous); // b holds the old value locally
      }

      a.put(ns, "k", next);
      staleMillis.add(millisServedStale(() -> b.get(ns, "k").equals(Optional.of(next))));
    }

    assertThat(staleMillis).allSatisfy(ms -> assertThat(ms).isLessThanOrEqualTo(100));
  }

  @Test
  void deletesAndClearsReachTheOtherInstance() {
    a.putAll(ns, Map.of("x", "1", "y", "2", "z", "3"));
    assertThat(b.getAll(ns, List.of("x", "y", "z"))).hasSize(3);

    a.delete(ns, "x");
    assertThat(millisServedStale(() -> b.get(ns, "x").isEmpty())).isLessThanOrEqualTo(100);
    assertThat(b.get(ns, "y")).contains("2");

    a.clear(ns);
    assertThat(millisServedStale(() -> b.getAll(ns, List.of("y", "z")).isEmpty())).isLessThanOrEqualTo(100);
  }

  @Test
  void aClaimThroughOneInstanceEndsTheOthersLocalCopy() {
    a.put(ns, "claim", "\"old\"");
    await().atMost(Duration.ofSeconds(5)).until(() -> {
      b.get(ns, "claim");
      return nearHits(registryB) > 0; // b answers from its local copy
    });
    raw.sync().del("nis:cache:" + ns + ":claim"); // gone from Redis without an invalidation: b's copy is stale

    assertThat(a.putIfAbsent(ns, "claim", "\"new\"", Duration.ofMinutes(1))).isTrue();

    assertThat(millisServedStale(() -> b.get(ns, "claim").equals(Optional.of("\"new\"")))).isLessThanOrEqualTo(100);
    assertThat(a.get(ns, "claim")).contains("\"new\"");
  }

  @Test
  void aReplaceReplacesOnlyTheValueItExpectsAndEndsTheOthersLocalCopy() {
    a.put(ns, "held", "\"old\"");
    servedLocallyByB("held");

    assertThat(a.replaceIfHolding(ns, "held", "\"other\"", "\"new\"", Duration.ofMinutes(1))).isFalse();
    assertThat(a.replaceIfHolding(ns, "absent", "\"old\"", "\"new\"", Duration.ofMinutes(1))).isFalse();
    assertThat(raw.sync().get("nis:cache:" + ns + ":held")).isEqualTo("\"old\"");
    assertThat(raw.sync().exists("nis:cache:" + ns + ":absent")).isZero();

    // b's copy again, so that only the invalidation of the replace that succeeds can end it
    servedLocallyByB("held");
    assertThat(a.replaceIfHolding(ns, "held", "\"old\"", "\"new\"", Duration.ofMinutes(1))).isTrue();
    assertThat(millisServedStale(() -> b.get(ns, "held").equals(Optional.of("\"new\"")))).isLessThanOrEqualTo(100);
    assertThat(a.get(ns, "held")).contains("\"new\"");
    assertThat(raw.sync().pttl("nis:cache:" + ns + ":held")).isBetween(50_000L, 60_000L);
  }

  /** Waits until b answers the key from its local copy. */
  private void servedLocallyByB(String key) {
    double before = nearHits(registryB);
    await().atMost(Duration.ofSeconds(5)).until(() -> {
      b.get(ns, key);
      return nearHits(registryB) > before;
    });
  }

  @Test
  void aLocalCopyEndsWithTheRedisTtl() throws InterruptedException {
    // Long enough that most pauses of this JVM before b's first local hit do not outlive it.
    Duration ttl = Duration.ofSeconds(2);
    a.put(ns, "short", "1", ttl);
    double hits = nearHits(registryB);
    await().atMost(Duration.ofMillis(1_500)).pollInterval(Duration.ofMillis(5)).until(() -> {
      assertThat(b.get(ns, "short")).contains("1");
      return nearHits(registryB) > hits; // b now answers from its local copy
    });

    // Redis expires in real time; both local copies were stored by now and end with it.
    Thread.sleep(ttl.plusMillis(100).toMillis());

    assertThat(b.get(ns, "short")).isEmpty();
    assertThat(a.get(ns, "short")).isEmpty();
  }

  @Test
  void theLruTierEvictsAndCountsIt() {
    a.put(lruNs, "k1", "1");
    a.put(lruNs, "k2", "2");
    a.get(lruNs, "k1");
    a.put(lruNs, "k3", "3"); // k2 is the least recently used of three, with room for two

    assertThat(registryA.get("nis.cache.evictions").tag("namespace", lruNs).counter().count()).isEqualTo(1);
    long gets = raw.calls("get");
    assertThat(a.get(lruNs, "k1")).contains("1");
    assertThat(raw.calls("get")).as("k1 still local").isEqualTo(gets);
    assertThat(a.get(lruNs, "k2")).as("k2 comes from Redis again").contains("2");
    assertThat(raw.calls("get")).isEqualTo(gets + 1);
  }

  /** Racing writers and readers on both instances: once writes stop, nobody serves a stale value. */
  @Test
  void racingReadsNeverPinAStaleValue() throws Exception {
    List<String> keys = List.of("r0", "r1", "r2", "r3");
    ExecutorService threads = Executors.newFixedThreadPool(4);
    long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(1500);
    try {
      List<Future<?>> work = new ArrayList<>();
      for (RedisCache instance : List.of(a, b)) {
        work.add(threads.submit(() -> {
          int n = 0;
          while (System.nanoTime() < until) {
            instance.put(ns, keys.get(ThreadLocalRandom.current().nextInt(keys.size())), Integer.toString(n++));
          }
          return null;
        }));
        work.add(threads.submit(() -> {
          while (System.nanoTime() < until) {
            instance.get(ns, keys.get(ThreadLocalRandom.current().nextInt(keys.size())));
          }
          return null;
        }));
      }
      for (Future<?> f : work) {
        f.get(10, TimeUnit.SECONDS);
      }
    } finally {
      threads.shutdownNow();
    }

    long stopped = System.nanoTime();
    for (String key : keys) {
      String truth = raw.sync().get("nis:cache:" + ns + ":" + key);
      for (RedisCache instance : List.of(a, b)) {
        assertThat(millisServedStale(stopped, () -> instance.get(ns, key).equals(Optional.of(truth))))
            .as(key)
            .isLessThanOrEqualTo(100);
      }
    }
  }
}
