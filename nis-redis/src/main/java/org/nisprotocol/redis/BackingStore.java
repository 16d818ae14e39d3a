package org.nisprotocol.redis;

import java.util.Map;

/**
 * The system of record behind a write-through or write-back namespace of a {@link StrategyCache}
 * (a database, a service). Supplied by the user; it must be thread-safe. An exception it throws
 * means the write did not happen: write-through passes it to the caller, write-back retries.
 * Writes must be idempotent, since write-back may repeat a batch that failed part way. A
 * write-through store runs while its keys' writes on this instance wait; it must not write or
 * read the cache itself (on another thread and waiting for it, it could wait for itself).
 */
public interface BackingStore {

  /** Stores the JSON under the namespace and key. */
  void write(String namespace, String key, String json);

  /** Removes the key; removing an absent key is not an error. */
  void delete(String namespace, String key);

  /** Stores every entry; write-back calls this once per namespace of a batch. */
  default void writeAll(String namespace, Map<String, String> entries) {
    entries.forEach((key, json) -> write(namespace, key, json));
  }
}
