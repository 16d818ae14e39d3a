package org.nisprotocol.embedded;

import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.Expiry;
import com.github.benmanes.caffeine.cache.Ticker;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import org.nisprotocol.core.Cache;
import org.nisprotocol.core.CacheKeys;
import org.nisprotocol.core.ClosedException;
import org.nisprotocol.core.ValidationException;

/**
 * The in-process cache, the default backend: a Caffeine cache bounded by approximate bytes, with
 * a TTL per entry that is checked on every read. Values are kept as the JSON text given.
 *
 * <p>Thread-safe.
 */
public final class InMemoryCache implements Cache {
  private record Key(String namespace, String key) {}

  private record Stored(String json, long ttlNanos) {}

  private final InMemoryCacheConfig config;
  private final com.github.benmanes.caffeine.cache.Cache<Key, Stored> entries;
  private volatile boolean closed;

  private InMemoryCache(InMemoryCacheConfig config) {
    this.config = config;
    InstantSource clock = config.clock();
    this.entries =
        Caffeine.newBuilder()
            .ticker(tickerOf(clock))
            .executor(Runnable::run)
            .maximumWeight(config.maximumBytes())
            .weigher((Key k, Stored v) -> weight(k, v))
            .expireAfter(
                new Expiry<Key, Stored>() {
                  @Override
                  public long expireAfterCreate(Key key, Stored value, long currentTime) {
                    return value.ttlNanos();
                  }

                  @Override
                  public long expireAfterUpdate(
                      Key key, Stored value, long currentTime, long currentDuration) {
                    return value.ttlNanos();
                  }

                  @Override
                  public long expireAfterRead(
                      Key key, Stored value, long currentTime, long currentDuration) {
                    return currentDuration;
                  }
                })
            .build();
  }

  /** A cache with {@link InMemoryCacheConfig#defaults()}. */
  public static InMemoryCache create() {
    return create(InMemoryCacheConfig.defaults());
  }

  public static InMemoryCache create(InMemoryCacheConfig config) {
    return new InMemoryCache(Objects.requireNonNull(config, "config"));
  }

  @Override
  public String name() {
    return "embedded";
  }

  @Override
  public Optional<String> get(String namespace, String key) {
    Key cacheKey = key(namespace, key);
    Stored stored = entries.getIfPresent(cacheKey);
    return stored == null ? Optional.empty() : Optional.of(stored.json());
  }

  @Override
  public Map<String, String> getAll(String namespace, Collection<String> keys) {
    List<Key> cacheKeys = new ArrayList<>(keys.size());
    for (String key : keys) {
      cacheKeys.add(key(namespace, key));
    }
    Map<String, String> found = new LinkedHashMap<>();
    entries.getAllPresent(cacheKeys).forEach((k, v) -> found.put(k.key(), v.json()));
    return found;
  }

  @Override
  public void put(String namespace, String key, String json) {
    put(namespace, key, json, config.namespaceTtls().ttlFor(namespace));
  }

  @Override
  public void put(String namespace, String key, String json, Duration ttl) {
    Key cacheKey = key(namespace, key);
    CacheKeys.requireStorableValue(key, json);
    entries.put(cacheKey, fitting(cacheKey, new Stored(json, CacheKeys.requirePositiveTtl(ttl).toNanos())));
  }

  @Override
  public boolean putIfAbsent(String namespace, String key, String json, Duration ttl) {
    Key cacheKey = key(namespace, key);
    CacheKeys.requireStorableValue(key, json);
    Stored stored = fitting(cacheKey, new Stored(json, CacheKeys.requirePositiveTtl(ttl).toNanos()));
    // Caffeine's map view treats an expired entry as absent, atomically with the write.
    return entries.asMap().putIfAbsent(cacheKey, stored) == null;
  }

  @Override
  public void putAll(String namespace, Map<String, String> values) {
    putAll(namespace, values, config.namespaceTtls().ttlFor(namespace));
  }

  @Override
  public void putAll(String namespace, Map<String, String> values, Duration ttl) {
    long ttlNanos = CacheKeys.requirePositiveTtl(ttl).toNanos();
    Map<Key, Stored> batch = new LinkedHashMap<>();
    values.forEach((key, json) -> {
      Key cacheKey = key(namespace, key);
      batch.put(cacheKey, fitting(cacheKey, new Stored(CacheKeys.requireStorableValue(key, json), ttlNanos)));
    });
    entries.putAll(batch);
  }

  @Override
  public Map<String, String> entries(String namespace, int limit) {
    requireOpen();
    CacheKeys.requireValidNamespace(namespace);
    Map<String, String> found = new LinkedHashMap<>();
    for (Key key : List.copyOf(entries.asMap().keySet())) {
      if (found.size() >= limit) {
        break;
      }
      if (key.namespace().equals(namespace)) {
        Stored stored = entries.getIfPresent(key); // honours expiry
        if (stored != null) {
          found.put(key.key(), stored.json());
        }
      }
    }
    return found;
  }

  @Override
  public boolean delete(String namespace, String key) {
    return entries.asMap().remove(key(namespace, key)) != null;
  }

  @Override
  public long clear(String namespace) {
    requireOpen();
    CacheKeys.requireValidNamespace(namespace);
    long removed = 0;
    for (Key key : List.copyOf(entries.asMap().keySet())) {
      if (key.namespace().equals(namespace) && entries.asMap().remove(key) != null) {
        removed++;
      }
    }
    return removed;
  }

  /** Entries currently held, expired ones not yet cleaned up included (for metrics). */
  public long estimatedSize() {
    return entries.estimatedSize();
  }

  @Override
  public void close() {
    closed = true;
    entries.invalidateAll();
  }

  private Key key(String namespace, String key) {
    requireOpen();
    return new Key(CacheKeys.requireValidNamespace(namespace), CacheKeys.requireValidKey(key));
  }

  private void requireOpen() {
    if (closed) {
      throw new ClosedException("the cache is closed");
    }
  }

  /** The entry, when it fits the cache at all: a larger one would be evicted as soon as written. */
  private Stored fitting(Key key, Stored value) {
    int weight = weight(key, value);
    if (weight > config.maximumBytes()) {
      throw new ValidationException("entry '" + key.key() + "' of namespace '" + key.namespace() + "' takes about "
          + weight + " bytes; the cache holds at most " + config.maximumBytes() + " in all");
    }
    return value;
  }

  private static int weight(Key key, Stored value) {
    long bytes = 2L * (key.namespace().length() + key.key().length() + value.json().length()) + 64;
    return (int) Math.min(Integer.MAX_VALUE, bytes);
  }

  private static Ticker tickerOf(InstantSource clock) {
    if (clock.equals(InstantSource.system())) {
      return Ticker.systemTicker();
    }
    return () -> {
      Instant now = clock.instant();
      return now.getEpochSecond() * 1_000_000_000L + now.getNano();
    };
  }
}
