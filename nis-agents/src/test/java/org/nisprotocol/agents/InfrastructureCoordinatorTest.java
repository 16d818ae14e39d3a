package org.nisprotocol.agents;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.Cache;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.HealthCheck;
import org.nisprotocol.core.HealthStatus;
import org.nisprotocol.core.MessageBus;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.PublishReceipt;
import org.nisprotocol.core.RetriableException;
import org.nisprotocol.core.StreamingTopics;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.embedded.InMemoryCache;
import org.nisprotocol.embedded.InMemoryCacheConfig;
import org.nisprotocol.embedded.InMemoryMessageBus;
import org.nisprotocol.testkit.ForwardingMessageBus;
import org.nisprotocol.testkit.ManualClock;
import org.nisprotocol.testkit.StallWatch;

class InfrastructureCoordinatorTest {
  private final ManualClock clock = ManualClock.create();
  private final InMemoryMessageBus bus = InMemoryMessageBus.create();
  private final HealthSwitchCache cache = new HealthSwitchCache(InMemoryCache.create(InMemoryCacheConfig.defaults().withClock(clock)));
  private final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
  private InfrastructureCoordinator coordinator;

  /** The real in-memory cache, whose health probe answers what the test sets. */
  static final class HealthSwitchCache implements Cache {
    final Cache delegate;
    final AtomicReference<HealthStatus> health = new AtomicReference<>(HealthStatus.HEALTHY);
    final AtomicInteger recoveries = new AtomicInteger();
    final AtomicInteger probes = new AtomicInteger();

    HealthSwitchCache(Cache delegate) {
      this.delegate = delegate;
    }

    @Override public Optional<String> get(String namespace, String key) { return delegate.get(namespace, key); }
    @Override public Map<String, String> getAll(String namespace, Collection<String> keys) { return delegate.getAll(namespace, keys); }
    @Override public void put(String namespace, String key, String json) { delegate.put(namespace, key, json); }
    @Override public void put(String namespace, String key, String json, Duration ttl) { delegate.put(namespace, key, json, ttl); }
    @Override public boolean putIfAbsent(String namespace, String key, String json, Duration ttl) { return delegate.putIfAbsent(namespace, key, json, ttl); }
    @Override public void putAll(String namespace, Map<String, String> entries) { delegate.putAll(namespace, entries); }
    @Override public void putAll(String namespace, Map<String, String> entries, Duration ttl) { delegate.putAll(namespace, entries, ttl); }
    @Override public boolean delete(String namespace, String key) { return delegate.delete(namespace, key); }
    @Override public long clear(String namespace) { return delegate.clear(namespace); }
    @Override public Map<String, String> entries(String namespace, int limit) { return delegate.entries(namespace, limit); }
    @Override public String name() { return "switchable"; }
    @Override public void close() { delegate.close(); }

    final java.util.concurrent.atomic.AtomicBoolean hang = new java.util.concurrent.atomic.AtomicBoolean();

    @Override
    public HealthCheck checkHealth(Duration timeout) {
      probes.incrementAndGet();
      while (hang.get()) {
        AgentRuntimeTest.sleepIgnoringInterrupts(); // ignores both its timeout and interruption
      }
      HealthStatus status = health.get();
      return status == HealthStatus.HEALTHY
          ? HealthCheck.healthy(Duration.ofMillis(1))
          : HealthCheck.of(status, Duration.ofMillis(1), "switched to " + status.wireName());
    }

    @Override
    public void recover() {
      recoveries.incrementAndGet();
    }
  }

  private InfrastructureCoordinator start(CoordinatorConfig config) {
    coordinator = InfrastructureCoordinator.create(config, bus, cache, clock, scheduler);
    return coordinator;
  }

  @AfterEach
  void stop() {
    if (coordinator != null) {
      coordinator.close();
    }
    scheduler.shutdownNow();
    bus.close();
    cache.close();
  }

  private List<Delivery> collect(String group, String topic) {
    List<Delivery> received = new CopyOnWriteArrayList<>();
    bus.subscribe(SubscriptionSpec.group(group).withTopics(topic), received::add);
    return received;
  }

