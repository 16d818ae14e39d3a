package org.nisprotocol.kafka;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import org.nisprotocol.core.CircuitBreakerConfig;
import org.nisprotocol.core.RetryPolicy;
import org.nisprotocol.core.ValidationException;

/**
 * Settings of the Kafka message bus. Immutable; build with {@link #builder(String)}, which starts
 * from the documented defaults.
 *
 * @param bootstrapServers comma-separated host:port list ({@code KAFKA_BOOTSTRAP_SERVERS})
 * @param clientId client id prefix (default "nis")
 * @param securityProtocol PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (default PLAINTEXT)
 * @param saslMechanism e.g. PLAIN or SCRAM-SHA-512, with SASL protocols
 * @param saslUsername SASL user
 * @param saslPassword SASL password
 * @param sslTruststoreLocation trust store of the brokers' CA (PEM or JKS)
 * @param sslTruststorePassword its password, for JKS
 * @param topicPartitions partitions of topics the bus creates (default 6); the last one is the
 *     urgent lane for high and critical messages when there are two or more
 * @param replicationFactor replication of topics the bus creates (default 1; 3 in production)
 * @param minInsyncReplicas min.insync.replicas of topics the bus creates, when set
 * @param acks producer acks (default "all")
 * @param idempotence producer idempotence (default true)
 * @param lingerMs producer linger (default 10 ms); on topics of two or more partitions, high and
 *     critical messages have a producer of their own without it
 * @param batchSize producer batch size in bytes (default 16384)
 * @param compressionType none, gzip, snappy, lz4 or zstd (default snappy)
 * @param maxInFlightBytes bytes of messages sent and not yet acknowledged, at most (default 32
 *     MiB); past it publishers wait (backpressure), so a burst never looks like a broker failure
 * @param sendTimeout how long a send may take before the message goes to the spool (default
 *     15 s; Kafka's delivery.timeout.ms)
 * @param maxContentBytes largest message accepted, as encoded JSON (default 1 MiB)
 * @param retryPolicy redeliveries of a failing handler before dead-lettering
 * @param circuitBreaker the breaker around publishing (default 5 failures, 60 s open, one
 *     successful probe closes it)
 * @param spoolDirectory where accepted messages wait while Kafka is unreachable, and the journal
 *     of records in the handlers' hands; one bus's alone (locked while the bus is open)
 * @param spoolMaxBytes bound of the spool (default 1 GiB); past it publishing fails
 * @param spoolFsync force each spooled message to disk (survives power loss; slower)
 * @param maxPollRecords records per poll (default 100)
 * @param sessionTimeout consumer session timeout (default 30 s)
 * @param partitionQueueLimit records buffered per partition before its fetching pauses
 * @param shutdownTimeout how long close may take (default 30 s)
 * @param longHandlerWarning a handler running this long is named in a warning (again after each
 *     further such time) and counted in {@code nis.consumer.handlers.overdue} (default 60 s): its
 *     partition waits for it, and one that never returns holds the partition
 * @param clientProperties further Kafka client properties, applied last (the urgent lane's producer
 *     then gets {@code linger.ms} 0 and a {@code client.id} of its own)
 */
