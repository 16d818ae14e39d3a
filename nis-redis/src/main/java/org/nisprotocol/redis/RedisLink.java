package org.nisprotocol.redis;

import io.lettuce.core.AbstractRedisClient;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisChannelHandler;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisConnectionStateListener;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.StatefulConnection;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.ClusterClientOptions;
import io.lettuce.core.cluster.ClusterTopologyRefreshOptions;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.cluster.models.partitions.RedisClusterNode;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.pubsub.RedisPubSubListener;
import io.lettuce.core.pubsub.StatefulRedisPubSubConnection;
import io.lettuce.core.resource.ClientResources;
import io.lettuce.core.resource.DefaultClientResources;
import io.lettuce.core.resource.Delay;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.nisprotocol.core.NisException;
import org.nisprotocol.core.RetriableException;

/**
 * The Lettuce side of the cache: one client (standalone or cluster), one multiplexed connection
 * for commands and one pub/sub connection for near-cache invalidations. Hides which of the two
 * modes runs: both expose {@link RedisClusterAsyncCommands}, and raw commands are dispatched on the
 * connection (the cluster connection routes them by their first key).
 */
final class RedisLink implements AutoCloseable {
  private final ClientResources resources;
  private final AbstractRedisClient client;
  private final StatefulConnection<String, String> connection;
  private final RedisClusterAsyncCommands<String, String> async;
  private final StatefulRedisPubSubConnection<String, String> pubSub;

  private RedisLink(
      ClientResources resources,
      AbstractRedisClient client,
      StatefulConnection<String, String> connection,
      RedisClusterAsyncCommands<String, String> async,
      StatefulRedisPubSubConnection<String, String> pubSub) {
    this.resources = resources;
    this.client = client;
    this.connection = connection;
    this.async = async;
    this.pubSub = pubSub;
  }

  /**
   * Connects and subscribes the listener to the invalidation channel; {@code onPubSubDown} runs
   * whenever the pub/sub connection drops (Lettuce reconnects and subscribes again by itself, and
   * the listener hears {@code subscribed} then).
   *
   * @throws NisException when Redis refuses the credentials (not worth retrying)
   * @throws RetriableException when Redis cannot be reached
   */
  static RedisLink connect(
      RedisCacheConfig config, RedisPubSubListener<String, String> listener, Runnable onPubSubDown) {
    ClientResources resources =
        DefaultClientResources.builder()
            .ioThreadPoolSize(2)
            .computationThreadPoolSize(2)
            // reconnect attempts back off from 10 ms to at most 2 s, so a returning Redis is found fast
            .reconnectDelay(
                Delay.exponential(Duration.ofMillis(10), Duration.ofSeconds(2), 2, TimeUnit.MILLISECONDS))
            .build();
    AbstractRedisClient client = null;
    try {
      StatefulConnection<String, String> connection;
      RedisClusterAsyncCommands<String, String> async;
      StatefulRedisPubSubConnection<String, String> pubSub;
      if (config.clusterMode()) {
        RedisClusterClient cluster = RedisClusterClient.create(resources, uris(config));
        client = cluster;
        cluster.setOptions(
            ClusterClientOptions.builder()
                .autoReconnect(true)
                .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                .timeoutOptions(TimeoutOptions.enabled(config.commandTimeout()))
                .socketOptions(socketOptions(config))
                .topologyRefreshOptions(
                    // adaptive triggers (MOVED, ASK, reconnects...) are on by default in Lettuce 7
                    ClusterTopologyRefreshOptions.builder()
                        .enablePeriodicRefresh(Duration.ofSeconds(30))
                        .build())
                .build());
        StatefulRedisClusterConnection<String, String> c = cluster.connect(StringCodec.UTF8);
        // Lettuce opens node connections on first use, and rejects commands to a node while its
        // connection is not up (REJECT_COMMANDS): open them all now, so that first calls work.
        for (RedisClusterNode node : c.getPartitions()) {
          c.getConnection(node.getNodeId());
          c.getConnection(node.getUri().getHost(), node.getUri().getPort());
        }
        connection = c;
        async = c.async();
        pubSub = cluster.connectPubSub(StringCodec.UTF8);
      } else {
        RedisClient standalone = RedisClient.create(resources, uris(config).get(0));
        client = standalone;
        standalone.setOptions(
            ClientOptions.builder()
                .autoReconnect(true)
                .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                .timeoutOptions(TimeoutOptions.enabled(config.commandTimeout()))
                .socketOptions(socketOptions(config))
                .build());
        StatefulRedisConnection<String, String> c = standalone.connect(StringCodec.UTF8);
        connection = c;
        async = c.async();
        pubSub = standalone.connectPubSub(StringCodec.UTF8);
      }
      pubSub.addListener(listener);
      pubSub.addListener(
          new RedisConnectionStateListener() {
            @Override
            public void onRedisDisconnected(RedisChannelHandler<?, ?> handler) {
              onPubSubDown.run();
            }
          });
      pubSub.async().subscribe(config.invalidationChannel()).get(config.connectTimeout().toMillis(), TimeUnit.MILLISECONDS);
      return new RedisLink(resources, client, connection, async, pubSub);
    } catch (Exception e) {
      shutdown(client, resources);
      throw connectFailure(config, e);
    }
  }

