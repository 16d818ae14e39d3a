package org.nisprotocol.redis;

import java.util.Optional;

/**
 * Computes the value of a refresh-ahead namespace of a {@link StrategyCache}, as JSON; empty when
 * there is none (nothing is cached then). Supplied by the user; must be thread-safe. An exception
 * reaches the callers waiting on a miss; during a background refresh it is logged and the old
 * value stays until its TTL ends.
 */
@FunctionalInterface
public interface CacheLoader {
  Optional<String> load(String namespace, String key);
}