  @Test
  void anEvidenceBasedMessageIsSentWithItsIntegrityScore() {
    start(CoordinatorConfig.defaults());
    List<Delivery> health = collect("monitor", StreamingTopics.SYSTEM_HEALTH);

    SendResult result =
        coordinator.sendMessage(MessageType.SYSTEM_HEALTH, Map.of("status", "healthy", "checked_by", "probe"), "demo_agent");

    assertThat(result.audit()).isEqualTo(AuditDecision.Action.PASS);
    assertThat(result.receipt().topic()).isEqualTo(StreamingTopics.SYSTEM_HEALTH);
    await().atMost(Duration.ofSeconds(10)).until(() -> health.size() == 1);
    NisMessage delivered = health.get(0).message();
    assertThat(delivered.integrityScore()).hasValue(100.0);
    assertThat(delivered.content()).containsEntry("status", "healthy");
  }

  @Test
  void aHypedMessageIsCorrectedAndAnAlertSaysSo() {
    start(CoordinatorConfig.defaults());
    List<Delivery> simulation = collect("analysis", StreamingTopics.SIMULATION);
    List<Delivery> alerts = collect("auditors", StreamingTopics.AUDIT_ALERTS);
    Map<String, Object> hyped =
        Map.of(
            "summary", "A revolutionary, perfect and robust comprehensive result with 99% accuracy and zero hallucination",
            "confidence", 0.95);

    SendResult result = coordinator.sendMessage(MessageType.SIMULATION_RESULT, hyped, "scenario_simulator");

    assertThat(result.audit()).isEqualTo(AuditDecision.Action.CORRECTED);
    assertThat(result.integrityScore().getAsDouble()).isLessThan(70);
    await().atMost(Duration.ofSeconds(10)).until(() -> simulation.size() == 1 && alerts.size() == 1);
    NisMessage published = simulation.get(0).message();
    assertThat(published.content().get("confidence")).isNotEqualTo(0.95);
    assertThat(published.integrityScore().getAsDouble()).isGreaterThanOrEqualTo(70);
    assertThat(alerts.get(0).message().content()).containsEntry("action", "corrected");
  }

  @Test
  void aCorrectionThatMakesTheMessageTooLargeSaysSo() {
    String claims = "It reaches 95% accuracy. ".repeat(40); // about 1 KB; corrected, about 2.5 KB
    try (InMemoryMessageBus small = InMemoryMessageBus.create(
            org.nisprotocol.embedded.InMemoryMessageBusConfig.defaults().withMaxMessageBytes(2_000));
        InfrastructureCoordinator onSmall =
            InfrastructureCoordinator.create(CoordinatorConfig.defaults(), small, cache, clock, scheduler)) {
      NisMessage message = NisMessage.builder(MessageType.SIMULATION_RESULT, "scenario_simulator")
          .content(Map.of("summary", claims)).build();
      assertThat(MessageCodec.create().encode(message).length).as("what the caller sends fits").isLessThan(2_000);

      assertThatThrownBy(() -> onSmall.sendMessage(message))
          .isInstanceOf(org.nisprotocol.core.MessageTooLargeException.class)
          .hasMessageStartingWith("the self-audit corrected message " + message.messageId())
          .hasMessageContaining("at most 2000 are accepted");
    }
  }

  /**
   * The corrected message is accepted, its alert refused (a full bus, say): the call still
   * succeeds. Failing it would make the caller send the message again, a duplicate.
   */
  @Test
  void aCorrectedMessageIsSentEvenWhenItsAlertIsRefused() {
    MessageBus refusingAlerts = new ForwardingMessageBus(bus) {
      @Override
      public PublishReceipt publish(NisMessage message, Map<String, String> headers) {
        if (message.topic().equals(StreamingTopics.AUDIT_ALERTS)) {
          throw new RetriableException("the bus is full");
        }
        return super.publish(message, headers);
      }
    };
    coordinator = InfrastructureCoordinator.create(CoordinatorConfig.defaults(), refusingAlerts, cache, clock, scheduler);
    List<Delivery> simulation = collect("analysis", StreamingTopics.SIMULATION);

    SendResult result = coordinator.sendMessage(
        MessageType.SIMULATION_RESULT,
        Map.of(
            "summary", "A revolutionary, perfect and robust comprehensive result with 99% accuracy and zero hallucination",
            "confidence", 0.95),
        "scenario_simulator");

    assertThat(result.audit()).isEqualTo(AuditDecision.Action.CORRECTED);
    await().atMost(Duration.ofSeconds(10)).until(() -> simulation.size() == 1);
  }

