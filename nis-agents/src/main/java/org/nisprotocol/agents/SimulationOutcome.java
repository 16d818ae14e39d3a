package org.nisprotocol.agents;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * What {@link ScenarioSimulatorService#simulate} returns.
 *
 * @param result the simulation result
 * @param cacheKey the key it is cached under in namespace simulation ({@link
 *     SimulationRequest#cacheKey()})
 * @param fromCache whether it was served from the cache rather than computed (and published) now
 */
public record SimulationOutcome(SimulationResult result, String cacheKey, boolean fromCache) {
  public SimulationOutcome {
    Objects.requireNonNull(result, "result");
    Objects.requireNonNull(cacheKey, "cacheKey");
  }

  /** The answer to {@code POST /simulations}: {@link SimulationResult#toJson()}, cache_key, from_cache. */
  public Map<String, Object> toJson() {
    Map<String, Object> json = new LinkedHashMap<>(result.toJson());
    json.put("cache_key", cacheKey);
    json.put("from_cache", fromCache);
    return json;
  }
}
