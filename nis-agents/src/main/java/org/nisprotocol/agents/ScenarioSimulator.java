package org.nisprotocol.agents;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.random.RandomGenerator;

/**
 * The Monte Carlo scenario simulator: pure computation, no I/O. Each iteration draws whether the
 * scenario succeeds from its type's {@link ScenarioType model}; the estimate is the share of
 * successes, with a Wilson score interval.
 *
 * <p>Convergence: every {@value #CHECK_INTERVAL} iterations the success rate of the last {@value
 * #CHECK_INTERVAL} is recorded; once {@value #CONVERGENCE_WINDOW} such rates have a variance below
 * {@value #CONVERGENCE_VARIANCE}, the run stops early. For independent iterations the variance of
 * a rate over 100 is at most 0.0025, so with these defaults a run stops at 300 iterations unless
 * its rates drift.
 *
 * <p>Recommendations: at or above {@value #PROCEED_THRESHOLD} proceed; from {@value
 * #MITIGATE_THRESHOLD} proceed with mitigation; below it re-plan; then the concrete changes that
 * close a capacity shortfall, and mitigations for the strongest environmental factors.
 *
 * <p>Deterministic: the same request (seed included) gives the same result. Thread-safe.
 */
public final class ScenarioSimulator {
  static final int CHECK_INTERVAL = 100;
  static final int CONVERGENCE_WINDOW = 3;
  static final double CONVERGENCE_VARIANCE = 0.01;
  static final double PROCEED_THRESHOLD = 0.8;
  static final double MITIGATE_THRESHOLD = 0.6;
  /** Interval width above which the estimate is reported as imprecise. */
  static final double WIDE_INTERVAL = 0.1;
  /** Uncertainty factors at or above this are reported as risks. */
  static final double HIGH_UNCERTAINTY = 0.2;

  private ScenarioSimulator() {}

  public static ScenarioSimulator create() {
    return new ScenarioSimulator();
  }

  /** Runs the simulation with random numbers seeded by the request's seed. */
  public SimulationResult run(SimulationRequest request) {
    Objects.requireNonNull(request, "request");
    return run(request, new SplittableRandom(request.parameters().seed()));
  }

  /** Runs the simulation with the given source of random numbers. */
  SimulationResult run(SimulationRequest request, RandomGenerator random) {
    SimulationParameters parameters = request.parameters();
    ScenarioModel model = request.scenarioType().model();
    double base = model.expectedProbability(parameters);
    double[] uncertainties =
        parameters.uncertaintyFactors().values().stream().mapToDouble(Double::doubleValue).toArray();
    int maxIterations = parameters.iterations();
    double[] rates = new double[maxIterations / CHECK_INTERVAL + 1];
    int checkpoints = 0;
    long successes = 0;
    long successesAtLastCheck = 0;
    int iterations = 0;
    boolean converged = false;
    while (iterations < maxIterations) {
      double p = base;
      for (double u : uncertainties) {
        p *= 1 + u * (2 * random.nextDouble() - 1);
      }
      if (random.nextDouble() < p) {
        successes++;
      }
      iterations++;
      if (iterations % CHECK_INTERVAL == 0) {
        rates[checkpoints++] = (successes - successesAtLastCheck) / (double) CHECK_INTERVAL;
        successesAtLastCheck = successes;
        if (checkpoints >= CONVERGENCE_WINDOW
            && Statistics.variance(rates, checkpoints - CONVERGENCE_WINDOW, checkpoints)
                < CONVERGENCE_VARIANCE) {
          converged = true;
          break;
        }
      }
    }
    double probability = successes / (double) iterations;
    double[] interval =
        Statistics.wilson(successes, iterations, Statistics.zFor(parameters.confidenceLevel()));
    List<String> risks = riskFactors(request, model, interval, converged, iterations);
    List<String> recommendations = recommendations(request, model, probability, converged);
    return new SimulationResult(
        request.scenarioId(), request.scenarioType(), probability, interval[0], interval[1],
        successes, iterations, converged, recommendations, risks, parameters);
  }