  @Test
  void withQuarantineALowScoringMessageOnlyReachesTheAuditAlerts() {
    start(CoordinatorConfig.defaults().withSelfAudit(SelfAuditConfig.defaults().withOnLowScore(SelfAuditConfig.LowScoreAction.QUARANTINE)));
    List<Delivery> simulation = collect("analysis", StreamingTopics.SIMULATION);
    List<Delivery> alerts = collect("auditors", StreamingTopics.AUDIT_ALERTS);

    SendResult result =
        coordinator.sendMessage(
            MessageType.SIMULATION_RESULT,
            Map.of("summary", "revolutionary perfect robust comprehensive breakthrough, 99% accuracy, 10x faster, zero hallucination"),
            "scenario_simulator");

    assertThat(result.audit()).isEqualTo(AuditDecision.Action.QUARANTINED);
    assertThat(result.receipt().topic()).isEqualTo(StreamingTopics.AUDIT_ALERTS);
    await().atMost(Duration.ofSeconds(10)).until(() -> alerts.size() == 1);
    assertThat(alerts.get(0).message().content()).containsKey("quarantined_message").containsKey("reasons");
    assertThat(simulation).isEmpty();
  }

  @Test
  void withSelfAuditOffMessagesGoOutUntouched() {
    start(CoordinatorConfig.defaults().withSelfAuditEnabled(false));
    List<Delivery> simulation = collect("analysis", StreamingTopics.SIMULATION);

    SendResult result = coordinator.sendMessage(MessageType.SIMULATION_RESULT, Map.of("summary", "revolutionary"), "a");

    assertThat(result.audited()).isFalse();
    await().atMost(Duration.ofSeconds(10)).until(() -> simulation.size() == 1);
    assertThat(simulation.get(0).message().integrityScore()).isEmpty();
  }

  @Test
  void agentsCacheAndReadBackTheirData() {
    start(CoordinatorConfig.defaults());

    coordinator.cacheData("demo_config", Map.of("setting", "value", "levels", List.of(1, 2)), "demo_agent");
    coordinator.cacheData("short", "soon gone", "demo_agent", Duration.ofSeconds(5));

    assertThat(coordinator.getCachedData("demo_config", "demo_agent")).contains(Map.of("setting", "value", "levels", List.of(1, 2)));
    assertThat(coordinator.getCachedData("demo_config", "other_agent")).isEmpty();
    clock.advance(Duration.ofSeconds(6));
    assertThat(coordinator.getCachedData("short", "demo_agent")).isEmpty();
    assertThat(cache.get(InfrastructureCoordinator.AGENT_NAMESPACE, "demo_agent:demo_config")).isPresent();
  }

  @Test
  void theStatusHasTheGuidesShapeAndCountsOperations() throws Exception {
    start(CoordinatorConfig.defaults());
    coordinator.subscribe(SubscriptionSpec.group("analysis_group").withMessageTypes(MessageType.SIMULATION_RESULT), d -> {});
    coordinator.sendMessage(MessageType.SYSTEM_HEALTH, Map.of("status", "ok"), "a");
    coordinator.cacheData("k", 1, "a");
    coordinator.getCachedData("k", "a");
    clock.advance(Duration.ofSeconds(12));

    Map<String, Object> status = coordinator.comprehensiveStatus();

    assertThat(status).containsOnlyKeys(
        "integration_status", "overall_health", "services", "metrics", "agent_subscriptions",
        "auto_recovery_enabled", "self_audit_enabled");
    assertThat(status.get("integration_status")).isEqualTo("fully_operational");
    assertThat(status.get("overall_health")).isEqualTo("healthy");
    @SuppressWarnings("unchecked")
    Map<String, Map<String, Object>> services = (Map<String, Map<String, Object>>) status.get("services");
    assertThat(services).containsOnlyKeys("message_bus", "cache");
    assertThat(services.get("cache")).containsKeys("health", "last_check", "uptime", "error_count", "response_time");
    assertThat((Double) services.get("cache").get("uptime")).isEqualTo(12.0);
    @SuppressWarnings("unchecked")
    Map<String, Object> metrics = (Map<String, Object>) status.get("metrics");
    assertThat(metrics).containsEntry("total_messages", 1L).containsEntry("total_cache_operations", 2L).containsEntry("error_rate", 0.0);
    assertThat(metrics.get("uptime")).isEqualTo(12.0);
    assertThat(status.get("agent_subscriptions")).isEqualTo(Map.of("analysis_group", List.of("nis-simulation", "simulation_result")));
    assertThat(MessageCodec.mapper().writeValueAsString(status)).contains("\"integration_status\":\"fully_operational\"");
  }

