package org.nisprotocol.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.micrometer.core.instrument.distribution.ValueAtPercentile;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.BackendRefusedException;
import org.nisprotocol.core.HealthStatus;
import org.nisprotocol.core.RetriableException;
import org.nisprotocol.testkit.RedisServer;
import org.nisprotocol.testkit.TestServers;

/**
 * What the cache stores in Redis and which commands it uses, checked with a plain client and the
 * server's command statistics (tests in a JVM run one after the other, so the counts are ours).
 */
class RedisCacheIT {
  private final RedisServer redis = TestServers.redis();
  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
  private final String ns = "it-" + UUID.randomUUID().toString().substring(0, 8);
  private RedisCache cache;
  private RawRedis raw;

  @BeforeEach
  void connect() {
    cache = RedisCache.create(PatientConfig.builder(redis).build(), registry);
    raw = new RawRedis(redis);
  }

  @AfterEach
  void close() {
    cache.close();
    raw.close();
  }

  /**
   * The key's TTL left is what the put set, less no more than the time since the put began (Redis
   * counts it down in real time, pauses of this JVM included).
   */
  private void assertTtlLeft(String key, Duration ttl, long putStartNanos) {
    long left = raw.sync().pttl(key);
    long since = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - putStartNanos);
    assertThat(left).as("TTL left of %s, %d ms after the put began", key, since).isBetween(ttl.toMillis() - since - 1, ttl.toMillis());
  }

  @Test
  void entriesAreJsonTextUnderTheSharedKeyFormatWithAMillisecondTtl() {
    String json = "{\"agent\":\"état\",\"n\":[1,2]}";

    long put = System.nanoTime();
    cache.put(ns, "agent:42", json, Duration.ofMillis(90_500));

    String key = "nis:cache:" + ns + ":agent:42";
    assertThat(raw.sync().get(key)).isEqualTo(json);
    assertThat(raw.sync().type(key)).isEqualTo("string");
    assertTtlLeft(key, Duration.ofMillis(90_500), put);
  }

  @Test
  void aPutWithoutTtlTakesTheNamespaceDefaultOfTheNotes() {
    long put = System.nanoTime();
    cache.put("system", "probe-" + ns, "1");
    cache.put(ns, "k", "1");

    assertTtlLeft("nis:cache:system:probe-" + ns, Duration.ofSeconds(300), put);
    assertTtlLeft("nis:cache:" + ns + ":k", Duration.ofSeconds(3_600), put); // the others' default
    raw.sync().del("nis:cache:system:probe-" + ns);
  }

  @Test
  void valuesWrittenByOtherClientsAreRead() {
    raw.sync().set("nis:cache:" + ns + ":from-python", "{\"lang\":\"py\"}");

    assertThat(cache.get(ns, "from-python")).contains("{\"lang\":\"py\"}");
  }

  @Test
  void getAllIsOneMgetAndPutAllIsOneSetPerEntry() {
    Map<String, String> entries = new LinkedHashMap<>();
    for (int i = 0; i < 50; i++) {
      entries.put("k" + i, Integer.toString(i));
    }
    long sets = raw.calls("set");
    long put = System.nanoTime();
    cache.putAll(ns, entries, Duration.ofMinutes(1));
    assertThat(raw.calls("set") - sets).isEqualTo(50);

    long mgets = raw.calls("mget");
    long gets = raw.calls("get");
    List<String> keys = new ArrayList<>(entries.keySet());
    keys.add("absent");
    Map<String, String> found = cache.getAll(ns, keys);

    assertThat(found).isEqualTo(entries);
    assertThat(raw.calls("mget") - mgets).isEqualTo(1);
    assertThat(raw.calls("get") - gets).isZero();
    assertTtlLeft("nis:cache:" + ns + ":k7", Duration.ofMinutes(1), put);
  }

  @Test
  void clearScansAndUnlinksInBatchesAndNeverUsesKeys() {
    Map<String, String> entries = new LinkedHashMap<>();
    for (int i = 0; i < 1_200; i++) {
      entries.put("k" + i, "1");
    }
    cache.putAll(ns, entries, Duration.ofMinutes(1));
    cache.put(ns + "x", "k1", "\"other namespace sharing the prefix text\"", Duration.ofMinutes(1));
    long keys = raw.calls("keys");
    long scans = raw.calls("scan");
    long unlinks = raw.calls("unlink");

    assertThat(cache.clear(ns)).isEqualTo(1_200);

    assertThat(raw.calls("keys")).isEqualTo(keys);
    assertThat(raw.calls("scan") - scans).isGreaterThan(1);
    assertThat(raw.calls("unlink") - unlinks).isGreaterThan(1);
    assertThat(raw.sync().keys("nis:cache:" + ns + ":*")).isEmpty();
    assertThat(cache.get(ns + "x", "k1")).isPresent();
    cache.clear(ns + "x");
  }

  @Test
  void entriesListsTheNamespaceAcrossScanPagesUpToTheLimit() {
    Map<String, String> entries = new LinkedHashMap<>();
    for (int i = 0; i < 1_200; i++) {
      entries.put("agent:" + i, "{\"i\":" + i + "}");
    }
    cache.putAll(ns, entries, Duration.ofMinutes(1));
    cache.put(ns + "x", "agent:1", "\"other\"", Duration.ofMinutes(1));

    assertThat(cache.entries(ns, 10_000)).isEqualTo(entries);
    Map<String, String> some = cache.entries(ns, 50);
    assertThat(some).hasSize(50);
    assertThat(entries).containsAllEntriesOf(some);
    assertThat(cache.entries(ns, 0)).isEmpty();
    cache.clear(ns + "x");
  }

  @Test
  void checkHealthIsARoundTrip() {
    var check = cache.checkHealth(Duration.ofSeconds(10));

    assertThat(check.status()).isEqualTo(HealthStatus.HEALTHY);
    assertThat(check.latency()).isPositive();
    assertThat(check.detail()).isEmpty();
  }

  @Test
  void aKeyOfAnotherTypeIsADataErrorNotAnOutage() {
    raw.sync().hset("nis:cache:" + ns + ":hash", "f", "v");

    assertThatThrownBy(() -> cache.get(ns, "hash"))
        .isInstanceOf(BackendRefusedException.class)
        .isNotInstanceOf(RetriableException.class)
        .hasMessageContaining("WRONGTYPE");
    assertThat(cache.health().status()).isEqualTo(HealthStatus.HEALTHY);
    assertThat(cache.health().consecutiveFailures()).isZero();
  }

  @Test
  void metricsCountPerNamespaceAndPublishLatencyPercentiles() {
    cache.put(ns, "a", "1");
    cache.put(ns, "b", "2");
    cache.putAll(ns, Map.of("c", "3", "d", "4"));
    cache.get(ns, "a");
    cache.get(ns, "a");
    cache.get(ns, "absent");
    cache.getAll(ns, List.of("b", "nope"));

    assertThat(registry.get("nis.cache.puts").tag("namespace", ns).counter().count()).isEqualTo(4);
    assertThat(registry.get("nis.cache.hits").tags("namespace", ns, "tier", "redis").counter().count()).isEqualTo(3);
    assertThat(registry.get("nis.cache.misses").tag("namespace", ns).counter().count()).isEqualTo(2);
    assertThat(registry.get("nis.cache.hit.ratio").tag("namespace", ns).gauge().value()).isEqualTo(0.6);
    assertThat(registry.get("nis.cache.errors").tag("namespace", ns).counter().count()).isZero();
    var getLatency = registry.get("nis.cache.latency").tags("namespace", ns, "operation", "get").timer();
    assertThat(getLatency.count()).isEqualTo(3);
    assertThat(getLatency.takeSnapshot().percentileValues())
        .extracting(ValueAtPercentile::percentile)
        .containsExactly(0.5, 0.95, 0.99);
    assertThat(getLatency.takeSnapshot().percentileValues()).allSatisfy(v -> assertThat(v.value()).isPositive());
    assertThat(registry.get("nis.cache.latency").tags("namespace", ns, "operation", "put_all").timer().count()).isEqualTo(1);
  }

  @Test
  void aHealthyCacheSaysSo() {
    CacheHealth health = cache.health();

    assertThat(health.status()).isEqualTo(HealthStatus.HEALTHY);
    assertThat(health.status().wireName()).isEqualTo("healthy");
    assertThat(health.lastError()).isEmpty();
    assertThat(cache.name()).isEqualTo("redis");
  }

  @Test
  void aClosedCacheRefusesCallsAndReportsUnhealthy() {
    cache.close();
    cache.close();

    assertThatThrownBy(() -> cache.get(ns, "k")).isInstanceOf(org.nisprotocol.core.ClosedException.class);
    assertThat(cache.health().status()).isEqualTo(HealthStatus.UNHEALTHY);
    assertThat(cache.checkHealth(Duration.ofSeconds(1)).status()).isEqualTo(HealthStatus.UNHEALTHY);
  }
}
