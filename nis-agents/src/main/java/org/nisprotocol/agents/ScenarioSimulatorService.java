package org.nisprotocol.agents;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import org.nisprotocol.core.Cache;
import org.nisprotocol.core.MessageBus;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.ValidationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The scenario simulator on the NIS ports: results are cached in namespace {@value #NAMESPACE}
 * (the namespace's TTL, 7200 s by default) under {@link SimulationRequest#cacheKey()}, and each
 * freshly computed result is published as a simulation_result message. A repeated identical
 * request, under any scenario id, is served from the cache and not published again.
 *
 * <p>Order of a fresh computation: simulate, publish, cache. If publishing fails the error
 * propagates and nothing is cached, so a retry computes (deterministically, the same result) and
 * publishes again. A cache that fails is logged and bypassed: the result is still computed and
 * published. An unreadable cache entry is treated as absent and overwritten.
 *
 * <p>Two identical requests at the same moment may both compute and publish; they get the same
 * result. Thread-safe.
 */
public final class ScenarioSimulatorService {
  /** The cache namespace of results. */
  public static final String NAMESPACE = "simulation";
  /** The source_agent of published results. */
  public static final String SOURCE_AGENT = "scenario_simulator";

  private static final Logger LOG = LoggerFactory.getLogger(ScenarioSimulatorService.class);
  private static final TypeReference<Map<String, Object>> JSON_OBJECT = new TypeReference<>() {};

  private final Cache cache;
  private final MessageBus bus;
  private final ScenarioSimulator simulator;

  private ScenarioSimulatorService(Cache cache, MessageBus bus, ScenarioSimulator simulator) {
    this.cache = cache;
    this.bus = bus;
    this.simulator = simulator;
  }

  public static ScenarioSimulatorService create(Cache cache, MessageBus bus) {
    return new ScenarioSimulatorService(
        Objects.requireNonNull(cache, "cache"),
        Objects.requireNonNull(bus, "bus"),
        ScenarioSimulator.create());
  }

  /** Simulates, or serves the cached result of an identical request. */
  public SimulationOutcome simulate(SimulationRequest request) {
    return simulate(request, Optional.empty());
  }

  /**
   * As {@link #simulate(SimulationRequest)}; a fresh result is published with target_agent the
   * requester, as the integration guide's {@code requester_agent}.
   */
  public SimulationOutcome simulate(SimulationRequest request, String requesterAgent) {
    return simulate(request, Optional.of(requesterAgent));
  }

  /**
   * The whole of {@code POST /simulations}: parses the body ({@link SimulationRequest#fromJson},
   * plus an optional "requester_agent"), simulates, and returns {@link SimulationOutcome#toJson()}.
   *
   * @throws ValidationException listing every problem of the body
   */
  public Map<String, Object> simulateJson(Map<String, ?> body) {
    // Every problem of the body at once, before anything runs.
    List<String> problems = new ArrayList<>();
    SimulationRequest request = null;
    try {
      request = SimulationRequest.fromJson(body);
    } catch (ValidationException e) {
      problems.addAll(e.problems());
    }
    String requester = requesterOf(body.get("requester_agent"), problems);
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
    return simulate(request, Optional.ofNullable(requester)).toJson();
  }

  /** The agent a result is addressed to: a target_agent, so held to the same rules (null when absent). */
  private static String requesterOf(Object value, List<String> problems) {
    if (value == null) {
      return null;
    }
    if (!(value instanceof String requester)) {
      problems.add("requester_agent must be a string, got " + SimulationRequest.describe(value));
      return null;
    }
    if (requester.isBlank()) {
      problems.add("requester_agent must not be blank");
    } else if (requester.length() > NisMessage.MAX_ID_LENGTH) {
      problems.add("requester_agent is " + requester.length() + " characters long; at most "
          + NisMessage.MAX_ID_LENGTH + " allowed");
    }
    return requester;
  }

  private SimulationOutcome simulate(SimulationRequest request, Optional<String> requester) {
    Objects.requireNonNull(request, "request");
    String key = request.cacheKey();
    Optional<SimulationResult> cached = cached(key);
    if (cached.isPresent()) {
      return new SimulationOutcome(cached.get().withScenarioId(request.scenarioId()), key, true);
    }
    SimulationResult result = simulator.run(request);
    bus.publish(message(result, key, requester));
    store(key, result);
    return new SimulationOutcome(result, key, false);
  }

  private Optional<SimulationResult> cached(String key) {
    Optional<String> json;
    try {
      json = cache.get(NAMESPACE, key);
    } catch (RuntimeException e) {
      LOG.warn("simulation cache {} unavailable, computing {}: {}", cache.name(), key, e.toString());
      return Optional.empty();
    }
    if (json.isEmpty()) {
      return Optional.empty();
    }
    try {
      return Optional.of(
          SimulationResult.fromJson(MessageCodec.mapper().readValue(json.get(), JSON_OBJECT)));
    } catch (JsonProcessingException | RuntimeException e) {
      LOG.warn("unreadable simulation cache entry {} replaced: {}", key, e.toString());
      return Optional.empty();
    }
  }

  private void store(String key, SimulationResult result) {
    try {
      cache.put(NAMESPACE, key, MessageCodec.mapper().writeValueAsString(result.toJson()));
    } catch (JsonProcessingException | RuntimeException e) {
      LOG.warn("simulation result {} not cached in {}: {}", key, cache.name(), e.toString());
    }
  }

  private static NisMessage message(
      SimulationResult result, String key, Optional<String> requester) {
    Map<String, Object> content = new LinkedHashMap<>();
    content.put("scenario_id", result.scenarioId());
    content.put("scenario_type", result.scenarioType().wireName());
    content.put("success_probability", result.successProbability());
    content.put("confidence_interval", result.confidenceInterval());
    content.put("confidence_level", result.parameters().confidenceLevel());
    content.put("iterations_run", result.iterationsRun());
    content.put("converged", result.converged());
    content.put("recommendations", result.recommendations());
    content.put("risk_factors", result.riskFactors());
    content.put("cache_key", key);
    NisMessage.Builder builder =
        NisMessage.builder(MessageType.SIMULATION_RESULT, SOURCE_AGENT).content(content);
    requester.ifPresent(builder::targetAgent);
    return builder.build();
  }
}
