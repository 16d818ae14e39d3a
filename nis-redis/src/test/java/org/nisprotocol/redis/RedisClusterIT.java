package org.nisprotocol.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.HealthStatus;
import org.nisprotocol.testkit.RedisServer;

/** The cache on a three-master Redis Cluster started for this test. */
class RedisClusterIT {
  private static ThreeNodeCluster cluster;

  private final String ns = "cluster-" + UUID.randomUUID().toString().substring(0, 8);
  private RedisCache a;
  private RedisCache b;

  @BeforeAll
  static void formCluster() {
    cluster = new ThreeNodeCluster();
    System.out.println("Redis Cluster formed with " + cluster.formedWith() + ": " + cluster.seeds());
  }

  @AfterAll
  static void stopCluster() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @BeforeEach
  void connect() {
    RedisCacheConfig config =
        RedisCacheConfig.builder()
            .clusterNodes(cluster.seeds())
            // A command that times out is answered from this instance's local fallback (its own
            // writes): on a stalled machine a 1 s timeout let a read after another instance's
            // clear see the cleared entries there.
            .commandTimeout(Duration.ofSeconds(5))
            .nearCache("near-" + ns, NearCache.defaults())
            .build();
    a = RedisCache.create(config);
    b = RedisCache.create(config);
  }

  @AfterEach
  void close() {
    a.close();
    b.close();
  }

  @Test
  void aNamespaceSpreadsOverTheNodesAndBatchesWorkAcrossThem() {
    Map<String, String> entries = new LinkedHashMap<>();
    for (int i = 0; i < 300; i++) {
      entries.put("agent:" + i, "{\"i\":" + i + "}");
    }

    a.putAll(ns, entries, Duration.ofMinutes(5));

    int nodesHoldingKeys = 0;
    for (RedisServer node : cluster.nodes()) {
      try (RawRedis raw = new RawRedis(node)) {
        if (raw.sync().dbsize() > 0) {
          nodesHoldingKeys++;
        }
      }
    }
    assertThat(nodesHoldingKeys).isEqualTo(3);
    assertThat(b.getAll(ns, entries.keySet())).isEqualTo(entries);
    assertThat(b.get(ns, "agent:7")).contains("{\"i\":7}");
    assertThat(b.delete(ns, "agent:7")).isTrue();
    assertThat(a.get(ns, "agent:7")).isEmpty();
  }

  @Test
  void clearRemovesTheNamespaceFromEveryNode() {
    Map<String, String> entries = new LinkedHashMap<>();
    for (int i = 0; i < 300; i++) {
      entries.put("k" + i, "1");
    }
    a.putAll(ns, entries, Duration.ofMinutes(5));
    a.put(ns + "-other", "k1", "\"kept\"", Duration.ofMinutes(5));

    assertThat(b.clear(ns)).isEqualTo(300);

    for (RedisServer node : cluster.nodes()) {
      try (RawRedis raw = new RawRedis(node)) {
        assertThat(raw.sync().keys("nis:cache:" + ns + ":*")).isEmpty();
      }
    }
    assertThat(a.getAll(ns, entries.keySet())).isEmpty();
    assertThat(a.get(ns + "-other", "k1")).contains("\"kept\"");
    a.clear(ns + "-other");
  }

  @Test
  void nearCacheInvalidationsCrossTheCluster() {
    String near = "near-" + ns;
    await().atMost(Duration.ofSeconds(5)).until(() -> a.health().nearCacheInvalidations() && b.health().nearCacheInvalidations());
    a.put(near, "k", "\"v1\"");
    assertThat(b.get(near, "k")).contains("\"v1\"");

    a.put(near, "k", "\"v2\"");

    assertThat(NearCacheIT.millisServedStale(() -> b.get(near, "k").equals(java.util.Optional.of("\"v2\""))))
        .isLessThanOrEqualTo(100);
    a.clear(near);
    assertThat(NearCacheIT.millisServedStale(() -> b.get(near, "k").isEmpty())).isLessThanOrEqualTo(100);
  }

  @Test
  void aReplaceWorksForKeysAcrossTheNodesAndReachesTheOthersNearCache() {
    // keys in different slots, so that the script runs on more than one node
    String near = "near-" + ns;
    await().atMost(Duration.ofSeconds(5)).until(() -> a.health().nearCacheInvalidations() && b.health().nearCacheInvalidations());
    for (String namespace : List.of(ns, near)) {
      for (int i = 0; i < 20; i++) {
        String key = "held:" + i;
        a.put(namespace, key, "\"old\"", Duration.ofMinutes(5));
        assertThat(a.get(namespace, key)).contains("\"old\"");
        assertThat(b.replaceIfHolding(namespace, key, "\"other\"", "\"new\"", Duration.ofMinutes(5))).isFalse();
        assertThat(b.replaceIfHolding(namespace, key, "\"old\"", "\"new\"", Duration.ofMinutes(5))).isTrue();
        assertThat(NearCacheIT.millisServedStale(() -> a.get(namespace, key).equals(java.util.Optional.of("\"new\""))))
            .isLessThanOrEqualTo(100);
      }
    }
  }

  @Test
  void theClusterIsHealthy() {
    assertThat(a.health().status()).isEqualTo(HealthStatus.HEALTHY);
    assertThat(a.getAll(ns, List.of("none"))).isEmpty();
  }
}
