package org.nisprotocol.server;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;
import org.nisprotocol.core.ErrorText;
import org.nisprotocol.core.ValidationException;
import org.nisprotocol.embedded.InMemoryMessageBusConfig;
import org.nisprotocol.kafka.KafkaBusConfig;
import org.nisprotocol.redis.RedisCacheConfig;

/**
 * How the service is set up, read once from the environment variables of the runbook and the
 * command line. This is the one place that reads them; see the README's Configuration table.
 *
 * @param host address to listen on ({@code NIS_HOST}, {@code --host}; default 0.0.0.0)
 * @param port HTTP port, 0 for any free one ({@code NIS_PORT}, {@code --port}; default 8000)
 * @param kafka the Kafka bus settings when {@code KAFKA_BOOTSTRAP_SERVERS} is set; else the
 *     embedded bus
 * @param redis the Redis cache settings when {@code REDIS_HOST} or {@code REDIS_CLUSTER_NODES} is
 *     set (see {@link RedisCacheConfig#fromEnvironment}); else the embedded cache
 * @param selfAudit audit every outgoing message ({@code ENABLE_SELF_AUDIT}; default true)
 * @param healthCheckInterval how often backends are probed ({@code
 *     NIS_HEALTH_CHECK_INTERVAL_SECONDS}; default 30)
 * @param shutdownDelay how long, once shutdown has begun, readiness answers 503 while the service
 *     still serves, so that load balancers stop sending it requests before it stops taking them
 *     ({@code NIS_SHUTDOWN_DELAY_SECONDS}; default 0)
 * @param maxMessageBytes the largest message either bus accepts, as JSON ({@code
 *     NIS_MAX_MESSAGE_BYTES}; default 1 MiB)
 */
