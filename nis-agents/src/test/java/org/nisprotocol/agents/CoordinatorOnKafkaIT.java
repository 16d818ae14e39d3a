package org.nisprotocol.agents;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.time.Duration;
import java.time.InstantSource;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nisprotocol.core.CircuitBreakerConfig;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.HealthStatus;
import org.nisprotocol.core.StreamingTopics;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.embedded.InMemoryCache;
import org.nisprotocol.kafka.KafkaBusConfig;
import org.nisprotocol.kafka.KafkaMessageBus;
import org.nisprotocol.testkit.KafkaBroker;

/** The coordinator's real probes on a real broker that goes away and comes back. */
class CoordinatorOnKafkaIT {
  @TempDir Path temp;

  @Test
  void aStoppedBrokerIsReportedUnhealthyAlertedAndRecovered() {
    ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
    try (KafkaBroker broker = KafkaBroker.builder().name("coordinator-kafka").build()) {
      broker.start();
      KafkaMessageBus bus =
          KafkaMessageBus.create(
              KafkaBusConfig.builder(broker.bootstrapServers())
                  .spoolDirectory(temp.resolve("spool"))
                  .sendTimeout(Duration.ofSeconds(2))
                  .circuitBreaker(new CircuitBreakerConfig(1, Duration.ofMinutes(10), 1))
                  .shutdownTimeout(Duration.ofSeconds(10))
                  .build());
      try (bus;
          InfrastructureCoordinator coordinator = coordinatorOnceTheBrokerAnswers(bus, scheduler)) {
        assertThat(coordinator.serviceHealth()).containsEntry("kafka", HealthStatus.HEALTHY);
        List<Delivery> alerts = new CopyOnWriteArrayList<>();
        var subscription =
            bus.subscribe(SubscriptionSpec.group("alerts-" + UUID.randomUUID()).withTopics(StreamingTopics.AUDIT_ALERTS), alerts::add);

        broker.stop();
        coordinator.checkHealth();

        assertThat(coordinator.serviceHealth()).containsEntry("kafka", HealthStatus.UNHEALTHY);
        assertThat(coordinator.integrationStatus()).isEqualTo(IntegrationStatus.DEGRADED);
        @SuppressWarnings("unchecked")
        Map<String, Object> kafka = (Map<String, Object>) ((Map<String, Object>) coordinator.comprehensiveStatus().get("services")).get("kafka");
        assertThat(kafka).containsEntry("health", "unhealthy").containsEntry("error_count", 1L);

        broker.start();
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofSeconds(1)).until(() -> {
          coordinator.checkHealth(); // recovery: the probe closes the breaker, the spooled alert goes out
          return coordinator.serviceHealth().get("kafka") == HealthStatus.HEALTHY && !alerts.isEmpty();
        });
        assertThat(alerts.get(0).message().content())
            .containsEntry("alert_type", "health_degradation")
            .containsEntry("service", "kafka")
            .containsEntry("status", "unhealthy")
            .containsEntry("severity", "high");
        assertThat(coordinator.integrationStatus()).isEqualTo(IntegrationStatus.FULLY_OPERATIONAL);
        subscription.close();
      }
    } finally {
      scheduler.shutdownNow();
    }
  }

  /**
   * The coordinator probes as it starts: a broker just started, whose first answers can take
   * seconds on a loaded machine, has answered the bus's own probe first.
   */
  private static InfrastructureCoordinator coordinatorOnceTheBrokerAnswers(
      KafkaMessageBus bus, ScheduledExecutorService scheduler) {
    await().atMost(Duration.ofSeconds(30)).until(() -> bus.checkHealth(Duration.ofSeconds(5)).status() == HealthStatus.HEALTHY);
    return InfrastructureCoordinator.create(
        CoordinatorConfig.defaults().withHealthCheckTimeout(Duration.ofSeconds(5)).withHealthCheckInterval(Duration.ofHours(1)),
        bus,
        InMemoryCache.create(),
        InstantSource.system(),
        scheduler);
  }
}