  @Test
  void refusedInputIsNeitherAnOperationNorAnErrorWhileABackendFailureIsBoth() {
    start(CoordinatorConfig.defaults());
    coordinator.cacheData("k", 1, "a");

    assertThatThrownBy(() -> coordinator.writeCache("no spaces", "k", 1, Optional.empty()))
        .isInstanceOf(org.nisprotocol.core.ValidationException.class);
    assertThat(statusMetrics()).containsEntry("total_cache_operations", 1L).containsEntry("error_rate", 0.0);

    cache.close();
    assertThatThrownBy(() -> coordinator.getCachedData("k", "a")).isInstanceOf(org.nisprotocol.core.NisException.class);
    assertThat(statusMetrics()).containsEntry("total_cache_operations", 2L).containsEntry("error_rate", 0.5);
  }

  @SuppressWarnings("unchecked")
  private Map<String, Object> statusMetrics() {
    return (Map<String, Object>) coordinator.comprehensiveStatus().get("metrics");
  }

  @Test
  void aHealthChangeIsAlertedAndRecoveryIsAttempted() {
    start(CoordinatorConfig.defaults().withAutoRecovery(true).withHealthCheckInterval(Duration.ofHours(1)));
    List<Delivery> alerts = collect("auditors", StreamingTopics.AUDIT_ALERTS);

    cache.health.set(HealthStatus.DEGRADED);
    coordinator.checkHealth();

    assertThat(coordinator.integrationStatus()).isEqualTo(IntegrationStatus.PARTIALLY_OPERATIONAL);
    assertThat(coordinator.overallHealth()).isEqualTo(HealthStatus.DEGRADED);
    assertThat(cache.recoveries.get()).isEqualTo(1);

    cache.health.set(HealthStatus.UNHEALTHY);
    coordinator.checkHealth();

    assertThat(coordinator.integrationStatus()).isEqualTo(IntegrationStatus.DEGRADED);
    await().atMost(Duration.ofSeconds(10)).until(() -> alerts.size() == 2);
    assertThat(alerts).extracting(d -> d.message().content().get("severity")).containsExactly("medium", "high");
    assertThat(alerts.get(1).message().content())
        .containsEntry("alert_type", "health_degradation")
        .containsEntry("service", "switchable")
        .containsEntry("status", "unhealthy");
    assertThat(alerts.get(1).message().sourceAgent()).isEqualTo("health_monitor");

    cache.health.set(HealthStatus.HEALTHY);
    coordinator.checkHealth();
    assertThat(coordinator.integrationStatus()).isEqualTo(IntegrationStatus.FULLY_OPERATIONAL);
    assertThat(cache.recoveries.get()).isEqualTo(2);
  }

  @Test
  void timesInTheStatusAndInAlertsAreEpochSecondsWrittenPlainly() throws Exception {
    start(CoordinatorConfig.defaults().withAutoRecovery(true).withHealthCheckInterval(Duration.ofHours(1)));
    List<Delivery> alerts = collect("auditors", StreamingTopics.AUDIT_ALERTS);
    clock.advance(Duration.ofMillis(1_250)); // from 2026-01-01T00:00:00Z, epoch second 1767225600

    cache.health.set(HealthStatus.DEGRADED);
    coordinator.checkHealth();

    // As doubles these came out as 1.76722560125E9.
    assertThat(MessageCodec.mapper().writeValueAsString(coordinator.comprehensiveStatus()))
        .contains("\"last_check\":1767225601.250,");
    await().atMost(Duration.ofSeconds(10)).until(() -> alerts.size() == 1);
    assertThat(MessageCodec.create().encodeToString(alerts.get(0).message())).contains("\"timestamp\":1767225601.250,");
  }

