package org.nisprotocol.redis;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.RemovalCause;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Predicate;

/**
 * Caffeine's Window TinyLFU: admission by estimated frequency, eviction by recency, with the
 * balance between the two tuned as the workload goes. Neither LRU nor LFU, usually a better hit rate
 * than both, and reads scale across threads without a lock. The default eviction of a near cache
 * and of the fallback tier.
 *
 * <p>Expiry is checked here on each read against the entry's own instant rather than by Caffeine's
 * variable expiry, which costs a timer-wheel update on every read; an expired entry is dropped when
 * read and otherwise ages out through the size bound. Caffeine's bookkeeping runs on the common
 * fork-join pool, off the caller's path, so a put may stand over the bound (and its eviction be
 * counted) a moment later.
 */
final class AdaptiveTier implements LocalTier {
  private final Ticker ticker;
  private final Cache<String, Entry> entries;

  /**
   * @param maximum entries, or approximate bytes of keys and values (two a character) when {@code
   *     weighBytes}
   */
  AdaptiveTier(long maximum, boolean weighBytes, Ticker ticker, Runnable onEviction) {
    this.ticker = ticker;
    Caffeine<Object, Object> builder = Caffeine.newBuilder();
    if (weighBytes) {
      builder
          .maximumWeight(maximum)
          .weigher(
              (Object key, Object value) ->
                  (int)
                      Math.min(
                          Integer.MAX_VALUE,
                          2L * (((String) key).length() + ((Entry) value).json().length()) + 64));
    } else {
      builder.maximumSize(maximum);
    }
    this.entries =
        builder
            .evictionListener(
                (String key, Entry value, RemovalCause cause) -> {
                  if (cause == RemovalCause.SIZE) {
                    onEviction.run();
                  }
                })
            .build();
  }

  @Override
  public Entry get(String key) {
    Entry entry = entries.getIfPresent(key);
    if (entry != null && entry.expiresAtNanos() - ticker.read() <= 0) {
      entries.asMap().remove(key, entry);
      return null;
    }
    return entry;
  }

  @Override
  public void put(String key, Entry entry) {
    if (entry.expiresAtNanos() - ticker.read() > 0) {
      entries.put(key, entry);
    } else {
      entries.invalidate(key);
    }
  }

  @Override
  public boolean invalidate(String key) {
    Entry removed = entries.asMap().remove(key);
    return removed != null && removed.expiresAtNanos() - ticker.read() > 0;
  }

  @Override
  public void invalidateIf(Predicate<String> keys) {
    entries.asMap().keySet().removeIf(keys);
  }

  @Override
  public Map<String, Entry> snapshot(Predicate<String> keys, int limit) {
    long now = ticker.read();
    Map<String, Entry> found = new LinkedHashMap<>();
    for (Map.Entry<String, Entry> e : entries.asMap().entrySet()) {
      if (found.size() >= limit) {
        break;
      }
      if (keys.test(e.getKey()) && e.getValue().expiresAtNanos() - now > 0) {
        found.put(e.getKey(), e.getValue());
      }
    }
    return found;
  }

  @Override
  public void invalidateAll() {
    entries.invalidateAll();
  }

  @Override
  public long size() {
    entries.cleanUp();
    return entries.estimatedSize();
  }
}
