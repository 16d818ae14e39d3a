package org.nisprotocol.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.HealthStatus;
import org.nisprotocol.core.NisException;
import org.nisprotocol.core.RetriableException;
import org.nisprotocol.testkit.RedisServer;

/** A Redis that requires a password, and an ACL user limited to the cache's keys. */
class RedisAuthIT {
  private static final String PASSWORD = "s3cret-pw";
  private static RedisServer redis;

  @BeforeAll
  static void start() {
    redis = RedisServer.builder().name("auth").password(PASSWORD).build();
    redis.start();
    try (RawRedis admin = new RawRedis(redis)) {
      // an agent may touch the cache's keys and the invalidation channel, nothing else
      admin.sync().aclSetuser("agent", io.lettuce.core.AclSetuserArgs.Builder.on()
          .addPassword("agent-pw")
          .keyPattern("nis:cache:*")
          .channelPattern("nis:cache:invalidate")
          .allCommands());
    }
  }

  @AfterAll
  static void stop() {
    redis.close();
  }

  private static RedisCacheConfig.Builder config() {
    return PatientConfig.builder(redis).nearCache("memory", NearCache.defaults());
  }

  @Test
  void theRightPasswordWorks() {
    try (RedisCache cache = RedisCache.create(config().password(PASSWORD).build())) {
      cache.put("memory", "k", "\"v\"");
      assertThat(cache.get("memory", "k")).contains("\"v\"");
    }
  }

  @Test
  void aWrongPasswordIsAClearPermanentError() {
    assertThatThrownBy(() -> RedisCache.create(config().password("wrong-pw").build()))
        .isInstanceOf(NisException.class)
        .isNotInstanceOf(RetriableException.class)
        .hasMessageContaining("Redis at " + redis.host() + ":" + redis.port() + " refused the credentials")
        .hasMessageContaining("check REDIS_PASSWORD")
        .satisfies(e -> assertThat(e.getMessage()).containsAnyOf("WRONGPASS", "invalid password"));
  }

  @Test
  void noPasswordIsAClearPermanentError() {
    assertThatThrownBy(() -> RedisCache.create(config().build()))
        .isInstanceOf(NisException.class)
        .isNotInstanceOf(RetriableException.class)
        .hasMessageContaining("refused the credentials")
        .hasMessageContaining("NOAUTH");
  }

  @Test
  void anAclUserWorksWithinItsKeysAndChannel() {
    try (RedisCache cache = RedisCache.create(config().username("agent").password("agent-pw").build())) {
      cache.put("memory", "k", "\"agent\"");
      assertThat(cache.get("memory", "k")).contains("\"agent\"");
      assertThat(cache.getAll("memory", List.of("k"))).containsEntry("k", "\"agent\"");
      assertThat(cache.clear("memory")).isEqualTo(1);
      assertThat(cache.health().status()).isEqualTo(HealthStatus.HEALTHY);
    }
  }

  @Test
  void aWrongAclPasswordNamesTheUsernameToCheck() {
    assertThatThrownBy(() -> RedisCache.create(config().username("agent").password("nope").build()))
        .isInstanceOf(NisException.class)
        .hasMessageContaining("WRONGPASS")
        .hasMessageContaining("REDIS_PASSWORD and REDIS_USERNAME");
  }
}
