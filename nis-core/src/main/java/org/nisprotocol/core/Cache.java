package org.nisprotocol.core;

import java.time.Duration;
import java.util.Collection;
import java.util.Map;
import java.util.Optional;

/**
 * The cache port: JSON documents stored under a namespace and a key, each with a time to live.
 *
 * <p>Values are JSON text, stored as such by every backend (never a language-specific
 * serialization), so agents in any language can share them. Contract, shared by every backend and
 * checked by the cache contract kit:
 *
 * <ul>
 *   <li>A put without a TTL takes its namespace's default ({@link NamespaceTtls}).
 *   <li>An entry past its TTL is never returned, whatever the backend's clean-up does.
 *   <li>Namespaces are separate: clearing one leaves the others; the same key in two namespaces
 *       holds two values.
 *   <li>A bounded backend may evict entries before their TTL to stay within its size.
 * </ul>
 *
 * <p>Namespaces and keys are checked by {@link CacheKeys}; a bad one raises {@link
 * ValidationException}.
 */
public interface Cache extends Backend {

  /** The JSON stored under the key, if present and not expired. */
  Optional<String> get(String namespace, String key);

  /** The present, unexpired entries among the keys, in one round trip where the backend can. */
  Map<String, String> getAll(String namespace, Collection<String> keys);

  /** Stores the JSON with the namespace's default TTL. */
  void put(String namespace, String key, String json);

  /**
   * Stores the JSON for the given time.
   *
   * @throws ValidationException when the TTL is not positive
   */
  void put(String namespace, String key, String json, Duration ttl);

  /**
   * Stores the JSON for the given time unless the key holds an unexpired value; true if it was
   * stored. Atomic: of calls racing for one key, from every instance sharing the backend, one
   * stores. For claims and locks: a backend that cannot reach its store refuses (it never
   * answers from a copy of its own).
   *
   * @throws ValidationException when the TTL is not positive
   */
  boolean putIfAbsent(String namespace, String key, String json, Duration ttl);

  /** Stores every entry with the namespace's default TTL, in one round trip where possible. */
  void putAll(String namespace, Map<String, String> entries);

  /** Stores every entry for the given time, in one round trip where possible. */
  void putAll(String namespace, Map<String, String> entries, Duration ttl);

  /**
   * Up to {@code limit} present, unexpired entries of the namespace, in no particular order: for
   * small namespaces such as directories, not for hot paths.
   */
  Map<String, String> entries(String namespace, int limit);

  /** Removes the key; true if it was present. */
  boolean delete(String namespace, String key);

  /** Removes every entry of the namespace; returns how many were removed. */
  long clear(String namespace);
}
