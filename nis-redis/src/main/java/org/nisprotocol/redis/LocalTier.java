package org.nisprotocol.redis;

import java.util.Map;
import java.util.function.Predicate;

/**
 * A bounded in-process map of JSON values, each with its own expiry: the near cache of a namespace
 * and the fallback used while Redis is unreachable. Implementations are thread-safe; each evicts by
 * its own policy ({@link NearCache.Eviction}) and reports evictions to the listener it was built
 * with. Expired entries are never returned.
 */
interface LocalTier {

  /**
   * A value and the {@code nanoTime}-scale instant it expires at.
   *
   * @param localOnly written while Redis refused the write, so only this instance has it: served
   *     while Redis is unreachable, never as a near-cache hit
   */
  record Entry(String json, long expiresAtNanos, boolean localOnly) {
    Entry(String json, long expiresAtNanos) {
      this(json, expiresAtNanos, false);
    }
  }

  /** The live entry under the key, or null; a hit is a use for the eviction policy. */
  Entry get(String key);

  /** Stores or replaces the entry; may evict another one. */
  void put(String key, Entry entry);

  /** Removes the key; true if a live entry was there. Not an eviction. */
  boolean invalidate(String key);

  /** Removes every key the filter accepts. Not evictions. */
  void invalidateIf(Predicate<String> keys);

  /** Removes everything. Not evictions. */
  void invalidateAll();

  /** Up to {@code limit} live entries whose keys the filter accepts, without counting as uses. */
  Map<String, Entry> snapshot(Predicate<String> keys, int limit);

  /** Entries held, expired ones not yet removed included. */
  long size();

  /** A tier of the given policy and bound. */
  static LocalTier create(NearCache settings, Ticker ticker, Runnable onEviction) {
    return switch (settings.eviction()) {
      case ADAPTIVE -> new AdaptiveTier(settings.maximumEntries(), false, ticker, onEviction);
      case LRU -> new LruTier(settings.maximumEntries(), ticker, onEviction);
      case LFU -> new LfuTier(settings.maximumEntries(), ticker, onEviction);
    };
  }

  /** The time source of expiry, in nanoseconds on an arbitrary origin (tests use a manual one). */
  @FunctionalInterface
  interface Ticker {
    Ticker SYSTEM = System::nanoTime;

    long read();
  }
}