public record KafkaBusConfig(
    String bootstrapServers,
    String clientId,
    String securityProtocol,
    Optional<String> saslMechanism,
    Optional<String> saslUsername,
    Optional<String> saslPassword,
    Optional<Path> sslTruststoreLocation,
    Optional<String> sslTruststorePassword,
    int topicPartitions,
    short replicationFactor,
    Optional<Integer> minInsyncReplicas,
    String acks,
    boolean idempotence,
    int lingerMs,
    int batchSize,
    String compressionType,
    long maxInFlightBytes,
    Duration sendTimeout,
    int maxContentBytes,
    RetryPolicy retryPolicy,
    CircuitBreakerConfig circuitBreaker,
    Path spoolDirectory,
    long spoolMaxBytes,
    boolean spoolFsync,
    int maxPollRecords,
    Duration sessionTimeout,
    int partitionQueueLimit,
    Duration shutdownTimeout,
    Duration longHandlerWarning,
    Map<String, String> clientProperties) {

  public static final int DEFAULT_MAX_CONTENT_BYTES = 1024 * 1024;
  public static final CircuitBreakerConfig DEFAULT_CIRCUIT_BREAKER =
      new CircuitBreakerConfig(5, Duration.ofSeconds(60), 1);

  private static final Set<String> PROTOCOLS = Set.of("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL");
  private static final Set<String> COMPRESSIONS = Set.of("none", "gzip", "snappy", "lz4", "zstd");

  /**
   * @throws ValidationException listing every field that is wrong, with its value
   */
  public KafkaBusConfig {
    List<String> problems = new ArrayList<>();
    if (bootstrapServers == null || bootstrapServers.isBlank()) {
      problems.add("bootstrapServers must name at least one host:port");
    }
    if (!PROTOCOLS.contains(securityProtocol)) {
      problems.add("securityProtocol '" + securityProtocol + "' is not one of " + PROTOCOLS);
    } else if (securityProtocol.startsWith("SASL") && saslMechanism.isEmpty()) {
      problems.add("securityProtocol " + securityProtocol + " needs a saslMechanism");
    }
    if (!COMPRESSIONS.contains(compressionType)) {
      problems.add("compressionType '" + compressionType + "' is not one of " + COMPRESSIONS);
    }
    if (topicPartitions < 1) {
      problems.add("topicPartitions must be at least 1, got " + topicPartitions);
    }
    if (replicationFactor < 1) {
      problems.add("replicationFactor must be at least 1, got " + replicationFactor);
    }
    if (maxContentBytes < 1) {
      problems.add("maxContentBytes must be positive, got " + maxContentBytes);
    }
    if (spoolMaxBytes < 1024) {
      problems.add("spoolMaxBytes must be at least 1024, got " + spoolMaxBytes);
    }
    if (maxPollRecords < 1) {
      problems.add("maxPollRecords must be positive, got " + maxPollRecords);
    }
    if (partitionQueueLimit < 1) {
      problems.add("partitionQueueLimit must be positive, got " + partitionQueueLimit);
    }
    if (maxInFlightBytes < 1024 * 1024 || maxInFlightBytes > Integer.MAX_VALUE) {
      problems.add("maxInFlightBytes must be 1 MiB to 2 GiB, got " + maxInFlightBytes);
    }
    if (sendTimeout.toMillis() < 1000) {
      problems.add("sendTimeout must be at least 1 s, got " + sendTimeout);
    }
    if (longHandlerWarning.toMillis() < 1) {
      problems.add("longHandlerWarning must be at least 1 ms, got " + longHandlerWarning);
    }
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
    clientProperties = Map.copyOf(clientProperties);
  }

  /** The defaults, for brokers at the given bootstrap servers. */
  public static Builder builder(String bootstrapServers) {
    return new Builder(bootstrapServers);
  }

  /** A builder starting from this configuration. */
  public Builder toBuilder() {
    Builder b = new Builder(bootstrapServers);
    b.clientId = clientId;
    b.securityProtocol = securityProtocol;
    b.saslMechanism = saslMechanism;
    b.saslUsername = saslUsername;
    b.saslPassword = saslPassword;
    b.sslTruststoreLocation = sslTruststoreLocation;
    b.sslTruststorePassword = sslTruststorePassword;
    b.topicPartitions = topicPartitions;
    b.replicationFactor = replicationFactor;
    b.minInsyncReplicas = minInsyncReplicas;
    b.acks = acks;
    b.idempotence = idempotence;
    b.lingerMs = lingerMs;
    b.batchSize = batchSize;
    b.compressionType = compressionType;
    b.maxInFlightBytes = maxInFlightBytes;
    b.sendTimeout = sendTimeout;
    b.maxContentBytes = maxContentBytes;
    b.retryPolicy = retryPolicy;
    b.circuitBreaker = circuitBreaker;
    b.spoolDirectory = spoolDirectory;
    b.spoolMaxBytes = spoolMaxBytes;
    b.spoolFsync = spoolFsync;
    b.maxPollRecords = maxPollRecords;
    b.sessionTimeout = sessionTimeout;
    b.partitionQueueLimit = partitionQueueLimit;
    b.shutdownTimeout = shutdownTimeout;
    b.longHandlerWarning = longHandlerWarning;
    b.clientProperties = clientProperties;
    return b;
  }

  /** Builds a {@link KafkaBusConfig}; every setter has a documented default. */
  public static final class Builder {
    private final String bootstrapServers;
    private String clientId = "nis";
    private String securityProtocol = "PLAINTEXT";
    private Optional<String> saslMechanism = Optional.empty();
    private Optional<String> saslUsername = Optional.empty();
    private Optional<String> saslPassword = Optional.empty();
    private Optional<Path> sslTruststoreLocation = Optional.empty();
    private Optional<String> sslTruststorePassword = Optional.empty();
    private int topicPartitions = 6;
    private short replicationFactor = 1;
    private Optional<Integer> minInsyncReplicas = Optional.empty();
    private String acks = "all";
    private boolean idempotence = true;
    private int lingerMs = 10;
    private int batchSize = 16_384;
    private String compressionType = "snappy";
    private long maxInFlightBytes = 32L * 1024 * 1024;
    private Duration sendTimeout = Duration.ofSeconds(15);
    private int maxContentBytes = DEFAULT_MAX_CONTENT_BYTES;
    private RetryPolicy retryPolicy = RetryPolicy.defaults();
    private CircuitBreakerConfig circuitBreaker = DEFAULT_CIRCUIT_BREAKER;
    private Path spoolDirectory = Path.of("var", "spool");
    private long spoolMaxBytes = 1024L * 1024 * 1024;
    private boolean spoolFsync = false;
    private int maxPollRecords = 100;
    private Duration sessionTimeout = Duration.ofSeconds(30);
    private int partitionQueueLimit = 500;
    private Duration shutdownTimeout = Duration.ofSeconds(30);
    private Duration longHandlerWarning = Duration.ofSeconds(60);
    private Map<String, String> clientProperties = Map.of();

    private Builder(String bootstrapServers) {
      this.bootstrapServers = bootstrapServers;
    }

    public Builder clientId(String value) {
      clientId = Objects.requireNonNull(value);
      return this;
    }

    public Builder securityProtocol(String value) {
      securityProtocol = Objects.requireNonNull(value);
      return this;
    }

    public Builder sasl(String mechanism, String username, String password) {
      saslMechanism = Optional.of(mechanism);
      saslUsername = Optional.of(username);
      saslPassword = Optional.of(password);
      return this;
    }

    public Builder sslTruststore(Path location, String password) {
      sslTruststoreLocation = Optional.of(location);
      sslTruststorePassword = Optional.ofNullable(password);
      return this;
    }

    public Builder topicPartitions(int value) {
      topicPartitions = value;
      return this;
    }

    public Builder replicationFactor(int value) {
      replicationFactor = (short) value;
      return this;
    }

    public Builder minInsyncReplicas(int value) {
      minInsyncReplicas = Optional.of(value);
      return this;
    }

    public Builder acks(String value) {
      acks = Objects.requireNonNull(value);
      return this;
    }

    public Builder idempotence(boolean value) {
      idempotence = value;
      return this;
    }

    public Builder lingerMs(int value) {
      lingerMs = value;
      return this;
    }

    public Builder batchSize(int value) {
      batchSize = value;
      return this;
    }

    public Builder compressionType(String value) {
      compressionType = Objects.requireNonNull(value);
      return this;
    }

    public Builder maxInFlightBytes(long value) {
      maxInFlightBytes = value;
      return this;
    }

    public Builder sendTimeout(Duration value) {
      sendTimeout = Objects.requireNonNull(value);
      return this;
    }

    public Builder maxContentBytes(int value) {
      maxContentBytes = value;
      return this;
    }

    public Builder retryPolicy(RetryPolicy value) {
      retryPolicy = Objects.requireNonNull(value);
      return this;
    }

    public Builder circuitBreaker(CircuitBreakerConfig value) {
      circuitBreaker = Objects.requireNonNull(value);
      return this;
    }

    public Builder spoolDirectory(Path value) {
      spoolDirectory = Objects.requireNonNull(value);
      return this;
    }

    public Builder spoolMaxBytes(long value) {
      spoolMaxBytes = value;
      return this;
    }

    public Builder spoolFsync(boolean value) {
      spoolFsync = value;
      return this;
    }

    public Builder maxPollRecords(int value) {
      maxPollRecords = value;
      return this;
    }

    public Builder sessionTimeout(Duration value) {
      sessionTimeout = Objects.requireNonNull(value);
      return this;
    }

    public Builder partitionQueueLimit(int value) {
      partitionQueueLimit = value;
      return this;
    }

    public Builder shutdownTimeout(Duration value) {
      shutdownTimeout = Objects.requireNonNull(value);
      return this;
    }

    public Builder longHandlerWarning(Duration value) {
      longHandlerWarning = Objects.requireNonNull(value);
      return this;
    }

    public Builder clientProperties(Map<String, String> value) {
      clientProperties = Map.copyOf(value);
      return this;
    }

    /**
     * @throws ValidationException listing every field that is wrong
     */
    public KafkaBusConfig build() {
      return new KafkaBusConfig(
          bootstrapServers, clientId, securityProtocol, saslMechanism, saslUsername, saslPassword,
          sslTruststoreLocation, sslTruststorePassword, topicPartitions, replicationFactor,
          minInsyncReplicas, acks, idempotence, lingerMs, batchSize, compressionType, maxInFlightBytes,
          sendTimeout,
          maxContentBytes, retryPolicy, circuitBreaker, spoolDirectory, spoolMaxBytes, spoolFsync,
          maxPollRecords, sessionTimeout, partitionQueueLimit, shutdownTimeout, longHandlerWarning,
          clientProperties);
    }
  }
}
