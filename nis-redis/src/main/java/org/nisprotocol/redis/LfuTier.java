package org.nisprotocol.redis;

import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.function.Predicate;

/**
 * Exact least-frequently-used eviction: past the bound, the entry used (read or written) the fewest
 * times goes; among equally used ones, the one used longest ago. Counts are kept while the entry
 * lives and start again at one when it is written anew after removal. Plain LFU has no ageing:
 * an entry that was hot long ago keeps its count, which is what a namespace asking for LFU gets.
 *
 * <p>O(1) per operation: one insertion-ordered set of keys per use count, and the lowest count in
 * use. One lock.
 */
final class LfuTier implements LocalTier {
  private static final class Node {
    Entry entry;
    long uses;

    Node(Entry entry) {
      this.entry = entry;
    }
  }

  private final int maximumEntries;
  private final Ticker ticker;
  private final Runnable onEviction;
  private final Map<String, Node> nodes = new HashMap<>();
  private final Map<Long, LinkedHashSet<String>> byUses = new HashMap<>();
  private long fewestUses;

  LfuTier(int maximumEntries, Ticker ticker, Runnable onEviction) {
    this.maximumEntries = maximumEntries;
    this.ticker = ticker;
    this.onEviction = onEviction;
  }

  @Override
  public Entry get(String key) {
    long now = ticker.read();
    synchronized (this) {
      Node node = nodes.get(key);
      if (node == null) {
        return null;
      }
      if (node.entry.expiresAtNanos() - now <= 0) {
        remove(key, node);
        return null;
      }
      use(key, node);
      return node.entry;
    }
  }

  @Override
  public void put(String key, Entry entry) {
    boolean evicted = false;
    synchronized (this) {
      Node node = nodes.get(key);
      if (node != null) {
        node.entry = entry;
        use(key, node);
        return;
      }
      if (nodes.size() >= maximumEntries) {
        evictOne();
        evicted = true;
      }
      node = new Node(entry);
      nodes.put(key, node);
      node.uses = 1;
      byUses.computeIfAbsent(1L, u -> new LinkedHashSet<>()).add(key);
      fewestUses = 1;
    }
    if (evicted) {
      onEviction.run();
    }
  }

  @Override
  public boolean invalidate(String key) {
    long now = ticker.read();
    synchronized (this) {
      Node node = nodes.get(key);
      if (node == null) {
        return false;
      }
      remove(key, node);
      return node.entry.expiresAtNanos() - now > 0;
    }
  }

  @Override
  public synchronized void invalidateIf(Predicate<String> keys) {
    Iterator<Map.Entry<String, Node>> it = nodes.entrySet().iterator();
    while (it.hasNext()) {
      Map.Entry<String, Node> e = it.next();
      if (keys.test(e.getKey())) {
        it.remove();
        unlinkFromCount(e.getKey(), e.getValue().uses);
      }
    }
  }

  @Override
  public Map<String, Entry> snapshot(Predicate<String> keys, int limit) {
    long now = ticker.read();
    Map<String, Entry> found = new java.util.LinkedHashMap<>();
    synchronized (this) {
      for (Map.Entry<String, Node> e : nodes.entrySet()) {
        if (found.size() >= limit) {
          break;
        }
        Entry entry = e.getValue().entry;
        if (keys.test(e.getKey()) && entry.expiresAtNanos() - now > 0) {
          found.put(e.getKey(), entry);
        }
      }
    }
    return found;
  }

  @Override
  public synchronized void invalidateAll() {
    nodes.clear();
    byUses.clear();
  }

  @Override
  public synchronized long size() {
    return nodes.size();
  }

  // Caller holds the lock.
  private void use(String key, Node node) {
    long uses = node.uses;
    LinkedHashSet<String> bucket = byUses.get(uses);
    bucket.remove(key);
    if (bucket.isEmpty()) {
      byUses.remove(uses);
      if (fewestUses == uses) {
        fewestUses = uses + 1;
      }
    }
    node.uses = uses + 1;
    byUses.computeIfAbsent(node.uses, u -> new LinkedHashSet<>()).add(key);
  }

  // Caller holds the lock.
  private void remove(String key, Node node) {
    nodes.remove(key);
    unlinkFromCount(key, node.uses);
  }

  // Caller holds the lock. Leaves fewestUses possibly stale; evictOne() finds the true lowest.
  private void unlinkFromCount(String key, long uses) {
    LinkedHashSet<String> bucket = byUses.get(uses);
    bucket.remove(key);
    if (bucket.isEmpty()) {
      byUses.remove(uses);
    }
  }

  // Caller holds the lock; the tier is not empty.
  private void evictOne() {
    LinkedHashSet<String> bucket = byUses.get(fewestUses);
    if (bucket == null) {
      fewestUses = byUses.keySet().stream().mapToLong(Long::longValue).min().orElseThrow();
      bucket = byUses.get(fewestUses);
    }
    Iterator<String> oldest = bucket.iterator();
    String victim = oldest.next();
    oldest.remove();
    if (bucket.isEmpty()) {
      byUses.remove(fewestUses);
    }
    nodes.remove(victim);
  }
}
