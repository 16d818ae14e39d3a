package org.nisprotocol.redis;

import java.util.Locale;
import org.nisprotocol.core.ValidationException;

/**
 * The near cache of one namespace: a bounded local tier in front of Redis, read before Redis and
 * invalidated when any instance writes the namespace. Opt-in per namespace ({@link
 * RedisCacheConfig#nearCaches()}); every instance sharing a Redis must opt the same namespaces in,
 * since only writes to near-cached namespaces announce invalidations.
 *
 * <p>The eviction policy here is what the original's LRU and LFU cache strategies become: the
 * policy of the bounded local tier of that namespace. Redis itself keeps entries until their TTL
 * (or its own {@code maxmemory-policy}).
 *
 * @param maximumEntries bound on the entries held locally (default {@value
 *     #DEFAULT_MAXIMUM_ENTRIES}); past it one is evicted by the policy
 * @param eviction which entry goes when the bound is reached (default {@link Eviction#ADAPTIVE})
 */
public record NearCache(int maximumEntries, Eviction eviction) {
  public static final int DEFAULT_MAXIMUM_ENTRIES = 10_000;

  /** Which local entry is evicted when the bound is reached. */
  public enum Eviction {
    /**
     * Caffeine's Window TinyLFU: frequency-aware admission with recency eviction, adapting to the
     * workload. Best hit rate in general and lock-free reads; neither strict LRU nor strict LFU.
     */
    ADAPTIVE,
    /** Strict least recently used: the entry read or written longest ago goes. */
    LRU,
    /**
     * Strict least frequently used: the entry used the fewest times goes, the least recently used
     * among ties. Counts do not age.
     */
    LFU
  }

  /**
   * @throws ValidationException when the bound is below 1 or the policy is missing
   */
  public NearCache {
    if (maximumEntries < 1) {
      throw new ValidationException("near cache maximumEntries must be at least 1, got " + maximumEntries);
    }
    if (eviction == null) {
      throw new ValidationException("near cache eviction must be one of ADAPTIVE, LRU, LFU, got null");
    }
  }

  /** {@value #DEFAULT_MAXIMUM_ENTRIES} entries, adaptive eviction. */
  public static NearCache defaults() {
    return new NearCache(DEFAULT_MAXIMUM_ENTRIES, Eviction.ADAPTIVE);
  }

  public static NearCache lru(int maximumEntries) {
    return new NearCache(maximumEntries, Eviction.LRU);
  }

  public static NearCache lfu(int maximumEntries) {
    return new NearCache(maximumEntries, Eviction.LFU);
  }

  public static NearCache adaptive(int maximumEntries) {
    return new NearCache(maximumEntries, Eviction.ADAPTIVE);
  }

  /**
   * Parses {@code maximumEntries[:policy]} as in {@code REDIS_NEAR_CACHE}, e.g. {@code 5000:lru}.
   *
   * @throws ValidationException naming the text when it does not parse
   */
  static NearCache parse(String text) {
    String[] parts = text.trim().split(":", -1);
    if (parts.length > 2) {
      throw new ValidationException("near cache '" + text + "' is not maximumEntries[:ADAPTIVE|LRU|LFU]");
    }
    int maximum;
    try {
      maximum = parts[0].isEmpty() ? DEFAULT_MAXIMUM_ENTRIES : Integer.parseInt(parts[0]);
    } catch (NumberFormatException e) {
      throw new ValidationException("near cache size '" + parts[0] + "' is not a whole number");
    }
    Eviction eviction = Eviction.ADAPTIVE;
    if (parts.length == 2) {
      try {
        eviction = Eviction.valueOf(parts[1].trim().toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new ValidationException(
            "near cache eviction '" + parts[1] + "' is not one of ADAPTIVE, LRU, LFU");
      }
    }
    return new NearCache(maximum, eviction);
  }
}
