package org.nisprotocol.agents;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.nisprotocol.core.ErrorText;
import org.nisprotocol.core.ValidationException;

/**
 * One request to simulate a scenario: its id, its type and its resolved parameters.
 *
 * <p>Build with {@link #builder(String, ScenarioType)} or parse the body of {@code POST
 * /simulations} with {@link #fromJson}. Parameters left out take their defaults; a request without
 * a seed gets one derived from a hash of its other inputs, so identical requests give identical
 * results whether or not they name a seed.
 *
 * @param scenarioId the caller's name for the scenario, 1-256 characters; not part of the {@link
 *     #cacheKey()}
 */
public record SimulationRequest(
    String scenarioId, ScenarioType scenarioType, SimulationParameters parameters) {
  private static final Set<String> PARAMETER_NAMES =
      Set.of("time_horizon", "resolution", "iterations", "confidence_level",
          "environmental_factors", "resource_constraints", "uncertainty_factors", "seed");

  /**
   * @throws ValidationException listing every problem
   */
  public SimulationRequest {
    List<String> problems = new ArrayList<>();
    checkScenarioId(scenarioId, problems);
    if (scenarioType == null) {
      problems.add("scenario_type is required");
    }
    if (parameters == null) {
      problems.add("parameters must not be null");
    }
    if (scenarioType != null && parameters != null) {
      scenarioType.model().validate(parameters.resourceConstraints(), problems);
    }
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
  }

  private static void checkScenarioId(String scenarioId, List<String> problems) {
    if (scenarioId == null || scenarioId.isBlank()) {
      problems.add("scenario_id is required and must not be blank");
    } else if (scenarioId.length() > 256) {
      problems.add("scenario_id is " + scenarioId.length() + " characters long; at most 256");
    }
  }

  /** A builder with every parameter at its default. */
  public static Builder builder(String scenarioId, ScenarioType scenarioType) {
    return new Builder(scenarioId, scenarioType);
  }

  /**
   * The key of this request's result in the cache: the SHA-256 (hex) of the canonical JSON of
   * scenario_type and parameters. Requests that differ only in scenario_id, in the order of their
   * factors, or in spelling a default out, share it.
   */
  public String cacheKey() {
    return CanonicalJson.sha256Hex(CanonicalJson.of(scenarioType, parameters, true));
  }

  /** This request under another scenario id. */
  public SimulationRequest withScenarioId(String scenarioId) {
    return new SimulationRequest(scenarioId, scenarioType, parameters);
  }

  /**
   * Parses {@code {"scenario_id", "scenario_type", "parameters": {...}}}, the body of {@code POST
   * /simulations}. Parameter names are those of {@link SimulationParameters#toJson()}; unknown
   * parameters are refused, since a misspelt one would silently be ignored.
   *
   * @throws ValidationException listing every missing, unknown or bad field
   */
  public static SimulationRequest fromJson(Map<String, ?> body) {
    List<String> problems = new ArrayList<>();
    String scenarioId = null;
    boolean idReported = false;
    Object id = body.get("scenario_id");
    if (id instanceof String text) {
      scenarioId = text;
    } else if (id != null) {
      problems.add("scenario_id must be a string, got " + describe(id));
      idReported = true;
    }
    ScenarioType type = null;
    boolean typeReported = false;
    Object typeName = body.get("scenario_type");
    if (typeName instanceof String text) {
      try {
        type = ScenarioType.fromWire(text);
      } catch (IllegalArgumentException e) {
        problems.add(e.getMessage());
        typeReported = true;
      }
    } else if (typeName != null) {
      problems.add("scenario_type must be a string, got " + describe(typeName));
      typeReported = true;
    }
    Builder builder = new Builder(scenarioId, type);
    Object params = body.get("parameters");
    if (params instanceof Map<?, ?> map) {
      readParameters(map, builder, problems);
    } else if (params != null) {
      problems.add("parameters must be a JSON object, got " + describe(params));
    }
    SimulationParameters parameters = builder.collectProblems(problems, !idReported, !typeReported);
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
    return builder.resolve(parameters);
  }

  private static void readParameters(Map<?, ?> map, Builder builder, List<String> problems) {
    for (Map.Entry<?, ?> entry : map.entrySet()) {
      String name = String.valueOf(entry.getKey());
      Object value = entry.getValue();
      if (!PARAMETER_NAMES.contains(name)) {
        problems.add("unknown parameter '" + name + "'; expected one of "
            + PARAMETER_NAMES.stream().sorted().toList());
        continue;
      }
      if (value == null) {
        continue; // null means default
      }
      switch (name) {
        case "time_horizon" -> builder.timeHorizon = number(name, value, problems);
        case "resolution" -> builder.resolution = number(name, value, problems);
        case "confidence_level" -> builder.confidenceLevel = number(name, value, problems);
        case "iterations" -> {
          Long iterations = integer(name, value, problems);
          if (iterations != null) {
            if (iterations < 1 || iterations > SimulationParameters.MAX_ITERATIONS) {
              problems.add("iterations must be between 1 and "
                  + SimulationParameters.MAX_ITERATIONS + ", got " + iterations);
            } else {
              builder.iterations = iterations.intValue();
            }
          }
        }
        case "seed" -> builder.seed = integer(name, value, problems);
        case "environmental_factors" -> factors(name, value, builder.environmentalFactors, problems);
        case "resource_constraints" -> factors(name, value, builder.resourceConstraints, problems);
        case "uncertainty_factors" -> factors(name, value, builder.uncertaintyFactors, problems);
        default -> throw new IllegalStateException(name);
      }
    }
  }

  private static Double number(String name, Object value, List<String> problems) {
    if (value instanceof Number number) {
      return number.doubleValue();
    }
    problems.add(name + " must be a number, got " + describe(value));
    return null;
  }

  private static Long integer(String name, Object value, List<String> problems) {
    BigDecimal exact =
        switch (value) {
          case Integer i -> BigDecimal.valueOf(i);
          case Long l -> BigDecimal.valueOf(l);
          case BigInteger b -> new BigDecimal(b);
          case BigDecimal d -> d;
          case Double d when Double.isFinite(d) -> BigDecimal.valueOf(d);
          default -> null;
        };
    try {
      if (exact != null) {
        return exact.longValueExact();
      }
    } catch (ArithmeticException e) {
      // falls through to the problem below
    }
    problems.add(name + " must be a whole number (64-bit), got " + describe(value));
    return null;
  }

  private static void factors(
      String name, Object value, Map<String, Double> into, List<String> problems) {
    if (!(value instanceof Map<?, ?> map)) {
      problems.add(name + " must be a JSON object of numbers, got " + describe(value));
      return;
    }
    for (Map.Entry<?, ?> entry : map.entrySet()) {
      if (entry.getValue() instanceof Number number) {
        into.put(String.valueOf(entry.getKey()), number.doubleValue());
      } else {
        problems.add(name + "." + entry.getKey() + " must be a number, got "
            + describe(entry.getValue()));
      }
    }
  }

  /** A value named in a problem, shortened: a field may hold megabytes that an error must not send back. */
  static String describe(Object value) {
    return ErrorText.quoted(String.valueOf(value));
  }

  /** Collects parameters; {@link #build()} applies the defaults and checks everything. */
  public static final class Builder {
    private final String scenarioId;
    private final ScenarioType scenarioType;
    private Double timeHorizon;
    private Double resolution;
    private Integer iterations;
    private Double confidenceLevel;
    private final Map<String, Double> environmentalFactors = new LinkedHashMap<>();
    private final Map<String, Double> resourceConstraints = new LinkedHashMap<>();
    private final Map<String, Double> uncertaintyFactors = new LinkedHashMap<>();
    private Long seed;

    private Builder(String scenarioId, ScenarioType scenarioType) {
      this.scenarioId = scenarioId;
      this.scenarioType = scenarioType;
    }

    /** Days the scenario runs (default {@value SimulationParameters#DEFAULT_TIME_HORIZON}). */
    public Builder timeHorizon(double days) {
      this.timeHorizon = days;
      return this;
    }

    /** The time step in days (default {@value SimulationParameters#DEFAULT_RESOLUTION}). */
    public Builder resolution(double days) {
      this.resolution = days;
      return this;
    }

    /** The most Monte Carlo runs (default: the scenario type's). */
    public Builder iterations(int iterations) {
      this.iterations = iterations;
      return this;
    }

    /** Of the interval (default {@value SimulationParameters#DEFAULT_CONFIDENCE_LEVEL}). */
    public Builder confidenceLevel(double level) {
      this.confidenceLevel = level;
      return this;
    }

    public Builder environmentalFactor(String name, double value) {
      environmentalFactors.put(Objects.requireNonNull(name, "name"), value);
      return this;
    }

    public Builder resourceConstraint(String name, double value) {
      resourceConstraints.put(Objects.requireNonNull(name, "name"), value);
      return this;
    }

    public Builder uncertaintyFactor(String name, double value) {
      uncertaintyFactors.put(Objects.requireNonNull(name, "name"), value);
      return this;
    }

    /** Seeds the random numbers (default: derived from a hash of the other inputs). */
    public Builder seed(long seed) {
      this.seed = seed;
      return this;
    }

    /**
     * @throws ValidationException listing every problem
     */
    public SimulationRequest build() {
      List<String> problems = new ArrayList<>();
      SimulationParameters parameters = collectProblems(problems, true, true);
      if (!problems.isEmpty()) {
        throw new ValidationException(problems);
      }
      return resolve(parameters);
    }

    /** Adds every problem of the request to the list; returns the parameters if they are valid. */
    SimulationParameters collectProblems(List<String> problems, boolean checkId, boolean checkType) {
      if (checkId) {
        checkScenarioId(scenarioId, problems);
      }
      if (checkType && scenarioType == null) {
        problems.add("scenario_type is required");
      }
      if (scenarioType != null) {
        scenarioType.model().validate(resourceConstraints, problems);
      }
      try {
        SimulationParameters parameters =
            new SimulationParameters(
                timeHorizon == null ? SimulationParameters.DEFAULT_TIME_HORIZON : timeHorizon,
                resolution == null ? SimulationParameters.DEFAULT_RESOLUTION : resolution,
                iterations != null
                    ? iterations
                    : scenarioType == null ? 1 : scenarioType.defaultIterations(),
                confidenceLevel == null
                    ? SimulationParameters.DEFAULT_CONFIDENCE_LEVEL
                    : confidenceLevel,
                environmentalFactors,
                resourceConstraints,
                uncertaintyFactors,
                0L);
        return problems.isEmpty() ? parameters : null;
      } catch (ValidationException e) {
        problems.addAll(e.problems());
        return null;
      }
    }

    /** The request, with the seed derived from the other inputs unless one was given. */
    SimulationRequest resolve(SimulationParameters parameters) {
      long resolvedSeed =
          seed != null
              ? seed
              : CanonicalJson.seedOf(CanonicalJson.of(scenarioType, parameters, false));
      return new SimulationRequest(scenarioId, scenarioType, parameters.withSeed(resolvedSeed));
    }
  }
}
