package org.nisprotocol.redis;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Predicate;

/**
 * Exact least-recently-used eviction: past the bound, the entry read or written longest ago goes.
 * An access-ordered {@link LinkedHashMap} under one lock, so every read takes the lock (a read
 * reorders the list); fine for the moderate read rates of a namespace that asks for exact LRU,
 * {@link AdaptiveTier} scales better across threads.
 */
final class LruTier implements LocalTier {
  private final int maximumEntries;
  private final Ticker ticker;
  private final Runnable onEviction;
  private final LinkedHashMap<String, Entry> entries;

  LruTier(int maximumEntries, Ticker ticker, Runnable onEviction) {
    this.maximumEntries = maximumEntries;
    this.ticker = ticker;
    this.onEviction = onEviction;
    this.entries = new LinkedHashMap<>(16, 0.75f, true);
  }

  @Override
  public Entry get(String key) {
    long now = ticker.read();
    synchronized (entries) {
      Entry entry = entries.get(key);
      if (entry == null) {
        return null;
      }
      if (entry.expiresAtNanos() - now <= 0) {
        entries.remove(key);
        return null;
      }
      return entry;
    }
  }

  @Override
  public void put(String key, Entry entry) {
    int evicted = 0;
    synchronized (entries) {
      entries.put(key, entry);
      Iterator<Map.Entry<String, Entry>> eldest = entries.entrySet().iterator();
      while (entries.size() > maximumEntries) {
        eldest.next();
        eldest.remove();
        evicted++;
      }
    }
    for (int i = 0; i < evicted; i++) {
      onEviction.run();
    }
  }

  @Override
  public boolean invalidate(String key) {
    long now = ticker.read();
    synchronized (entries) {
      Entry removed = entries.remove(key);
      return removed != null && removed.expiresAtNanos() - now > 0;
    }
  }

  @Override
  public void invalidateIf(Predicate<String> keys) {
    synchronized (entries) {
      entries.keySet().removeIf(keys);
    }
  }

  @Override
  public Map<String, Entry> snapshot(Predicate<String> keys, int limit) {
    long now = ticker.read();
    Map<String, Entry> found = new LinkedHashMap<>();
    synchronized (entries) {
      for (Map.Entry<String, Entry> e : entries.entrySet()) {
        if (found.size() >= limit) {
          break;
        }
        if (keys.test(e.getKey()) && e.getValue().expiresAtNanos() - now > 0) {
          found.put(e.getKey(), e.getValue());
        }
      }
    }
    return found;
  }

  @Override
  public void invalidateAll() {
    synchronized (entries) {
      entries.clear();
    }
  }

  @Override
  public long size() {
    synchronized (entries) {
      return entries.size();
    }
  }
}
