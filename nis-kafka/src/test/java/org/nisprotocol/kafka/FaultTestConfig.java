package org.nisprotocol.kafka;

import java.nio.file.Path;
import java.time.Duration;
import org.nisprotocol.core.CircuitBreakerConfig;
import org.nisprotocol.core.RetryPolicy;

/** The bus configuration of the fault tests: short retries, a breaker that opens and probes within a second. */
final class FaultTestConfig {
  private FaultTestConfig() {}

  static KafkaBusConfig.Builder of(String bootstrapServers, Duration sendTimeout, Path spool) {
    return KafkaBusConfig.builder(bootstrapServers)
        .topicPartitions(3)
        .sendTimeout(sendTimeout)
        .retryPolicy(new RetryPolicy(3, Duration.ofMillis(20), Duration.ofMillis(200), 0.5))
        .circuitBreaker(new CircuitBreakerConfig(5, Duration.ofSeconds(1), 1))
        .spoolDirectory(spool)
        .shutdownTimeout(Duration.ofSeconds(20));
  }
}