  private static List<String> riskFactors(
      SimulationRequest request, ScenarioModel model, double[] interval, boolean converged,
      int iterations) {
    SimulationParameters parameters = request.parameters();
    List<String> risks = new ArrayList<>();
    double coverage = model.coverage(parameters);
    if (coverage < 1) {
      risks.add(String.format(Locale.ROOT,
          "capacity shortfall: %s %s x %s %s x %s days = %s covers %s%% of %s %s",
          model.workersKey(), number(model.workers(parameters)), model.rateKey(),
          number(model.rate(parameters)), number(ScenarioModel.days(parameters)),
          number(model.capacity(parameters)), number(100 * coverage), model.workloadKey(),
          number(model.workload(parameters))));
    }
    for (Map.Entry<String, Double> factor : byValueDescending(parameters.environmentalFactors())) {
      if (factor.getValue() > 0) {
        risks.add(String.format(Locale.ROOT,
            "environmental factor %s (%s) lowers the success probability by %s%%",
            factor.getKey(), number(factor.getValue()), number(100 * factor.getValue())));
      }
    }
    for (Map.Entry<String, Double> factor : byValueDescending(parameters.uncertaintyFactors())) {
      if (factor.getValue() >= HIGH_UNCERTAINTY) {
        risks.add(String.format(Locale.ROOT,
            "uncertainty %s: each run varies by up to %s%%", factor.getKey(),
            number(100 * factor.getValue())));
      }
    }
    if (interval[1] - interval[0] > WIDE_INTERVAL) {
      risks.add(String.format(Locale.ROOT,
          "imprecise estimate: the %s%% interval [%.3f, %.3f] is wider than %s",
          number(100 * parameters.confidenceLevel()), interval[0], interval[1],
          number(WIDE_INTERVAL)));
    }
    if (!converged && iterations >= CHECK_INTERVAL * CONVERGENCE_WINDOW) {
      risks.add("the estimate did not converge within " + iterations + " iterations");
    }
    return risks;
  }

  private static List<String> recommendations(
      SimulationRequest request, ScenarioModel model, double probability, boolean converged) {
    SimulationParameters parameters = request.parameters();
    List<String> out = new ArrayList<>();
    String estimate = String.format(Locale.ROOT, "%.3f", probability);
    if (probability >= PROCEED_THRESHOLD) {
      out.add("Proceed as planned: the estimated success probability " + estimate
          + " is at or above " + PROCEED_THRESHOLD + ".");
    } else if (probability >= MITIGATE_THRESHOLD) {
      out.add("Proceed with mitigation: the estimated success probability " + estimate
          + " is between " + MITIGATE_THRESHOLD + " and " + PROCEED_THRESHOLD
          + "; address the risk factors first.");
    } else {
      out.add("Re-plan before proceeding: the estimated success probability " + estimate
          + " is below " + MITIGATE_THRESHOLD + ".");
    }
    if (model.coverage(parameters) < 1) {
      double workload = model.workload(parameters);
      double rate = model.rate(parameters);
      double days = ScenarioModel.days(parameters);
      double workers = model.workers(parameters);
      List<String> options = new ArrayList<>();
      if (rate > 0 && days > 0) {
        options.add("raise " + model.workersKey() + " to "
            + number(Math.ceil(workload / (rate * days))));
      }
      if (rate > 0 && workers > 0) {
        options.add("extend time_horizon to "
            + number(Math.ceil(workload / (workers * rate))) + " days");
      }
      if (options.isEmpty()) {
        options.add("provide " + model.workersKey() + " and " + model.rateKey() + " above 0");
      }
      out.add("Cover the full " + model.workloadKey() + " (" + number(workload) + "): "
          + String.join(" or ", options) + ".");
    }
    for (Map.Entry<String, Double> factor : byValueDescending(parameters.environmentalFactors())) {
      if (factor.getValue() >= 0.2 && out.size() < 5) {
        out.add("Plan mitigation for the environmental factor " + factor.getKey() + " ("
            + number(factor.getValue()) + ").");
      }
    }
    if (!converged) {
      out.add("Run more iterations for a steadier estimate (ran " + parameters.iterations()
          + " at most).");
    }
    return out;
  }

  private static List<Map.Entry<String, Double>> byValueDescending(Map<String, Double> factors) {
    List<Map.Entry<String, Double>> sorted = new ArrayList<>(factors.entrySet());
    sorted.sort(Map.Entry.<String, Double>comparingByValue(Comparator.reverseOrder())
        .thenComparing(Map.Entry.comparingByKey()));
    return sorted;
  }

  /** A number without a trailing ".0": 300 rather than 300.0, 0.25 as is. */
  private static String number(double value) {
    if (value == Math.rint(value) && Math.abs(value) < 1e15) {
      return Long.toString((long) value);
    }
    return String.format(Locale.ROOT, "%.4g", value).replaceAll("\\.?0+$", "");
  }
}
