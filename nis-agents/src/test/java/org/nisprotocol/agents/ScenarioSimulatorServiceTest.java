package org.nisprotocol.agents;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.MessageBus;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.PublishReceipt;
import org.nisprotocol.core.StreamingTopics;
import org.nisprotocol.core.Subscription;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.core.ValidationException;
import org.nisprotocol.embedded.InMemoryCache;
import org.nisprotocol.embedded.InMemoryCacheConfig;
import org.nisprotocol.embedded.InMemoryMessageBus;
import org.nisprotocol.testkit.ForwardingMessageBus;
import org.nisprotocol.testkit.ManualClock;

class ScenarioSimulatorServiceTest {
  private final ManualClock clock = ManualClock.create();
  private final InMemoryCache cache =
      InMemoryCache.create(InMemoryCacheConfig.defaults().withClock(clock));
  private final RecordingBus bus = new RecordingBus(InMemoryMessageBus.create());
  private final ScenarioSimulatorService service = ScenarioSimulatorService.create(cache, bus);

  @AfterEach
  void close() {
    bus.close();
    cache.close();
  }

  private static SimulationRequest request(String scenarioId) {
    return SimulationRequest.builder(scenarioId, ScenarioType.ARCHAEOLOGICAL_EXCAVATION)
        .resourceConstraint("team_size", 5)
        .resourceConstraint("site_area", 1000)
        .environmentalFactor("weather", 0.3)
        .seed(2024)
        .build();
  }

  @Test
  void aFreshResultIsCachedAndPublishedAsSimulationResult() throws Exception {
    BlockingQueue<NisMessage> received = new LinkedBlockingQueue<>();
    Subscription subscription =
        bus.subscribe(
            SubscriptionSpec.group("analysis_group").withTopics(StreamingTopics.SIMULATION),
            delivery -> received.add(delivery.message()));

    SimulationOutcome outcome = service.simulate(request("archaeological_site_001"), "coordination_agent");

    assertThat(outcome.fromCache()).isFalse();
    assertThat(outcome.cacheKey()).isEqualTo(request("x").cacheKey());
    assertThat(cache.get("simulation", outcome.cacheKey())).isPresent();
    NisMessage message = received.poll(10, TimeUnit.SECONDS);
    subscription.close();
    assertThat(message).isNotNull();
    assertThat(message.messageType()).isEqualTo(MessageType.SIMULATION_RESULT);
    assertThat(message.sourceAgent()).isEqualTo("scenario_simulator");
    assertThat(message.targetAgent()).hasValue("coordination_agent");
    assertThat(message.topic()).isEqualTo("nis-simulation");
    assertThat(message.content())
        .containsEntry("scenario_id", "archaeological_site_001")
        .containsEntry("success_probability", outcome.result().successProbability())
        .containsEntry("confidence_interval", outcome.result().confidenceInterval())
        .containsEntry("recommendations", outcome.result().recommendations())
        .containsEntry("cache_key", outcome.cacheKey());
  }

  @Test
  void aRepeatedRequestIsServedFromTheCacheWithoutPublishing() {
    SimulationOutcome first = service.simulate(request("site_a"));
    SimulationOutcome second = service.simulate(request("site_a"));
    SimulationOutcome renamed = service.simulate(request("site_b"));

    assertThat(second.fromCache()).isTrue();
    assertThat(second.result()).isEqualTo(first.result());
    assertThat(renamed.fromCache()).isTrue();
    assertThat(renamed.result()).isEqualTo(first.result().withScenarioId("site_b"));
    assertThat(bus.published).hasSize(1);
  }

  @Test
  void aDifferentRequestIsComputedAfresh() {
    service.simulate(request("site"));
    SimulationRequest otherSeed =
        SimulationRequest.builder("site", ScenarioType.ARCHAEOLOGICAL_EXCAVATION).seed(1).build();

    assertThat(service.simulate(otherSeed).fromCache()).isFalse();
    assertThat(bus.published).hasSize(2);
  }

  @Test
  void cachedResultsLiveFor7200Seconds() {
    service.simulate(request("site"));

    clock.advance(Duration.ofSeconds(7199));
    assertThat(service.simulate(request("site")).fromCache()).isTrue();
    clock.advance(Duration.ofSeconds(2));
    assertThat(service.simulate(request("site")).fromCache()).isFalse();
    assertThat(bus.published).hasSize(2);
  }

