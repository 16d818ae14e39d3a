package org.nisprotocol.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.lettuce.core.RedisURI;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.CircuitBreakerConfig;
import org.nisprotocol.core.ValidationException;

class RedisCacheConfigTest {

  @Test
  void defaultsAreTheDocumentedOnes() {
    RedisCacheConfig config = RedisCacheConfig.defaults();

    assertThat(config.host()).isEqualTo("localhost");
    assertThat(config.port()).isEqualTo(6379);
    assertThat(config.commandTimeout()).isEqualTo(Duration.ofMillis(250));
    assertThat(config.circuitBreaker()).isEqualTo(new CircuitBreakerConfig(3, Duration.ofSeconds(30), 2));
    assertThat(config.namespaceTtls().ttlFor("simulation")).isEqualTo(Duration.ofSeconds(7200));
    assertThat(config.namespaceTtls().ttlFor("system")).isEqualTo(Duration.ofSeconds(300));
    assertThat(config.nearCaches()).isEmpty();
    assertThat(config.clusterMode()).isFalse();
    assertThat(config.invalidationChannel()).isEqualTo("nis:cache:invalidate");
  }

  @Test
  void everyProblemIsReportedAtOnceWithItsValue() {
    assertThatThrownBy(
            () ->
                RedisCacheConfig.builder()
                    .host(" ")
                    .port(70_000)
                    .database(-1)
                    .username("agent")
                    .commandTimeout(Duration.ZERO)
                    .nearCache("bad ns", NearCache.defaults())
                    .scanBatchSize(0)
                    .build())
        .isInstanceOfSatisfying(
            ValidationException.class,
            e ->
                assertThat(e.problems())
                    .hasSize(7)
                    .anySatisfy(p -> assertThat(p).contains("port").contains("70000"))
                    .anySatisfy(p -> assertThat(p).contains("database").contains("-1"))
                    .anySatisfy(p -> assertThat(p).contains("username 'agent' needs a password"))
                    .anySatisfy(p -> assertThat(p).contains("commandTimeout").contains("PT0S"))
                    .anySatisfy(p -> assertThat(p).contains("bad ns"))
                    .anySatisfy(p -> assertThat(p).contains("scanBatchSize"))
                    .anySatisfy(p -> assertThat(p).contains("host")));
  }

  @Test
  void aClusterNeedsDatabaseZeroAndHostPortNodes() {
    assertThatThrownBy(
            () -> RedisCacheConfig.builder().clusterNodes(List.of("a:1", "b", "c:x")).database(2).build())
        .isInstanceOfSatisfying(
            ValidationException.class,
            e ->
                assertThat(e.problems())
                    .containsExactlyInAnyOrder(
                        "database must be 0 with a Redis Cluster, got 2",
                        "cluster node 'b' is not host:port",
                        "cluster node 'c:x' is not host:port"));
  }

  @Test
  void theEnvironmentOfTheRunbookMapsOntoTheConfig() {
    RedisCacheConfig config =
        RedisCacheConfig.fromEnvironment(
                Map.of(
                    "REDIS_HOST", "redis.internal",
                    "REDIS_PORT", "6380",
                    "REDIS_PASSWORD", "pw",
                    "REDIS_USERNAME", "agent",
                    "REDIS_TLS", "true",
                    "REDIS_DATABASE", "3",
                    "REDIS_COMMAND_TIMEOUT_MS", "100",
                    "REDIS_NEAR_CACHE", "memory=500:lru, goals=20:LFU,system"))
            .orElseThrow();

    assertThat(config.host()).isEqualTo("redis.internal");
    assertThat(config.port()).isEqualTo(6380);
    assertThat(config.password()).contains("pw");
    assertThat(config.username()).contains("agent");
    assertThat(config.tls()).isTrue();
    assertThat(config.database()).isEqualTo(3);
    assertThat(config.commandTimeout()).isEqualTo(Duration.ofMillis(100));
    assertThat(config.nearCaches())
        .containsEntry("memory", NearCache.lru(500))
        .containsEntry("goals", NearCache.lfu(20))
        .containsEntry("system", NearCache.defaults());
  }

  @Test
  void clusterNodesFromTheEnvironmentSwitchToClusterMode() {
    RedisCacheConfig config =
        RedisCacheConfig.fromEnvironment(Map.of("REDIS_CLUSTER_NODES", "r1:7000, r2:7001,r3:7002"))
            .orElseThrow();

    assertThat(config.clusterMode()).isTrue();
    assertThat(config.clusterNodes()).containsExactly("r1:7000", "r2:7001", "r3:7002");
  }

  @Test
  void noRedisVariablesMeansNoRedis() {
    assertThat(RedisCacheConfig.fromEnvironment(Map.of("REDIS_PORT", "6380"))).isEmpty();
  }

  @Test
  void badVariablesAreNamedWithTheirValues() {
    assertThatThrownBy(
            () ->
                RedisCacheConfig.fromEnvironment(
                    Map.of(
                        "REDIS_HOST", "h",
                        "REDIS_PORT", "eighty",
                        "REDIS_TLS", "maybe",
                        "REDIS_NEAR_CACHE", "memory=lots")))
        .isInstanceOfSatisfying(
            ValidationException.class,
            e ->
                assertThat(e.problems())
                    .containsExactlyInAnyOrder(
                        "REDIS_PORT='eighty' is not a whole number",
                        "REDIS_TLS='maybe' is not true or false",
                        "REDIS_NEAR_CACHE='memory=lots': near cache size 'lots' is not a whole number"));
  }

  @Test
  void thePasswordNeverShowsInToString() {
    RedisCacheConfig config = RedisCacheConfig.builder().password("s3cret-pw").username("agent").build();

    assertThat(config.toString()).doesNotContain("s3cret-pw").contains("password=***").contains("agent");
  }

  @Test
  void settingsReachTheLettuceUri() {
    RedisCacheConfig config =
        RedisCacheConfig.builder()
            .host("redis.internal")
            .port(6380)
            .username("agent")
            .password("pw")
            .tls(true)
            .database(4)
            .build();

    RedisURI uri = RedisLink.uris(config).get(0);

    assertThat(uri.getHost()).isEqualTo("redis.internal");
    assertThat(uri.getPort()).isEqualTo(6380);
    assertThat(uri.isSsl()).isTrue();
    assertThat(uri.isVerifyPeer()).isTrue();
    assertThat(uri.getDatabase()).isEqualTo(4);
    assertThat(uri.getCredentialsProvider().resolveCredentials().block().getUsername()).isEqualTo("agent");
    assertThat(new String(uri.getCredentialsProvider().resolveCredentials().block().getPassword())).isEqualTo("pw");
  }

  @Test
  void eachClusterNodeBecomesASeedUri() {
    RedisCacheConfig config = RedisCacheConfig.builder().clusterNodes(List.of("a:7000", "[::1]:7001")).build();

    assertThat(RedisLink.uris(config))
        .extracting(RedisURI::getHost, RedisURI::getPort)
        .containsExactly(
            org.assertj.core.groups.Tuple.tuple("a", 7000), org.assertj.core.groups.Tuple.tuple("::1", 7001));
  }
}