public record ServiceConfig(
    String host,
    int port,
    Optional<KafkaBusConfig> kafka,
    Optional<RedisCacheConfig> redis,
    boolean selfAudit,
    Duration healthCheckInterval,
    Duration shutdownDelay,
    int maxMessageBytes) {
  public static final int DEFAULT_PORT = 8000;
  public static final String DEFAULT_HOST = "0.0.0.0";

  public ServiceConfig {
    Objects.requireNonNull(host, "host");
    Objects.requireNonNull(kafka, "kafka");
    Objects.requireNonNull(redis, "redis");
    Objects.requireNonNull(healthCheckInterval, "healthCheckInterval");
    Objects.requireNonNull(shutdownDelay, "shutdownDelay");
    if (maxMessageBytes < 1) {
      throw new ValidationException("maxMessageBytes must be at least 1, got " + maxMessageBytes);
    }
  }

  /** Embedded backends on the given port of 127.0.0.1 (for tests and samples). */
  public static ServiceConfig embedded(int port) {
    return new ServiceConfig(
        "127.0.0.1", port, Optional.empty(), Optional.empty(), true, Duration.ofSeconds(30), Duration.ZERO,
        InMemoryMessageBusConfig.DEFAULT_MAX_MESSAGE_BYTES);
  }

  /** These settings with another shutdown delay. */
  public ServiceConfig withShutdownDelay(Duration delay) {
    return new ServiceConfig(host, port, kafka, redis, selfAudit, healthCheckInterval, delay, maxMessageBytes);
  }

  /**
   * Reads the settings; flags win over variables.
   *
   * @throws ValidationException listing every bad value with its source
   */
  public static ServiceConfig from(Map<String, String> environment, List<String> arguments) {
    List<String> problems = new ArrayList<>();
    // Set but empty (NIS_PORT= in an env file) is unset, as for every other variable.
    String portText = nonBlank(environment.get("NIS_PORT")).orElse(Integer.toString(DEFAULT_PORT));
    String portSource = "NIS_PORT";
    String host = nonBlank(environment.get("NIS_HOST")).orElse(DEFAULT_HOST);
    for (int i = 0; i < arguments.size(); i++) {
      String argument = arguments.get(i);
      switch (argument) {
        case "--port", "--host" -> {
          if (i + 1 >= arguments.size()) {
            problems.add(argument + " needs a value");
            continue;
          }
          String value = arguments.get(++i);
          if (argument.equals("--port")) {
            portText = value;
            portSource = "--port";
          } else {
            host = value;
          }
        }
        default -> {
          if (argument.startsWith("--port=")) {
            portText = argument.substring("--port=".length());
            portSource = "--port";
          } else if (argument.startsWith("--host=")) {
            host = argument.substring("--host=".length());
          } else {
            problems.add("unknown argument '" + argument + "' (accepted: --port N, --host ADDRESS)");
          }
        }
      }
    }
    int port = parsePort(portSource, portText, problems);
    int maxMessageBytes =
        byteCount(environment, "NIS_MAX_MESSAGE_BYTES", problems).orElse(InMemoryMessageBusConfig.DEFAULT_MAX_MESSAGE_BYTES);
    Optional<KafkaBusConfig> kafka = kafka(environment, maxMessageBytes, problems);
    Optional<RedisCacheConfig> redis = Optional.empty();
    try {
      redis = RedisCacheConfig.fromEnvironment(environment);
    } catch (ValidationException e) {
      e.problems().forEach(problem -> problems.add("Redis: " + problem));
    }
    boolean selfAudit = flag(environment, "ENABLE_SELF_AUDIT", problems).orElse(true);
    Duration healthCheckInterval =
        seconds(environment, "NIS_HEALTH_CHECK_INTERVAL_SECONDS", 1, 86_400, problems).orElse(Duration.ofSeconds(30));
    Duration shutdownDelay = seconds(environment, "NIS_SHUTDOWN_DELAY_SECONDS", 0, 300, problems).orElse(Duration.ZERO);
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
    return new ServiceConfig(host, port, kafka, redis, selfAudit, healthCheckInterval, shutdownDelay, maxMessageBytes);
  }

  private static Optional<KafkaBusConfig> kafka(Map<String, String> env, int maxMessageBytes, List<String> problems) {
    Optional<String> servers = nonBlank(env.get("KAFKA_BOOTSTRAP_SERVERS"));
    if (servers.isEmpty()) {
      return Optional.empty();
    }
    KafkaBusConfig.Builder builder = KafkaBusConfig.builder(servers.get());
    nonBlank(env.get("KAFKA_CLIENT_ID")).ifPresent(builder::clientId);
    nonBlank(env.get("KAFKA_SECURITY_PROTOCOL")).ifPresent(builder::securityProtocol);
    Optional<String> mechanism = nonBlank(env.get("KAFKA_SASL_MECHANISM"));
    if (mechanism.isPresent()) {
      builder.sasl(
          mechanism.get(),
          env.getOrDefault("KAFKA_SASL_USERNAME", ""),
          env.getOrDefault("KAFKA_SASL_PASSWORD", ""));
    }
    nonBlank(env.get("KAFKA_SSL_TRUSTSTORE_LOCATION"))
        .ifPresent(path -> builder.sslTruststore(Path.of(path), env.get("KAFKA_SSL_TRUSTSTORE_PASSWORD")));
    integer(env, "KAFKA_TOPIC_PARTITIONS", problems, builder::topicPartitions);
    integer(env, "KAFKA_REPLICATION_FACTOR", problems, builder::replicationFactor);
    integer(env, "KAFKA_MIN_INSYNC_REPLICAS", problems, builder::minInsyncReplicas);
    nonBlank(env.get("KAFKA_COMPRESSION_TYPE")).ifPresent(builder::compressionType);
    builder.maxContentBytes(maxMessageBytes);
    nonBlank(env.get("NIS_SPOOL_DIR")).ifPresent(dir -> builder.spoolDirectory(Path.of(dir)));
    nonBlank(env.get("NIS_SPOOL_MAX_BYTES"))
        .ifPresent(
            text -> {
              try {
                builder.spoolMaxBytes(Long.parseLong(text));
              } catch (NumberFormatException e) {
                problems.add("NIS_SPOOL_MAX_BYTES='" + text + "' is not a number of bytes");
              }
            });
    flag(env, "NIS_SPOOL_FSYNC", problems).ifPresent(builder::spoolFsync);
    seconds(env, "NIS_SHUTDOWN_TIMEOUT_SECONDS", 1, 3_600, problems).ifPresent(builder::shutdownTimeout);
    try {
      return Optional.of(builder.build());
    } catch (ValidationException e) {
      e.problems().forEach(problem -> problems.add("Kafka: " + problem));
      return Optional.empty();
    }
  }

  private static final Set<String> TRUE_WORDS = Set.of("true", "1", "yes", "on");
  private static final Set<String> FALSE_WORDS = Set.of("false", "0", "no", "off");

  /** A yes/no variable: true, 1, yes, on or false, 0, no, off (any case); empty when unset or wrong (the problem noted). */
  private static Optional<Boolean> flag(Map<String, String> env, String name, List<String> problems) {
    Optional<String> text = nonBlank(env.get(name));
    if (text.isEmpty()) {
      return Optional.empty();
    }
    String word = text.get().toLowerCase(Locale.ROOT);
    if (TRUE_WORDS.contains(word) || FALSE_WORDS.contains(word)) {
      return Optional.of(TRUE_WORDS.contains(word));
    }
    problems.add(name + "=" + ErrorText.quoted(text.get()) + " is not true or false (nor 1/0, yes/no, on/off)");
    return Optional.empty();
  }

  /** A whole number of seconds from {@code min} to {@code max}; empty when unset or wrong (the problem noted). */
  private static Optional<Duration> seconds(
      Map<String, String> env, String name, long min, long max, List<String> problems) {
    Optional<String> text = nonBlank(env.get(name));
    if (text.isEmpty()) {
      return Optional.empty();
    }
    try {
      long value = Long.parseLong(text.get());
      if (value >= min && value <= max) {
        return Optional.of(Duration.ofSeconds(value));
      }
    } catch (NumberFormatException e) {
      // named below
    }
    problems.add(name + "=" + ErrorText.quoted(text.get()) + " is not a whole number of seconds from " + min + " to " + max);
    return Optional.empty();
  }

  /** A positive whole number of bytes; empty when unset or wrong (the problem noted). */
  private static Optional<Integer> byteCount(Map<String, String> env, String name, List<String> problems) {
    Optional<String> text = nonBlank(env.get(name));
    if (text.isEmpty()) {
      return Optional.empty();
    }
    try {
      int bytes = Integer.parseInt(text.get());
      if (bytes > 0) {
        return Optional.of(bytes);
      }
      problems.add(name + "='" + bytes + "' is not a positive number of bytes");
    } catch (NumberFormatException e) {
      problems.add(name + "='" + text.get() + "' is not a whole number");
    }
    return Optional.empty();
  }

  private static void integer(
      Map<String, String> env, String name, List<String> problems, Consumer<Integer> setter) {
    nonBlank(env.get(name))
        .ifPresent(
            text -> {
              try {
                setter.accept(Integer.parseInt(text));
              } catch (NumberFormatException e) {
                problems.add(name + "='" + text + "' is not a whole number");
              }
            });
  }

  private static int parsePort(String source, String text, List<String> problems) {
    try {
      int port = Integer.parseInt(text.trim());
      if (port >= 0 && port <= 65_535) {
        return port;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    problems.add(source + "='" + text + "' is not a port number (0-65535)");
    return 0;
  }

  private static Optional<String> nonBlank(String value) {
    return value == null || value.isBlank() ? Optional.empty() : Optional.of(value.trim());
  }
}
