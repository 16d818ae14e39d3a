package org.nisprotocol.agents;

import java.util.List;
import java.util.Map;

/**
 * The capacity model behind a {@link ScenarioType}: what each iteration's success probability is.
 *
 * <p>p = base × coverage × Π(1 − environmental factor) × Π U(1 − u, 1 + u), clamped to [0, 1],
 * where coverage = min(1, workers × rate × days / workload), days = the time horizon in whole
 * steps of the resolution, and each uncertainty factor u multiplies by a fresh uniform draw around
 * 1 in every iteration. The draws have mean 1, so while p stays below 1 the true success
 * probability is exactly base × coverage × Π(1 − e): the tests check the simulator against it.
 */
record ScenarioModel(
    double base,
    String workersKey,
    double defaultWorkers,
    String rateKey,
    double defaultRate,
    String workloadKey,
    double defaultWorkload) {

  double workers(SimulationParameters parameters) {
    return parameters.resourceConstraints().getOrDefault(workersKey, defaultWorkers);
  }

  double rate(SimulationParameters parameters) {
    return parameters.resourceConstraints().getOrDefault(rateKey, defaultRate);
  }

  double workload(SimulationParameters parameters) {
    return parameters.resourceConstraints().getOrDefault(workloadKey, defaultWorkload);
  }

  /** The time horizon in whole steps of the resolution. */
  static double days(SimulationParameters parameters) {
    return Math.floor(parameters.timeHorizon() / parameters.resolution() + 1e-9)
        * parameters.resolution();
  }

  double capacity(SimulationParameters parameters) {
    return workers(parameters) * rate(parameters) * days(parameters);
  }

  /** capacity / workload, at most 1. */
  double coverage(SimulationParameters parameters) {
    return Math.min(1.0, capacity(parameters) / workload(parameters));
  }

  /** The success probability without the uncertainty draws. */
  double expectedProbability(SimulationParameters parameters) {
    double p = base * coverage(parameters);
    for (double factor : parameters.environmentalFactors().values()) {
      p *= 1 - factor;
    }
    return p;
  }

  /** Problems with the resources this model reads: a workload must be positive. */
  void validate(Map<String, Double> resources, List<String> problems) {
    Double workload = resources.get(workloadKey);
    if (workload != null && workload <= 0) {
      problems.add(
          "resource_constraints." + workloadKey + " must be positive, got " + workload);
    }
  }
}
