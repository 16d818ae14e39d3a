package org.nisprotocol.redis;

import java.time.Duration;
import org.nisprotocol.testkit.RedisServer;

/**
 * A config for tests of what the cache does rather than of how its commands time out (that is
 * {@link RedisResilienceIT}'s subject). The default 250 ms command timeout is shorter than the
 * pauses a loaded test machine gives a JVM, and a command that times out fails or is answered
 * locally, which is not what these tests look at.
 */
final class PatientConfig {
  static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(5);

  private PatientConfig() {}

  static RedisCacheConfig.Builder builder(RedisServer server) {
    return RedisCacheConfig.builder().host(server.host()).port(server.port()).commandTimeout(COMMAND_TIMEOUT);
  }
}
