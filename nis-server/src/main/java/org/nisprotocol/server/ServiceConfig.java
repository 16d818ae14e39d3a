package org.nisprotocol.server;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import org.nisprotocol.core.ValidationException;

/**
 * How the service is set up, read once from the environment variables of the runbook and the
 * command line. This is the one place that reads them.
 *
 * <table>
 *   <caption>Settings</caption>
 *   <tr><th>variable</th><th>flag</th><th>default</th><th>meaning</th></tr>
 *   <tr><td>NIS_PORT</td><td>--port</td><td>8000</td><td>HTTP port (0 picks a free one)</td></tr>
 *   <tr><td>NIS_HOST</td><td>--host</td><td>0.0.0.0</td><td>address to listen on</td></tr>
 *   <tr><td>KAFKA_BOOTSTRAP_SERVERS</td><td></td><td>unset</td><td>Kafka brokers; unset means the
 *       embedded message bus</td></tr>
 *   <tr><td>REDIS_HOST, REDIS_PORT, REDIS_PASSWORD</td><td></td><td>unset, 6379</td><td>Redis;
 *       unset means the embedded cache</td></tr>
 * </table>
 *
 * @param host address to listen on
 * @param port HTTP port, 0 for any free one
 * @param kafkaBootstrapServers Kafka brokers, empty for the embedded bus
 * @param redisHost Redis host, empty for the embedded cache
 * @param redisPort Redis port
 */
public record ServiceConfig(
    String host,
    int port,
    Optional<String> kafkaBootstrapServers,
    Optional<String> redisHost,
    int redisPort) {
  public static final int DEFAULT_PORT = 8000;
  public static final String DEFAULT_HOST = "0.0.0.0";
  public static final int DEFAULT_REDIS_PORT = 6379;

  public ServiceConfig {
    Objects.requireNonNull(host, "host");
    Objects.requireNonNull(kafkaBootstrapServers, "kafkaBootstrapServers");
    Objects.requireNonNull(redisHost, "redisHost");
  }

  /** Embedded backends on the given port of 127.0.0.1 (for tests and samples). */
  public static ServiceConfig embedded(int port) {
    return new ServiceConfig("127.0.0.1", port, Optional.empty(), Optional.empty(), DEFAULT_REDIS_PORT);
  }

  /**
   * Reads the settings; flags win over variables.
   *
   * @throws ValidationException listing every bad value with its source
   */
  public static ServiceConfig from(Map<String, String> environment, List<String> arguments) {
    List<String> problems = new ArrayList<>();
    String portText = environment.getOrDefault("NIS_PORT", Integer.toString(DEFAULT_PORT));
    String portSource = "NIS_PORT";
    String host = environment.getOrDefault("NIS_HOST", DEFAULT_HOST);
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
    Optional<String> kafka = nonBlank(environment.get("KAFKA_BOOTSTRAP_SERVERS"));
    Optional<String> redisHost = nonBlank(environment.get("REDIS_HOST"));
    int redisPort =
        parsePort(
            "REDIS_PORT",
            environment.getOrDefault("REDIS_PORT", Integer.toString(DEFAULT_REDIS_PORT)),
            problems);
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
    return new ServiceConfig(host, port, kafka, redisHost, redisPort);
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
