package org.nisprotocol.agents;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;
import org.nisprotocol.core.ErrorText;

/**
 * The kinds of scenario the simulator models. On the wire each is its lowercase name ({@code
 * "archaeological_excavation"}).
 *
 * <p>Every type is the same capacity model with its own vocabulary and base success probability:
 * capacity = workers × rate × days; when capacity is below the workload, the success probability
 * scales by capacity / workload. Defaults of the resource_constraints each reads:
 *
 * <table>
 *   <caption>Model of each scenario type</caption>
 *   <tr><th>type</th><th>base</th><th>workers</th><th>rate per worker-day</th><th>workload</th>
 *       <th>iterations</th></tr>
 *   <tr><td>archaeological_excavation</td><td>0.9</td><td>team_size 5</td>
 *       <td>daily_rate 2 m²</td><td>site_area 250 m²</td><td>1000</td></tr>
 *   <tr><td>environmental_assessment</td><td>0.85</td><td>field_teams 2</td>
 *       <td>samples_per_day 5</td><td>required_samples 200</td><td>500</td></tr>
 *   <tr><td>cultural_preservation</td><td>0.8</td><td>conservators 3</td>
 *       <td>items_per_day 1</td><td>item_count 60</td><td>500</td></tr>
 *   <tr><td>resource_allocation</td><td>0.9</td><td>supply_sources 4</td>
 *       <td>units_per_day 25</td><td>demand_units 2400</td><td>500</td></tr>
 *   <tr><td>generic</td><td>0.75</td><td>workers 1</td><td>rate 1</td><td>workload 30</td>
 *       <td>500</td></tr>
 * </table>
 */
public enum ScenarioType {
  ARCHAEOLOGICAL_EXCAVATION(
      1000, new ScenarioModel(0.9, "team_size", 5, "daily_rate", 2, "site_area", 250)),
  ENVIRONMENTAL_ASSESSMENT(
      500,
      new ScenarioModel(0.85, "field_teams", 2, "samples_per_day", 5, "required_samples", 200)),
  CULTURAL_PRESERVATION(
      500, new ScenarioModel(0.8, "conservators", 3, "items_per_day", 1, "item_count", 60)),
  RESOURCE_ALLOCATION(
      500,
      new ScenarioModel(0.9, "supply_sources", 4, "units_per_day", 25, "demand_units", 2400)),
  GENERIC(500, new ScenarioModel(0.75, "workers", 1, "rate", 1, "workload", 30));

  private final String wireName = name().toLowerCase(Locale.ROOT);
  private final int defaultIterations;
  private final ScenarioModel model;

  ScenarioType(int defaultIterations, ScenarioModel model) {
    this.defaultIterations = defaultIterations;
    this.model = model;
  }

  /** The name used in JSON, e.g. {@code "archaeological_excavation"}. */
  public String wireName() {
    return wireName;
  }

  /** Iterations run when the request names none: 1000 for excavations, 500 otherwise. */
  public int defaultIterations() {
    return defaultIterations;
  }

  ScenarioModel model() {
    return model;
  }

  /**
   * Parses a wire name, ignoring case.
   *
   * @throws IllegalArgumentException naming the value and the accepted names
   */
  public static ScenarioType fromWire(String name) {
    for (ScenarioType type : values()) {
      if (type.wireName.equalsIgnoreCase(name)) {
        return type;
      }
    }
    throw new IllegalArgumentException(
        "unknown scenario_type " + ErrorText.quoted(name) + "; expected one of "
            + Arrays.stream(values()).map(ScenarioType::wireName).collect(Collectors.joining(", ")));
  }
}
