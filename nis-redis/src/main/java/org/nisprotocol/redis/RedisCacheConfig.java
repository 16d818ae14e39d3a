package org.nisprotocol.redis;

import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import org.nisprotocol.core.CacheKeys;
import org.nisprotocol.core.CircuitBreakerConfig;
import org.nisprotocol.core.NamespaceTtls;
import org.nisprotocol.core.ValidationException;

/**
 * Settings of the Redis cache. Immutable; build with {@link #builder()}, which starts from the
 * documented defaults, or read the runbook's environment variables with {@link
 * #fromEnvironment(Map)}. {@link #toString()} never shows the password.
 *
 * @param host Redis host, standalone mode ({@code REDIS_HOST}, default "localhost")
 * @param port Redis port ({@code REDIS_PORT}, default {@value #DEFAULT_PORT})
 * @param username ACL user ({@code REDIS_USERNAME}); without it the password is for the default
 *     user ({@code requirepass})
 * @param password password ({@code REDIS_PASSWORD})
 * @param tls connect with TLS, verifying the server's certificate ({@code REDIS_TLS}, default off)
 * @param database database index ({@code REDIS_DATABASE}, default 0; must be 0 with a cluster)
 * @param clusterNodes seed nodes of a Redis Cluster as {@code host:port} ({@code
 *     REDIS_CLUSTER_NODES}, comma-separated); when not empty the cache runs in cluster mode and
 *     {@code host}/{@code port} are not used
 * @param commandTimeout how long one Redis command may take before the call falls back (default
 *     250 ms)
 * @param connectTimeout how long connecting may take (default 5 s)
 * @param circuitBreaker the breaker in front of Redis (default 3 consecutive failures open it for
 *     30 s; 2 successful probes close it)
 * @param namespaceTtls default TTL of each namespace
 * @param nearCaches namespaces with a near cache, and its size and eviction policy (default none)
 * @param fallbackBytes bound on the approximate memory (two bytes a character) of the entries
 *     this instance keeps from its own writes, to answer reads of namespaces without a near cache
 *     while Redis is unreachable (default 64 MiB; 0 keeps none)
 * @param healthProbeInterval how often Redis is pinged to keep {@link RedisCache#health()} current
 *     and to close the breaker without waiting for traffic (default 1 s)
 * @param scanBatchSize keys per SCAN page and per UNLINK when a namespace is cleared (default
 *     {@value #DEFAULT_SCAN_BATCH_SIZE})
 * @param invalidationChannel pub/sub channel of near-cache invalidations (default {@value
 *     #DEFAULT_INVALIDATION_CHANNEL})
 * @param clock time of the circuit breaker (tests pass a manual clock)
 */
