package org.nisprotocol.redis;

import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import java.time.Duration;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.nisprotocol.testkit.RedisServer;

/** A plain Lettuce connection for tests to look at what the cache stored, and at server stats. */
final class RawRedis implements AutoCloseable {
  private final RedisClient client;
  private final StatefulRedisConnection<String, String> connection;

  RawRedis(RedisServer server) {
    this(server.host(), server.port(), server.password());
  }

  RawRedis(String host, int port, Optional<String> password) {
    RedisURI.Builder uri = RedisURI.builder().withHost(host).withPort(port).withTimeout(Duration.ofSeconds(5));
    password.ifPresent(uri::withPassword);
    client = RedisClient.create(uri.build());
    connection = client.connect();
  }

  RedisCommands<String, String> sync() {
    return connection.sync();
  }

  /** How many times the server ran the command since start ({@code INFO commandstats}). */
  long calls(String command) {
    Matcher m =
        Pattern.compile("cmdstat_" + command + ":calls=(\\d+)").matcher(sync().info("commandstats"));
    return m.find() ? Long.parseLong(m.group(1)) : 0;
  }

  @Override
  public void close() {
    connection.close();
    client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
  }
}