  RedisClusterAsyncCommands<String, String> async() {
    return async;
  }

  StatefulConnection<String, String> connection() {
    return connection;
  }

  /** Whether the invalidation subscription's connection is up. */
  boolean pubSubOpen() {
    return pubSub.isOpen();
  }

  @Override
  public void close() {
    try {
      pubSub.close();
      connection.close();
    } catch (RuntimeException e) {
      // closing anyway
    }
    shutdown(client, resources);
  }

  /** The Lettuce URIs of the configuration: the host, or each cluster seed node. */
  static List<RedisURI> uris(RedisCacheConfig config) {
    List<String> nodes =
        config.clusterMode() ? config.clusterNodes() : List.of(config.host() + ":" + config.port());
    List<RedisURI> uris = new ArrayList<>();
    for (String node : nodes) {
      int colon = node.lastIndexOf(':');
      String host = node.substring(0, colon);
      if (host.startsWith("[") && host.endsWith("]")) {
        host = host.substring(1, host.length() - 1);
      }
      RedisURI.Builder uri =
          RedisURI.builder()
              .withHost(host)
              .withPort(Integer.parseInt(node.substring(colon + 1)))
              .withSsl(config.tls())
              .withDatabase(config.database())
              // the handshake (HELLO, AUTH, SELECT) gets the connect timeout; commands get
              // commandTimeout through TimeoutOptions
              .withTimeout(config.connectTimeout())
              .withClientName("nis-cache");
      if (config.password().isPresent()) {
        if (config.username().isPresent()) {
          uri.withAuthentication(config.username().get(), config.password().get());
        } else {
          uri.withPassword(config.password().get());
        }
      }
      uris.add(uri.build());
    }
    return uris;
  }

  private static SocketOptions socketOptions(RedisCacheConfig config) {
    return SocketOptions.builder()
        .connectTimeout(config.connectTimeout())
        .keepAlive(true)
        .tcpNoDelay(true)
        .build();
  }

  private static RuntimeException connectFailure(RedisCacheConfig config, Exception e) {
    String serverSays = credentialError(e);
    if (serverSays != null) {
      return new NisException(
          "Redis at "
              + config.target()
              + " refused the credentials ("
              + serverSays
              + "): check REDIS_PASSWORD"
              + (config.username().isPresent() ? " and REDIS_USERNAME" : " (and REDIS_USERNAME for an ACL user)"),
          e);
    }
    if (e instanceof InterruptedException) {
      Thread.currentThread().interrupt();
    }
    return new RetriableException(
        "Redis at "
            + config.target()
            + " cannot be reached ("
            + rootMessage(e)
            + "); check REDIS_HOST/REDIS_PORT (or REDIS_CLUSTER_NODES) and that Redis runs",
        e);
  }

  /** The server's authentication error in the chain, if that is why connecting failed. */
  private static String credentialError(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      String message = t.getMessage();
      if (message != null
          && (message.startsWith("WRONGPASS")
              || message.startsWith("NOAUTH")
              || message.contains("invalid password")
              || message.contains("invalid username-password")
              || message.contains("AUTH <password> called without any password"))) {
        return message;
      }
    }
    return null;
  }

  private static String rootMessage(Throwable e) {
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    return root.getMessage() == null ? root.getClass().getSimpleName() : root.getMessage();
  }

  private static void shutdown(AbstractRedisClient client, ClientResources resources) {
    if (client != null) {
      client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
    }
    resources.shutdown(0, 2, TimeUnit.SECONDS);
  }
}