public record RedisCacheConfig(
    String host,
    int port,
    Optional<String> username,
    Optional<String> password,
    boolean tls,
    int database,
    List<String> clusterNodes,
    Duration commandTimeout,
    Duration connectTimeout,
    CircuitBreakerConfig circuitBreaker,
    NamespaceTtls namespaceTtls,
    Map<String, NearCache> nearCaches,
    long fallbackBytes,
    Duration healthProbeInterval,
    int scanBatchSize,
    String invalidationChannel,
    InstantSource clock) {

  public static final String DEFAULT_HOST = "localhost";
  public static final int DEFAULT_PORT = 6379;
  public static final Duration DEFAULT_COMMAND_TIMEOUT = Duration.ofMillis(250);
  public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(5);
  /** The original's Redis breaker: 3 failures, 30 s open; 2 successful probes close it. */
  public static final CircuitBreakerConfig DEFAULT_CIRCUIT_BREAKER =
      new CircuitBreakerConfig(3, Duration.ofSeconds(30), 2);
  public static final long DEFAULT_FALLBACK_BYTES = 64L * 1024 * 1024;
  public static final Duration DEFAULT_HEALTH_PROBE_INTERVAL = Duration.ofSeconds(1);
  public static final int DEFAULT_SCAN_BATCH_SIZE = 500;
  public static final String DEFAULT_INVALIDATION_CHANNEL = "nis:cache:invalidate";

  /**
   * @throws ValidationException listing every field that is wrong, with its value
   */
  public RedisCacheConfig {
    Objects.requireNonNull(username, "username");
    Objects.requireNonNull(password, "password");
    Objects.requireNonNull(clusterNodes, "clusterNodes");
    Objects.requireNonNull(commandTimeout, "commandTimeout");
    Objects.requireNonNull(connectTimeout, "connectTimeout");
    Objects.requireNonNull(circuitBreaker, "circuitBreaker");
    Objects.requireNonNull(namespaceTtls, "namespaceTtls");
    Objects.requireNonNull(nearCaches, "nearCaches");
    Objects.requireNonNull(healthProbeInterval, "healthProbeInterval");
    Objects.requireNonNull(clock, "clock");
    List<String> problems = new ArrayList<>();
    if (clusterNodes.isEmpty() && (host == null || host.isBlank())) {
      problems.add("host must be set (or clusterNodes), got '" + host + "'");
    }
    if (port < 1 || port > 65_535) {
      problems.add("port must be 1-65535, got " + port);
    }
    if (database < 0) {
      problems.add("database must not be negative, got " + database);
    }
    if (!clusterNodes.isEmpty() && database != 0) {
      problems.add("database must be 0 with a Redis Cluster, got " + database);
    }
    for (String node : clusterNodes) {
      if (!isHostAndPort(node)) {
        problems.add("cluster node '" + node + "' is not host:port");
      }
    }
    if (username.isPresent() && password.isEmpty()) {
      problems.add("username '" + username.get() + "' needs a password");
    }
    if (username.filter(String::isBlank).isPresent()) {
      problems.add("username must not be blank");
    }
    if (commandTimeout.toMillis() < 1) {
      problems.add("commandTimeout must be at least 1 ms, got " + commandTimeout);
    }
    if (connectTimeout.toMillis() < 1) {
      problems.add("connectTimeout must be at least 1 ms, got " + connectTimeout);
    }
    nearCaches.forEach(
        (namespace, nearCache) -> {
          try {
            CacheKeys.requireValidNamespace(namespace);
            Objects.requireNonNull(nearCache, "near cache of " + namespace);
          } catch (ValidationException | NullPointerException e) {
            problems.add("nearCaches " + namespace + ": " + e.getMessage());
          }
        });
    if (fallbackBytes < 0) {
      problems.add("fallbackBytes must not be negative, got " + fallbackBytes);
    }
    if (healthProbeInterval.toMillis() < 1) {
      problems.add("healthProbeInterval must be at least 1 ms, got " + healthProbeInterval);
    }
    if (scanBatchSize < 1) {
      problems.add("scanBatchSize must be at least 1, got " + scanBatchSize);
    }
    if (invalidationChannel == null || invalidationChannel.isBlank()) {
      problems.add("invalidationChannel must not be blank");
    }
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
    clusterNodes = List.copyOf(clusterNodes);
    nearCaches = Map.copyOf(nearCaches);
  }

  /** The defaults: Redis at localhost:6379, no password, no near cache. */
  public static RedisCacheConfig defaults() {
    return builder().build();
  }

  /** A builder starting from the defaults. */
  public static Builder builder() {
    return new Builder();
  }

  /** A builder starting from this configuration. */
  public Builder toBuilder() {
    Builder b = new Builder();
    b.host = host;
    b.port = port;
    b.username = username;
    b.password = password;
    b.tls = tls;
    b.database = database;
    b.clusterNodes = clusterNodes;
    b.commandTimeout = commandTimeout;
    b.connectTimeout = connectTimeout;
    b.circuitBreaker = circuitBreaker;
    b.namespaceTtls = namespaceTtls;
    b.nearCaches = new LinkedHashMap<>(nearCaches);
    b.fallbackBytes = fallbackBytes;
    b.healthProbeInterval = healthProbeInterval;
    b.scanBatchSize = scanBatchSize;
    b.invalidationChannel = invalidationChannel;
    b.clock = clock;
    return b;
  }

  /** Whether the cache talks to a Redis Cluster. */
  public boolean clusterMode() {
    return !clusterNodes.isEmpty();
  }

  /** Where the cache connects, for messages: {@code host:port} or the cluster node list. */
  public String target() {
    return clusterMode() ? "cluster " + String.join(",", clusterNodes) : host + ":" + port;
  }

  /**
   * The configuration the runbook's environment variables describe, or empty when neither {@code
   * REDIS_HOST} nor {@code REDIS_CLUSTER_NODES} is set (the service then runs the embedded cache).
   *
   * <table>
   *   <caption>Variables</caption>
   *   <tr><th>Variable</th><th>Default</th><th>Meaning</th></tr>
   *   <tr><td>REDIS_HOST</td><td></td><td>standalone Redis host</td></tr>
   *   <tr><td>REDIS_PORT</td><td>6379</td><td>its port</td></tr>
   *   <tr><td>REDIS_PASSWORD</td><td></td><td>password (requirepass, or of the ACL user)</td></tr>
   *   <tr><td>REDIS_USERNAME</td><td></td><td>ACL user</td></tr>
   *   <tr><td>REDIS_TLS</td><td>false</td><td>true to connect with TLS</td></tr>
   *   <tr><td>REDIS_DATABASE</td><td>0</td><td>database index</td></tr>
   *   <tr><td>REDIS_CLUSTER_NODES</td><td></td><td>host:port,host:port seeds of a cluster</td></tr>
   *   <tr><td>REDIS_COMMAND_TIMEOUT_MS</td><td>250</td><td>command timeout</td></tr>
   *   <tr><td>REDIS_NEAR_CACHE</td><td></td><td>near-cached namespaces:
   *       {@code ns[=maxEntries[:adaptive|lru|lfu]]}, comma-separated</td></tr>
   * </table>
   *
   * @throws ValidationException naming every variable that is wrong, with its value
   */
  public static Optional<RedisCacheConfig> fromEnvironment(Map<String, String> environment) {
    Optional<String> host = nonBlank(environment.get("REDIS_HOST"));
    Optional<String> nodes = nonBlank(environment.get("REDIS_CLUSTER_NODES"));
    if (host.isEmpty() && nodes.isEmpty()) {
      return Optional.empty();
    }
    List<String> problems = new ArrayList<>();
    Builder b = builder();
    host.ifPresent(b::host);
    nonBlank(environment.get("REDIS_PORT"))
        .ifPresent(v -> b.port(wholeNumber("REDIS_PORT", v, problems)));
    nonBlank(environment.get("REDIS_PASSWORD")).ifPresent(b::password);
    nonBlank(environment.get("REDIS_USERNAME")).ifPresent(b::username);
    nonBlank(environment.get("REDIS_TLS")).ifPresent(v -> b.tls(bool("REDIS_TLS", v, problems)));
    nonBlank(environment.get("REDIS_DATABASE"))
        .ifPresent(v -> b.database(wholeNumber("REDIS_DATABASE", v, problems)));
    nodes.ifPresent(
        v -> b.clusterNodes(List.of(v.trim().split("\\s*,\\s*"))));
    nonBlank(environment.get("REDIS_COMMAND_TIMEOUT_MS"))
        .ifPresent(
            v ->
                b.commandTimeout(
                    Duration.ofMillis(wholeNumber("REDIS_COMMAND_TIMEOUT_MS", v, problems))));
    nonBlank(environment.get("REDIS_NEAR_CACHE"))
        .ifPresent(v -> b.nearCaches(parseNearCaches(v, problems)));
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
    try {
      return Optional.of(b.build());
    } catch (ValidationException e) {
      throw new ValidationException(
          e.problems().stream().map(p -> "Redis settings from the environment: " + p).toList());
    }
  }

  @Override
  public String toString() {
    return "RedisCacheConfig[target="
        + target()
        + ", username="
        + username.orElse("-")
        + ", password="
        + (password.isPresent() ? "***" : "-")
        + ", tls="
        + tls
        + ", database="
        + database
        + ", commandTimeout="
        + commandTimeout
        + ", connectTimeout="
        + connectTimeout
        + ", circuitBreaker="
        + circuitBreaker
        + ", nearCaches="
        + nearCaches
        + ", fallbackBytes="
        + fallbackBytes
        + ", healthProbeInterval="
        + healthProbeInterval
        + ", scanBatchSize="
        + scanBatchSize
        + ", invalidationChannel="
        + invalidationChannel
        + "]";
  }

  private static Map<String, NearCache> parseNearCaches(String text, List<String> problems) {
    Map<String, NearCache> nearCaches = new LinkedHashMap<>();
    for (String item : text.split(",")) {
      if (item.isBlank()) {
        continue;
      }
      String[] parts = item.trim().split("=", 2);
      try {
        String namespace = CacheKeys.requireValidNamespace(parts[0].trim());
        nearCaches.put(namespace, parts.length == 2 ? NearCache.parse(parts[1]) : NearCache.defaults());
      } catch (ValidationException e) {
        problems.add("REDIS_NEAR_CACHE='" + text + "': " + e.getMessage());
      }
    }
    return nearCaches;
  }

  private static int wholeNumber(String variable, String value, List<String> problems) {
    try {
      return Integer.parseInt(value.trim());
    } catch (NumberFormatException e) {
      problems.add(variable + "='" + value + "' is not a whole number");
      return 0;
    }
  }

  private static boolean bool(String variable, String value, List<String> problems) {
    return switch (value.trim().toLowerCase(Locale.ROOT)) {
      case "true", "yes", "1", "on" -> true;
      case "false", "no", "0", "off" -> false;
      default -> {
        problems.add(variable + "='" + value + "' is not true or false");
        yield false;
      }
    };
  }

  private static Optional<String> nonBlank(String value) {
    return value == null || value.isBlank() ? Optional.empty() : Optional.of(value);
  }

  static boolean isHostAndPort(String node) {
    if (node == null) {
      return false;
    }
    int colon = node.lastIndexOf(':');
    if (colon < 1 || colon == node.length() - 1) {
      return false;
    }
    try {
      int port = Integer.parseInt(node.substring(colon + 1));
      return port >= 1 && port <= 65_535;
    } catch (NumberFormatException e) {
      return false;
    }
  }

  /** Builds a {@link RedisCacheConfig}; every setter has a documented default. Not thread-safe. */
  public static final class Builder {
    private String host = DEFAULT_HOST;
    private int port = DEFAULT_PORT;
    private Optional<String> username = Optional.empty();
    private Optional<String> password = Optional.empty();
    private boolean tls;
    private int database;
    private List<String> clusterNodes = List.of();
    private Duration commandTimeout = DEFAULT_COMMAND_TIMEOUT;
    private Duration connectTimeout = DEFAULT_CONNECT_TIMEOUT;
    private CircuitBreakerConfig circuitBreaker = DEFAULT_CIRCUIT_BREAKER;
    private NamespaceTtls namespaceTtls = NamespaceTtls.defaults();
    private Map<String, NearCache> nearCaches = new LinkedHashMap<>();
    private long fallbackBytes = DEFAULT_FALLBACK_BYTES;
    private Duration healthProbeInterval = DEFAULT_HEALTH_PROBE_INTERVAL;
    private int scanBatchSize = DEFAULT_SCAN_BATCH_SIZE;
    private String invalidationChannel = DEFAULT_INVALIDATION_CHANNEL;
    private InstantSource clock = InstantSource.system();

    private Builder() {}

    public Builder host(String host) {
      this.host = host;
      return this;
    }

    public Builder port(int port) {
      this.port = port;
      return this;
    }

    public Builder username(String username) {
      this.username = Optional.of(username);
      return this;
    }

    public Builder password(String password) {
      this.password = Optional.of(password);
      return this;
    }

    public Builder tls(boolean tls) {
      this.tls = tls;
      return this;
    }

    public Builder database(int database) {
      this.database = database;
      return this;
    }

    /** Seed nodes as {@code host:port}; a non-empty list switches to cluster mode. */
    public Builder clusterNodes(List<String> clusterNodes) {
      this.clusterNodes = List.copyOf(clusterNodes);
      return this;
    }

    public Builder commandTimeout(Duration commandTimeout) {
      this.commandTimeout = commandTimeout;
      return this;
    }

    public Builder connectTimeout(Duration connectTimeout) {
      this.connectTimeout = connectTimeout;
      return this;
    }

    public Builder circuitBreaker(CircuitBreakerConfig circuitBreaker) {
      this.circuitBreaker = circuitBreaker;
      return this;
    }

    public Builder namespaceTtls(NamespaceTtls namespaceTtls) {
      this.namespaceTtls = namespaceTtls;
      return this;
    }

    /** Gives one namespace a near cache. */
    public Builder nearCache(String namespace, NearCache nearCache) {
      this.nearCaches.put(namespace, nearCache);
      return this;
    }

    /** Replaces the near-cached namespaces. */
    public Builder nearCaches(Map<String, NearCache> nearCaches) {
      this.nearCaches = new LinkedHashMap<>(nearCaches);
      return this;
    }

    public Builder fallbackBytes(long fallbackBytes) {
      this.fallbackBytes = fallbackBytes;
      return this;
    }

    public Builder healthProbeInterval(Duration healthProbeInterval) {
      this.healthProbeInterval = healthProbeInterval;
      return this;
    }

    public Builder scanBatchSize(int scanBatchSize) {
      this.scanBatchSize = scanBatchSize;
      return this;
    }

    public Builder invalidationChannel(String invalidationChannel) {
      this.invalidationChannel = invalidationChannel;
      return this;
    }

    public Builder clock(InstantSource clock) {
      this.clock = clock;
      return this;
    }

    /**
     * @throws ValidationException listing every field that is wrong, with its value
     */
    public RedisCacheConfig build() {
      return new RedisCacheConfig(
          host,
          port,
          username,
          password,
          tls,
          database,
          clusterNodes,
          commandTimeout,
          connectTimeout,
          circuitBreaker,
          namespaceTtls,
          nearCaches,
          fallbackBytes,
          healthProbeInterval,
          scanBatchSize,
          invalidationChannel,
          clock);
    }
  }
}