  @Test
  void anUnreadableCacheEntryIsRecomputedAndReplaced() {
    String key = request("site").cacheKey();
    cache.put("simulation", key, "{\"not\":\"a result\"}");

    SimulationOutcome outcome = service.simulate(request("site"));

    assertThat(outcome.fromCache()).isFalse();
    assertThat(cache.get("simulation", key).orElseThrow()).contains("success_probability");
    assertThat(service.simulate(request("site")).fromCache()).isTrue();
  }

  @Test
  void whenPublishingFailsNothingIsCachedAndTheErrorPropagates() {
    bus.failNext = true;

    assertThatThrownBy(() -> service.simulate(request("site")))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("broker down");
    assertThat(cache.get("simulation", request("site").cacheKey())).isEmpty();

    SimulationOutcome retry = service.simulate(request("site"));
    assertThat(retry.fromCache()).isFalse();
    assertThat(bus.published).hasSize(1);
  }

  @Test
  void theJsonEndpointAnswersWithTheResultAndWhetherItWasCached() {
    Map<String, Object> body =
        Map.of(
            "scenario_id", "archaeological_site_001",
            "scenario_type", "archaeological_excavation",
            "parameters", Map.of("iterations", 1000, "seed", 7,
                "resource_constraints", Map.of("team_size", 6)));

    Map<String, Object> first = service.simulateJson(body);
    Map<String, Object> second = service.simulateJson(body);

    assertThat(first).containsEntry("from_cache", false).containsKeys("success_probability",
        "confidence_interval", "recommendations", "risk_factors", "iterations_run", "converged",
        "parameters", "cache_key");
    assertThat((List<?>) first.get("confidence_interval")).hasSize(2);
    assertThat(second).containsEntry("from_cache", true);
    assertThat(second.get("success_probability")).isEqualTo(first.get("success_probability"));
    assertThatThrownBy(() -> service.simulateJson(Map.of("scenario_type", "generic",
            "parameters", Map.of("iterations", -5))))
        .isInstanceOfSatisfying(ValidationException.class,
            e -> assertThat(e.problems()).hasSize(2));
  }

  @Test
  void aBadRequesterAndEveryOtherProblemAreRefusedTogetherBeforeAnythingRuns() {
    Map<String, Object> body = Map.of(
        "scenario_id", "site",
        "scenario_type", "x".repeat(100_000),
        "requester_agent", "");

    assertThatThrownBy(() -> service.simulateJson(body))
        .isInstanceOfSatisfying(ValidationException.class, e -> {
          assertThat(e.problems()).hasSize(2);
          assertThat(e.problems().get(0)).startsWith("unknown scenario_type 'xxx").contains("(100000 characters)")
              .hasSizeLessThan(1_000);
          assertThat(e.problems().get(1)).isEqualTo("requester_agent must not be blank");
        });
    Map<String, Object> valid = Map.of("scenario_id", "site", "scenario_type", "generic");
    assertThatThrownBy(() -> service.simulateJson(
            new java.util.HashMap<>(Map.of("requester_agent", "a".repeat(257), "scenario_id", "site", "scenario_type", "generic"))))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("requester_agent is 257 characters long; at most 256 allowed");
    assertThat(bus.published).as("nothing simulated, nothing published").isEmpty();
    assertThat(service.simulateJson(valid)).containsEntry("from_cache", false);
  }

  @Test
  void publishedResultsPassTheSelfAudit() {
    service.simulate(request("site"));

    NisMessage audited = SelfAuditEngine.create().audit(bus.published.get(0));

    assertThat(audited.integrityScore()).hasValue(100.0);
    assertThat(audited.auditFlags()).isEmpty();
  }

  /** Delegates to a real bus and records what was published; can fail the next publish. */
  private static final class RecordingBus extends ForwardingMessageBus {
    final List<NisMessage> published = new CopyOnWriteArrayList<>();
    volatile boolean failNext;

    RecordingBus(MessageBus delegate) {
      super(delegate);
    }

    @Override
    public PublishReceipt publish(NisMessage message, Map<String, String> headers) {
      if (failNext) {
        failNext = false;
        throw new IllegalStateException("broker down");
      }
      PublishReceipt receipt = super.publish(message, headers);
      published.add(message);
      return receipt;
    }
  }
}
