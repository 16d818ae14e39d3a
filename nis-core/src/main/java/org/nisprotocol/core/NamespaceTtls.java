package org.nisprotocol.core;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The default time to live of each cache namespace. Defaults (seconds): consciousness 1800,
 * memory 3600, simulation 7200, alignment 3600, goals 1800, coordination 900, performance 600,
 * audit 86400, system 300; any other namespace {@value #DEFAULT_FALLBACK_SECONDS}.
 *
 * @param byNamespace the TTL of each named namespace
 * @param fallback the TTL of namespaces not named
 */
public record NamespaceTtls(Map<String, Duration> byNamespace, Duration fallback) {
  public static final long DEFAULT_FALLBACK_SECONDS = 3600;

  private static final NamespaceTtls DEFAULTS =
      new NamespaceTtls(
          orderedSeconds(
              "consciousness", 1800,
              "memory", 3600,
              "simulation", 7200,
              "alignment", 3600,
              "goals", 1800,
              "coordination", 900,
              "performance", 600,
              "audit", 86400,
              "system", 300),
          Duration.ofSeconds(DEFAULT_FALLBACK_SECONDS));

  /**
   * @throws ValidationException listing every bad namespace name or non-positive TTL
   */
  public NamespaceTtls {
    Objects.requireNonNull(fallback, "fallback");
    List<String> problems = new ArrayList<>();
    byNamespace.forEach(
        (namespace, ttl) -> {
          try {
            CacheKeys.requireValidNamespace(namespace);
            CacheKeys.requirePositiveTtl(ttl);
          } catch (ValidationException e) {
            problems.add("namespace TTL " + namespace + "=" + ttl + ": " + e.getMessage());
          }
        });
    if (fallback.isZero() || fallback.isNegative()) {
      problems.add("fallback TTL must be positive, got " + fallback);
    }
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
    byNamespace = Map.copyOf(byNamespace);
  }

  /** The defaults of the NIS protocol (see the class comment). */
  public static NamespaceTtls defaults() {
    return DEFAULTS;
  }

  /** The TTL a put without one gets in this namespace. */
  public Duration ttlFor(String namespace) {
    return byNamespace.getOrDefault(namespace, fallback);
  }

  /** These TTLs with one namespace set. */
  public NamespaceTtls with(String namespace, Duration ttl) {
    Map<String, Duration> copy = new LinkedHashMap<>(byNamespace);
    copy.put(namespace, ttl);
    return new NamespaceTtls(copy, fallback);
  }

  private static Map<String, Duration> orderedSeconds(Object... pairs) {
    Map<String, Duration> map = new LinkedHashMap<>();
    for (int i = 0; i < pairs.length; i += 2) {
      map.put((String) pairs[i], Duration.ofSeconds(((Number) pairs[i + 1]).longValue()));
    }
    return map;
  }
}
