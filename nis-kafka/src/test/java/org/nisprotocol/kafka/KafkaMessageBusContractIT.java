package org.nisprotocol.kafka;

import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.io.TempDir;
import org.nisprotocol.core.MessageBus;
import org.nisprotocol.core.Subscription;
import org.nisprotocol.testkit.MessageBusContract;
import org.nisprotocol.testkit.TestServers;

/** The message bus contract, against the real Kafka broker of the test harness. */
class KafkaMessageBusContractIT extends MessageBusContract {
  @TempDir Path spoolDirectory;

  @Override
  protected MessageBus createBus() {
    return KafkaMessageBus.create(
        KafkaBusConfig.builder(TestServers.kafka().bootstrapServers())
            .retryPolicy(FAST_RETRIES)
            .topicPartitions(3)
            .spoolDirectory(spoolDirectory.resolve("spool-" + System.nanoTime()))
            .shutdownTimeout(Duration.ofSeconds(20))
            .build());
  }

  @Override
  protected void awaitReady(Subscription subscription) {
    await()
        .atMost(Duration.ofSeconds(30))
        .until(() -> ((KafkaSubscription) subscription).isAssigned());
  }
}
