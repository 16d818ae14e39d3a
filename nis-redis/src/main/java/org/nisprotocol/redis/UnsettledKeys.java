package org.nisprotocol.redis;

import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Write-through keys the store took a write of while the cache refused it (Redis down, its
 * circuit breaker open): the cache may still hold the value the store replaced, or one it
 * deleted, and would serve it again once it answers. Such keys are deleted from the cache as
 * soon as it takes a delete ({@link StrategyCache} tries before reading them, and on a schedule);
 * a miss is then the cache's answer until the next write. At most {@code maxKeys} are kept; past
 * that, the whole namespace is marked, and cleared instead. Thread-safe.
 */
final class UnsettledKeys {
  /** A key of a namespace. */
  record Key(String namespace, String key) {}

  private final int maxKeys;
  private final Set<Key> keys = ConcurrentHashMap.newKeySet();
  private final Set<String> wholeNamespaces = ConcurrentHashMap.newKeySet();

  UnsettledKeys(int maxKeys) {
    if (maxKeys < 1) {
      throw new IllegalArgumentException("maxKeys must be at least 1, got " + maxKeys);
    }
    this.maxKeys = maxKeys;
  }

  /** Notes keys whose cache step failed after the store took their write. */
  void add(String namespace, Collection<String> written) {
    if (wholeNamespaces.contains(namespace)) {
      return;
    }
    for (String key : written) {
      if (keys.size() >= maxKeys) {
        wholeNamespaces.add(namespace);
        keys.removeIf(k -> k.namespace().equals(namespace));
        return;
      }
      keys.add(new Key(namespace, key));
    }
  }

  /** Forgets keys the cache has just taken a write or delete of: it holds what the store holds. */
  void settled(String namespace, Collection<String> written) {
    if (keys.isEmpty()) {
      return;
    }
    for (String key : written) {
      keys.remove(new Key(namespace, key));
    }
  }

  boolean isEmpty() {
    return keys.isEmpty() && wholeNamespaces.isEmpty();
  }

  /** Whether the cache's value of the key may be older than the store's (its namespace marked whole too). */
  boolean contains(String namespace, String key) {
    return !isEmpty() && (wholeNamespaces.contains(namespace) || keys.contains(new Key(namespace, key)));
  }

  /** Whether the namespace is marked whole: the cache is to be cleared of it. */
  boolean containsWhole(String namespace) {
    return wholeNamespaces.contains(namespace);
  }

  /** Forgets a namespace marked whole, and its keys, once the cache was cleared of it. */
  void namespaceSettled(String namespace) {
    wholeNamespaces.remove(namespace);
    keys.removeIf(k -> k.namespace().equals(namespace));
  }

  /** For a log: how many keys, the first few, and the namespaces marked whole. */
  String describe() {
    return keys.size() + " keys " + keys.stream().limit(5).map(k -> k.namespace() + ":" + k.key()).toList()
        + (wholeNamespaces.isEmpty() ? "" : ", and all of namespaces " + wholeNamespaces);
  }

  /** A snapshot of the namespaces marked whole. */
  Set<String> wholeNamespaces() {
    return Set.copyOf(wholeNamespaces);
  }

  /** A snapshot of the keys. */
  List<Key> keys() {
    return List.copyOf(keys);
  }
}