  @Test
  void aProbeIgnoringItsTimeoutCannotHoldTheHealthCheck() {
    start(CoordinatorConfig.defaults().withHealthCheckTimeout(Duration.ofMillis(200)).withHealthCheckInterval(Duration.ofHours(1)));
    cache.hang.set(true);
    try {
      Duration took = StallWatch.shared().unstalledTimeOf(coordinator::checkHealth);

      assertThat(took).as("this JVM's pauses taken out").isLessThan(Duration.ofSeconds(3));
      assertThat(coordinator.serviceHealth()).containsEntry("cache", HealthStatus.UNHEALTHY);
    } finally {
      cache.hang.set(false);
    }
  }

  @Test
  void theLoopProbesOnItsInterval() {
    start(CoordinatorConfig.defaults().withHealthCheckInterval(Duration.ofMillis(50)));
    int initial = cache.probes.get();

    await().atMost(Duration.ofSeconds(10)).until(() -> cache.probes.get() >= initial + 3);
  }

  @Test
  void withoutAutoRecoveryTheLoopStillProbesButRecoversNothing() {
    start(CoordinatorConfig.defaults().withAutoRecovery(false).withHealthCheckInterval(Duration.ofMillis(50)));
    cache.health.set(HealthStatus.UNHEALTHY);

    await().atMost(Duration.ofSeconds(10))
        .until(() -> coordinator.serviceHealth().get("cache") == HealthStatus.UNHEALTHY);
    assertThat(cache.recoveries.get()).isZero();
  }

  @Test
  void aServiceNotHealthyAtTheFirstProbeIsAlerted() {
    List<Delivery> alerts = collect("auditors", StreamingTopics.AUDIT_ALERTS);
    cache.health.set(HealthStatus.UNHEALTHY);

    start(CoordinatorConfig.defaults().withHealthCheckInterval(Duration.ofHours(1)));

    await().atMost(Duration.ofSeconds(10)).until(() -> alerts.size() == 1);
    assertThat(alerts.get(0).message().content())
        .containsEntry("service", "switchable")
        .containsEntry("status", "unhealthy")
        .containsEntry("previous_status", "unknown");
    await().during(Duration.ofMillis(300)).atMost(Duration.ofSeconds(2))
        .until(() -> alerts.size() == 1); // the healthy bus is not news
  }

  @Test
  void closingOneOfAGroupsSubscriptionsLeavesTheOthersInTheStatus() {
    start(CoordinatorConfig.defaults());
    var first = coordinator.subscribe(SubscriptionSpec.group("planner").withMessageTypes(MessageType.GOAL_GENERATION), d -> {});
    coordinator.subscribe(SubscriptionSpec.group("planner").withMessageTypes(MessageType.GOAL_GENERATION), d -> {});
    coordinator.subscribe(SubscriptionSpec.group("auditor").withTopics(StreamingTopics.AUDIT_ALERTS), d -> {});

    first.close();

    assertThat(coordinator.comprehensiveStatus().get("agent_subscriptions")).isEqualTo(Map.of(
        "planner", List.of("nis-goals", "goal_generation"),
        "auditor", List.of(StreamingTopics.AUDIT_ALERTS)));
    coordinator.close();
    assertThat(coordinator.comprehensiveStatus().get("agent_subscriptions")).isEqualTo(Map.of());
  }

  @Test
  void integrationStatusFollowsTheServices() {
    assertThat(IntegrationStatus.of(List.of(HealthStatus.HEALTHY, HealthStatus.HEALTHY))).isEqualTo(IntegrationStatus.FULLY_OPERATIONAL);
    assertThat(IntegrationStatus.of(List.of(HealthStatus.HEALTHY, HealthStatus.UNKNOWN))).isEqualTo(IntegrationStatus.PARTIALLY_OPERATIONAL);
    assertThat(IntegrationStatus.of(List.of(HealthStatus.UNHEALTHY, HealthStatus.HEALTHY))).isEqualTo(IntegrationStatus.DEGRADED);
    assertThat(IntegrationStatus.of(List.of(HealthStatus.UNHEALTHY, HealthStatus.UNHEALTHY))).isEqualTo(IntegrationStatus.OFFLINE);
  }
}
