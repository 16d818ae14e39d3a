package org.nisprotocol.agents;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.nisprotocol.core.ValidationException;

/**
 * The outcome of one Monte Carlo simulation.
 *
 * @param scenarioId the request's scenario id
 * @param scenarioType the request's type
 * @param successProbability successes / iterations run
 * @param confidenceLow lower end of the Wilson score interval
 * @param confidenceHigh upper end of the Wilson score interval
 * @param successes iterations that succeeded
 * @param iterationsRun iterations run: the parameters' iterations, or fewer if the estimate
 *     converged
 * @param converged whether the convergence check stopped the run
 * @param recommendations what to do, most important first
 * @param riskFactors what lowers the success probability or the trust in it
 * @param parameters the parameters used, seed included
 */
public record SimulationResult(
    String scenarioId,
    ScenarioType scenarioType,
    double successProbability,
    double confidenceLow,
    double confidenceHigh,
    long successes,
    int iterationsRun,
    boolean converged,
    List<String> recommendations,
    List<String> riskFactors,
    SimulationParameters parameters) {

  public SimulationResult {
    Objects.requireNonNull(scenarioId, "scenarioId");
    Objects.requireNonNull(scenarioType, "scenarioType");
    Objects.requireNonNull(parameters, "parameters");
    recommendations = List.copyOf(recommendations);
    riskFactors = List.copyOf(riskFactors);
  }

  /** {@code [low, high]}. */
  public List<Double> confidenceInterval() {
    return List.of(confidenceLow, confidenceHigh);
  }

  /** The same result under another scenario id. */
  public SimulationResult withScenarioId(String scenarioId) {
    return new SimulationResult(scenarioId, scenarioType, successProbability, confidenceLow,
        confidenceHigh, successes, iterationsRun, converged, recommendations, riskFactors,
        parameters);
  }

  /**
   * As JSON: scenario_id, scenario_type, success_probability, confidence_interval [low, high],
   * confidence_level, successes, iterations_run, converged, recommendations, risk_factors,
   * parameters.
   */
  public Map<String, Object> toJson() {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("scenario_id", scenarioId);
    json.put("scenario_type", scenarioType.wireName());
    json.put("success_probability", successProbability);
    json.put("confidence_interval", confidenceInterval());
    json.put("confidence_level", parameters.confidenceLevel());
    json.put("successes", successes);
    json.put("iterations_run", iterationsRun);
    json.put("converged", converged);
    json.put("recommendations", recommendations);
    json.put("risk_factors", riskFactors);
    json.put("parameters", parameters.toJson());
    return json;
  }

  /**
   * Reads what {@link #toJson()} wrote (from the cache).
   *
   * @throws ValidationException or {@link RuntimeException} when the JSON is not such a result
   */
  static SimulationResult fromJson(Map<String, ?> json) {
    SimulationRequest request =
        SimulationRequest.fromJson(
            Map.of(
                "scenario_id", json.get("scenario_id"),
                "scenario_type", json.get("scenario_type"),
                "parameters", json.get("parameters")));
    List<?> interval = (List<?>) json.get("confidence_interval");
    return new SimulationResult(
        request.scenarioId(),
        request.scenarioType(),
        ((Number) json.get("success_probability")).doubleValue(),
        ((Number) interval.get(0)).doubleValue(),
        ((Number) interval.get(1)).doubleValue(),
        ((Number) json.get("successes")).longValue(),
        ((Number) json.get("iterations_run")).intValue(),
        (Boolean) json.get("converged"),
        strings(json.get("recommendations")),
        strings(json.get("risk_factors")),
        request.parameters());
  }

  private static List<String> strings(Object list) {
    List<String> out = new ArrayList<>();
    for (Object item : (List<?>) list) {
      out.add((String) item);
    }
    return out;
  }
}
