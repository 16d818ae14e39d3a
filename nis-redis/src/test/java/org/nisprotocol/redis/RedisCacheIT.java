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
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.HealthStatus;
import org.nisprotocol.core.NisException;
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
    cache = RedisCache.create(PatientConfig.of(redis).build(), registry);
    raw = new RawRedis(redis);
  }

  @AfterEach
  void close() {
    cache.close();
    raw.close();
  }

  @Test
  void entriesAreJsonTextUnderTheSharedKeyFormatWithAMillisecondTtl() {
    String json = "{\"agent\":\"état\",\"n\":[1,2]}";

    cache.put(ns, "agent:42", json, Duration.ofMillis(90_500));

    String key = "nis:cache:" + ns + ":agent:42";
    assertThat(raw.sync().get(key)).isEqualTo(json);
    assertThat(raw.sync().type(key)).isEqualTo("string");
    assertThat(raw.sync().pttl(key)).isBetween(89_000L, 90_500L);
  }

  @Test
  void aPutWithoutTtlTakesTheNamespaceDefaultOfTheNotes() {
    cache.put("system", "probe-" + ns, "1");
    cache.put(ns, "k", "1");

    assertThat(raw.sync().pttl("nis:cache:system:probe-" + ns)).isBetween(299_000L, 300_000L);
    assertThat(raw.sync().pttl("nis:cache:" + ns + ":k")).as("others: 3600 s").isBetween(3_599_000L, 3_600_000L);
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
    assertThat(raw.sync().pttl("nis:cache:" + ns + ":k7")).isBetween(59_000L, 60_000L);
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
    var check = cache.checkHealth(Duration.ofSeconds(1));

    assertThat(check.status()).isEqualTo(HealthStatus.HEALTHY);
    assertThat(check.latency()).isPositive();
    assertThat(check.detail()).isEmpty();
  }

  @Test
  void aKeyOfAnotherTypeIsADataErrorNotAnOutage() {
    raw.sync().hset("nis:cache:" + ns + ":hash", "f", "v");

    assertThatThrownBy(() -> cache.get(ns, "hash"))
        .isInstanceOf(NisException.class)
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
