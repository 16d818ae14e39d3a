package org.nisprotocol.agents;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.nisprotocol.core.ValidationException;

/**
 * The inputs of one Monte Carlo simulation, all resolved (no defaults left to apply). Built by
 * {@link SimulationRequest.Builder} or {@link SimulationRequest#fromJson}; validated when built,
 * every problem reported at once.
 *
 * @param timeHorizon days the scenario runs, {@code 0 < h <= }{@value #MAX_TIME_HORIZON}
 *     (default {@value #DEFAULT_TIME_HORIZON})
 * @param resolution the time step in days, {@code 0 < r <= timeHorizon} (default {@value
 *     #DEFAULT_RESOLUTION}); work counts in whole steps
 * @param iterations the most Monte Carlo runs, 1 to {@value #MAX_ITERATIONS} (default 1000 for an
 *     excavation, 500 otherwise); fewer when the estimate converges
 * @param confidenceLevel of the interval, strictly between 0 and 1 (default {@value
 *     #DEFAULT_CONFIDENCE_LEVEL})
 * @param environmentalFactors adverse factors, each in [0, 1]: a factor e multiplies the success
 *     probability by 1 − e
 * @param resourceConstraints resources, each a finite number >= 0 (team_size, site_area, ...; see
 *     {@link ScenarioType})
 * @param uncertaintyFactors relative uncertainties, each in [0, 1]: a factor u multiplies every
 *     iteration's success probability by a uniform draw from [1 − u, 1 + u]
 * @param seed seeds the random numbers; the same parameters and seed give the same result
 */
public record SimulationParameters(
    double timeHorizon,
    double resolution,
    int iterations,
    double confidenceLevel,
    Map<String, Double> environmentalFactors,
    Map<String, Double> resourceConstraints,
    Map<String, Double> uncertaintyFactors,
    long seed) {
  public static final double DEFAULT_TIME_HORIZON = 30;
  public static final double DEFAULT_RESOLUTION = 1;
  public static final double DEFAULT_CONFIDENCE_LEVEL = 0.95;
  public static final double MAX_TIME_HORIZON = 36_500;
  public static final int MAX_ITERATIONS = 1_000_000;
  /** The most steps of the resolution the time horizon may hold. */
  public static final int MAX_STEPS = 1_000_000;
  /** The most entries in each of the three factor maps. */
  public static final int MAX_FACTORS = 32;

  /**
   * @throws ValidationException listing every value out of range
   */
  public SimulationParameters {
    List<String> problems = new ArrayList<>();
    if (!(timeHorizon > 0 && timeHorizon <= MAX_TIME_HORIZON)) {
      problems.add("time_horizon must be > 0 and <= " + MAX_TIME_HORIZON + " days, got "
          + timeHorizon);
    }
    if (!(resolution > 0) || (timeHorizon > 0 && resolution > timeHorizon)) {
      problems.add("resolution must be > 0 and <= time_horizon (" + timeHorizon + "), got "
          + resolution);
    } else if (timeHorizon > 0 && !(timeHorizon / resolution <= MAX_STEPS)) {
      // Else the horizon in steps is infinite, or loses its whole days to rounding.
      problems.add("resolution " + resolution + " makes more than " + MAX_STEPS + " steps of time_horizon "
          + timeHorizon);
    }
    if (iterations < 1 || iterations > MAX_ITERATIONS) {
      problems.add("iterations must be between 1 and " + MAX_ITERATIONS + ", got " + iterations);
    }
    if (!(confidenceLevel > 0 && confidenceLevel < 1)) {
      problems.add("confidence_level must be strictly between 0 and 1, got " + confidenceLevel);
    }
    environmentalFactors = checked("environmental_factors", environmentalFactors, 1, problems);
    resourceConstraints =
        checked("resource_constraints", resourceConstraints, Double.MAX_VALUE, problems);
    uncertaintyFactors = checked("uncertainty_factors", uncertaintyFactors, 1, problems);
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
    // -0.0 and 0.0 are one input, so they must give one cache key
    timeHorizon += 0.0;
    resolution += 0.0;
    confidenceLevel += 0.0;
  }

  private static Map<String, Double> checked(
      String field, Map<String, Double> factors, double max, List<String> problems) {
    if (factors == null) {
      problems.add(field + " must not be null (use an empty map)");
      return Map.of();
    }
    if (factors.size() > MAX_FACTORS) {
      problems.add(field + " has " + factors.size() + " entries; at most " + MAX_FACTORS);
    }
    Map<String, Double> sorted = new TreeMap<>();
    factors.forEach(
        (name, value) -> {
          if (name == null || !name.matches("[A-Za-z0-9_.-]{1,64}")) {
            problems.add(field + " name '" + name
                + "' must be 1-64 letters, digits, '_', '.' or '-'");
          } else if (value == null || !(value >= 0 && value <= max)) {
            problems.add(field + "." + name + " must be "
                + (max == 1 ? "between 0 and 1" : "a finite number >= 0") + ", got " + value);
          } else {
            sorted.put(name, value + 0.0);
          }
        });
    return Collections.unmodifiableMap(sorted);
  }

  /** This set of parameters with another seed. */
  public SimulationParameters withSeed(long seed) {
    return new SimulationParameters(timeHorizon, resolution, iterations, confidenceLevel,
        environmentalFactors, resourceConstraints, uncertaintyFactors, seed);
  }

  /**
   * As JSON, with the wire names: time_horizon, resolution, iterations, confidence_level,
   * environmental_factors, resource_constraints, uncertainty_factors, seed.
   */
  public Map<String, Object> toJson() {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("time_horizon", timeHorizon);
    json.put("resolution", resolution);
    json.put("iterations", iterations);
    json.put("confidence_level", confidenceLevel);
    json.put("environmental_factors", environmentalFactors);
    json.put("resource_constraints", resourceConstraints);
    json.put("uncertainty_factors", uncertaintyFactors);
    json.put("seed", seed);
    return json;
  }
}
