package org.nisprotocol.redis;

import com.github.benmanes.caffeine.cache.Caffeine;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;
import org.nisprotocol.core.Cache;
import org.nisprotocol.core.CacheKeys;
import org.nisprotocol.core.ClosedException;
import org.nisprotocol.core.HealthCheck;
import org.nisprotocol.core.RetriableException;
import org.nisprotocol.core.RetryPolicy;
import org.nisprotocol.core.ValidationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Gives namespaces of any {@link Cache} (Redis or embedded) a caching strategy. The original's six
 * strategy names, and what each is here:
 *
 * <table>
 *   <caption>Strategies</caption>
 *   <tr><th>Strategy</th><th>Semantics</th><th>Where</th></tr>
 *   <tr><td>TTL</td><td>An entry expires a fixed time after it was written (its own TTL, else the
 *       namespace default); reads do not extend it. What every backend does, and the default of
 *       every namespace here.</td><td>{@link org.nisprotocol.core.NamespaceTtls}</td></tr>
 *   <tr><td>LRU, LFU</td><td>The eviction policy of the bounded local tier of the namespace: strict
 *       least recently used, or strict least frequently used.</td><td>{@link NearCache} in {@link
 *       RedisCacheConfig#nearCaches()}</td></tr>
 *   <tr><td>WRITE_THROUGH</td><td>A put writes the {@link BackingStore} and then the cache, in the
 *       caller's thread; when the store fails, the exception reaches the caller and the cache is not
 *       written. A delete deletes from the store, then the cache. Writes of one key on this
 *       instance take turns, so the cache ends holding what the store holds; writers of one key on
 *       two instances at once can leave the cache holding the value the store lost, until its
 *       TTL. When the cache fails a write the store took (Redis down), the caller gets the
 *       failure, and the key's cache value, which may be older than the store's, is deleted as
 *       soon as the cache takes deletes again (tried every second, and before the key is read or
 *       claimed here; not after this cache is closed); past 10,000 such keys, the namespace of
 *       the one that would pass the limit is cleared instead.</td><td>{@link
 *       Builder#writeThrough}</td></tr>
 *   <tr><td>WRITE_BACK</td><td>A put is acknowledged once the cache has it; the store gets it later,
 *       in batches (coalesced by key: the newest write wins), every {@link
 *       Builder#writeBackInterval} or as soon as a batch is full. A batch the store refuses is
 *       retried with backoff and never dropped while the cache is open; {@link #close()} flushes
 *       what waits (for up to {@link Builder#shutdownTimeout}). Past {@link
 *       Builder#writeBackMaxPending} waiting writes, puts are refused with {@link
 *       RetriableException}. A put the cache refuses is not queued.</td><td>{@link
 *       Builder#writeBack}</td></tr>
 *   <tr><td>REFRESH_AHEAD</td><td>Reads go through a {@link CacheLoader}: a miss loads the value
 *       (concurrent misses of a key load it once; they wait for that one load) and caches it for the
 *       namespace's refresh TTL. A hit in the last part of its TTL (by default the last 20 %) returns
 *       at once and starts one background reload; callers never wait for it. The remaining TTL comes
 *       from Redis ({@code PTTL}) on the Redis backend, and on other backends from the writes and
 *       loads this instance made. A load after a miss stores its value only if the key is still
 *       absent, and a reload on Redis only if Redis still holds the value it refreshed (compared
 *       and set by one script), so a write, or a delete, another instance made meanwhile stands (a
 *       delete before a miss's load stores is not ordered with it, nor a write of the very value the
 *       reload refreshed).</td><td>{@link Builder#refreshAhead}</td></tr>
 * </table>
 *
 * <p>A namespace has one strategy; namespaces not named keep TTL. {@code clear} only clears the
 * cache; stores keep their data (write-back writes already acknowledged still reach the store).
 * Closing this cache closes the one it decorates. Thread-safe.
 *
 * <p>Meters (on the registry given): {@code nis.cache.write_back.pending} (gauge), {@code
 * nis.cache.write_back.flushed}, {@code nis.cache.write_back.failures}, {@code nis.cache.loads}
 * (tag {@code kind}: miss or refresh, {@code result}: ok or failed).
 */
public final class StrategyCache implements Cache {
  private static final Logger log = LoggerFactory.getLogger(StrategyCache.class);

  /** Default share of the TTL at whose end a read triggers a reload. */
  public static final double DEFAULT_REFRESH_AHEAD_FRACTION = 0.2;
  public static final int DEFAULT_WRITE_BACK_BATCH_SIZE = 100;
  public static final Duration DEFAULT_WRITE_BACK_INTERVAL = Duration.ofSeconds(1);
  public static final int DEFAULT_WRITE_BACK_MAX_PENDING = 10_000;
  public static final Duration DEFAULT_SHUTDOWN_TIMEOUT = Duration.ofSeconds(30);
  /** How many write-through keys with a cache value possibly older than the store's are kept track of, by default. */
  static final int DEFAULT_MAX_UNSETTLED_KEYS = 10_000;
  /** How often the cache is asked again to drop such values. */
  static final Duration SETTLE_INTERVAL = Duration.ofSeconds(1);
  /** Entries whose expiry this instance remembers for refresh-ahead on backends without PTTL. */
  static final int TRACKED_EXPIRIES = 100_000;

  private sealed interface Policy {}

  private record WriteThrough(BackingStore store) implements Policy {}

  private record WriteBack(BackingStore store) implements Policy {}

  private record RefreshAhead(CacheLoader loader, Duration ttl, double fraction) implements Policy {}

  private record Key(String namespace, String key) {}

  private final Cache delegate;
  private final Map<String, Policy> policies;
  private final InstantSource clock;
  private final Executor executor;
  private final ExecutorService ownedExecutor;
  private final ScheduledExecutorService ticker;
  private final Duration shutdownTimeout;
  private final WriteBackQueue writeBack;
  /** The refresh-ahead loads under way, one a key at most. */
  private final ConcurrentHashMap<Key, LoadInFlight> loading = new ConcurrentHashMap<>();
  private final com.github.benmanes.caffeine.cache.Cache<Key, Instant> expiries;
  private final Counter loadsOk;
  private final Counter loadsFailed;
  private final Counter refreshesOk;
  private final Counter refreshesFailed;
  private volatile boolean closed;
  private final UnsettledKeys unsettled;
  /**
   * Locks by key (striped) that order writes of one key: a write-back write's write to the cache
   * with its place in the queue (two writes of a key reach the store in the order the cache took
   * them), and a write-through write's store call with its cache call (the cache ends as the store).
   */
  private final ReentrantLock[] keyOrder = new ReentrantLock[64];
  /** The same for write-through namespaces, whose locks are held while their store runs: apart, so that a slow store does not hold up write-back writes. */
  private final ReentrantLock[] writeThroughOrder = new ReentrantLock[64];

  private StrategyCache(Builder b) {
    for (int i = 0; i < keyOrder.length; i++) {
      keyOrder[i] = new ReentrantLock();
      writeThroughOrder[i] = new ReentrantLock();
    }
    this.delegate = b.delegate;
    // a HashMap, so that a null namespace reaches the delegate's validation
    this.policies = Collections.unmodifiableMap(new HashMap<>(b.policies));
    this.clock = b.clock;
    this.shutdownTimeout = b.shutdownTimeout;
    if (b.executor == null) {
      this.ownedExecutor = Executors.newVirtualThreadPerTaskExecutor();
      this.executor = ownedExecutor;
    } else {
      this.ownedExecutor = null;
      this.executor = b.executor;
    }
    Map<String, BackingStore> writeBackStores = new LinkedHashMap<>();
    policies.forEach(
        (namespace, policy) -> {
          if (policy instanceof WriteBack wb) {
            writeBackStores.put(namespace, wb.store());
          }
        });
    MeterRegistry registry = b.registry;
    this.unsettled = new UnsettledKeys(b.maxUnsettledKeys);
    boolean writeThrough = policies.values().stream().anyMatch(p -> p instanceof WriteThrough);
    this.ticker = writeBackStores.isEmpty() && !writeThrough
        ? null
        : Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "nis-strategy-cache");
              t.setDaemon(true);
              return t;
            });
    if (writeThrough) {
      long interval = SETTLE_INTERVAL.toNanos();
      ticker.scheduleWithFixedDelay(this::settleUnsettled, interval, interval, TimeUnit.NANOSECONDS);
    }
    if (writeBackStores.isEmpty()) {
      this.writeBack = null;
    } else {
      this.writeBack =
          new WriteBackQueue(
              writeBackStores,
              b.writeBackBatchSize,
              b.writeBackMaxPending,
              b.writeBackRetry,
              clock,
              () -> ThreadLocalRandom.current().nextDouble());
      Gauge.builder("nis.cache.write_back.pending", writeBack, WriteBackQueue::pending)
          .description("writes acknowledged and not yet in the backing store")
          .register(registry);
      Gauge.builder("nis.cache.write_back.flushed", writeBack, WriteBackQueue::flushed)
          .description("writes handed to the backing store")
          .register(registry);
      Gauge.builder("nis.cache.write_back.failures", writeBack, WriteBackQueue::failures)
          .description("write-back batches the backing store refused")
          .register(registry);
      long interval = b.writeBackInterval.toNanos();
      ticker.scheduleWithFixedDelay(this::flushQuietly, interval, interval, TimeUnit.NANOSECONDS);
    }
    this.expiries = Caffeine.newBuilder().maximumSize(TRACKED_EXPIRIES).executor(Runnable::run).build();
    loadsOk = loads(registry, "miss", "ok");
    loadsFailed = loads(registry, "miss", "failed");
    refreshesOk = loads(registry, "refresh", "ok");
    refreshesFailed = loads(registry, "refresh", "failed");
  }

  /** A builder of strategies over the cache (which the result owns and closes). */
  public static Builder builder(Cache delegate) {
    return new Builder(Objects.requireNonNull(delegate, "delegate"));
  }

  @Override
  public String name() {
    return delegate.name();
  }

  // ---- reads ----

  @Override
  public Optional<String> get(String namespace, String key) {
    Policy policy = policies.get(namespace);
    if (policy instanceof RefreshAhead refreshAhead) {
      CacheKeys.requireValidKey(key);
      return getRefreshingAhead(namespace, key, refreshAhead);
    }
    if (policy instanceof WriteThrough && unsettled.contains(namespace, key)) {
      settleQuietly(namespace, List.of(key));
    }
    return delegate.get(namespace, key);
  }

  @Override
  public Map<String, String> getAll(String namespace, Collection<String> keys) {
    if (policies.get(namespace) instanceof WriteThrough && !unsettled.isEmpty()) {
      settleQuietly(namespace, keys.stream().filter(key -> unsettled.contains(namespace, key)).toList());
    }
    if (!(policies.get(namespace) instanceof RefreshAhead policy)) {
      return delegate.getAll(namespace, keys);
    }
    Map<String, String> found;
    Map<String, Duration> remaining = new HashMap<>();
    if (delegate instanceof RedisCache redis) {
      found = new HashMap<>();
      redis.getAllWithTtl(namespace, keys).forEach((key, value) -> {
        found.put(key, value.json());
        if (value.remaining() != null) {
          remaining.put(key, value.remaining());
        }
      });
    } else {
      found = delegate.getAll(namespace, keys);
      found.keySet().forEach(key -> {
        Duration left = remainingKnownHere(namespace, key);
        if (left != null) {
          remaining.put(key, left);
        }
      });
    }
    Map<String, String> all = new LinkedHashMap<>();
    for (String key : new LinkedHashSet<>(keys)) {
      String json = found.get(key);
      if (json != null) {
        all.put(key, json);
        Duration left = remaining.get(key);
        if (left != null && dueForRefresh(left, policy)) {
          refreshInBackground(namespace, key, json, policy);
        }
      } else {
        loadOnce(namespace, key, policy).ifPresent(v -> all.put(key, v));
      }
    }
    return all;
  }

  /** The remaining TTL of a key as this instance's writes and loads left it, if it knows. */
  private Duration remainingKnownHere(String namespace, String key) {
    Instant expiresAt = expiries.getIfPresent(new Key(namespace, key));
    return expiresAt == null ? null : Duration.between(clock.instant(), expiresAt);
  }

  private Optional<String> getRefreshingAhead(String namespace, String key, RefreshAhead policy) {
    Optional<String> json;
    Duration remaining;
    if (delegate instanceof RedisCache redis) {
      Optional<RedisCache.Found> found = redis.getWithTtl(namespace, key);
      json = found.map(RedisCache.Found::json);
      remaining = found.map(RedisCache.Found::remaining).orElse(null);
    } else {
      json = delegate.get(namespace, key);
      remaining = remainingKnownHere(namespace, key);
    }
    if (json.isEmpty()) {
      return loadOnce(namespace, key, policy);
    }
    if (remaining != null && dueForRefresh(remaining, policy)) {
      refreshInBackground(namespace, key, json.get(), policy);
    }
    return json;
  }

  private static boolean dueForRefresh(Duration remaining, RefreshAhead policy) {
    return remaining.toNanos() <= policy.ttl().toNanos() * policy.fraction();
  }

  /**
   * A load under way: its result, which callers missing the same key wait for, and whether it was
   * overtaken. A write, delete or clear of its key on this instance before the load stores what the
   * loader read overtakes it, and the load then stores nothing: its value may be older than the
   * write's, or the key deleted, and it would stay until its TTL. The overtaking and the load's
   * store take the lock, so one of them comes first; a write that finds no load under way comes
   * before the loader reads the source, whose value then stands.
   */
  private static final class LoadInFlight {
    final CompletableFuture<Optional<String>> result = new CompletableFuture<>();
    /**
     * The value a reload refreshes, or null for a load after a miss. A load after a miss stores
     * only if the key is still absent (a put-if-absent), a reload on Redis only if Redis still
     * holds the value it refreshes: a write or (for a reload) a delete that came meanwhile, on any
     * instance, wins.
     */
    final String replacing;
    final ReentrantLock lock = new ReentrantLock();
    boolean overtaken; // guarded by lock

    private LoadInFlight(String replacing) {
      this.replacing = replacing;
    }

    static LoadInFlight afterMiss() {
      return new LoadInFlight(null);
    }

    static LoadInFlight replacing(String current) {
      return new LoadInFlight(Objects.requireNonNull(current, "current"));
    }

    void overtake() {
      lock.lock();
      try {
        overtaken = true;
      } finally {
        lock.unlock();
      }
    }
  }

  /** Loads in this thread, or waits for the load of the key already under way. */
  private Optional<String> loadOnce(String namespace, String key, RefreshAhead policy) {
    Key k = new Key(namespace, key);
    LoadInFlight mine = LoadInFlight.afterMiss();
    LoadInFlight running = loading.putIfAbsent(k, mine);
    if (running != null) {
      try {
        return running.result.join();
      } catch (CompletionException e) {
        throw e.getCause() instanceof RuntimeException r ? r : e;
      }
    }
    try {
      Optional<String> json = load(k, policy, mine);
      loadsOk.increment();
      mine.result.complete(json);
      return json;
    } catch (RuntimeException | Error e) {
      loadsFailed.increment();
      mine.result.completeExceptionally(e);
      throw e;
    } finally {
      loading.remove(k, mine);
    }
  }

  /** Starts one reload of the key, whose value is {@code current}, unless a load of it is under way; never blocks. */
  private void refreshInBackground(String namespace, String key, String current, RefreshAhead policy) {
    Key k = new Key(namespace, key);
    LoadInFlight mine = LoadInFlight.replacing(current);
    if (loading.putIfAbsent(k, mine) != null) {
      return;
    }
    try {
      executor.execute(
          () -> {
            try {
              mine.result.complete(load(k, policy, mine));
              refreshesOk.increment();
            } catch (RuntimeException | Error e) {
              refreshesFailed.increment();
              mine.result.completeExceptionally(e);
              log.warn("refresh-ahead of {}:{} failed; the cached value stays until its TTL ends", namespace, key, e);
            } finally {
              loading.remove(k, mine);
            }
          });
    } catch (RuntimeException e) {
      loading.remove(k, mine);
      mine.result.cancel(false);
      log.warn("refresh-ahead of {}:{} could not start", namespace, key, e);
    }
  }

  private Optional<String> load(Key k, RefreshAhead policy, LoadInFlight load) {
    Optional<String> json =
        Objects.requireNonNull(policy.loader().load(k.namespace(), k.key()), "the loader returned null");
    if (json.isPresent()) {
      store(k, json.get(), policy, load);
    }
    return json;
  }

  /** Caches a loaded value unless a write of its key overtook the load. */
  private void store(Key k, String json, RefreshAhead policy, LoadInFlight load) {
    load.lock.lock();
    try {
      if (load.overtaken) {
        log.debug("loaded {}:{}, but it was written meanwhile: the cache keeps that", k.namespace(), k.key());
        return;
      }
      boolean conditional = load.replacing == null || delegate instanceof RedisCache;
      if (conditional) {
        boolean stored;
        try {
          stored = load.replacing == null
              ? delegate.putIfAbsent(k.namespace(), k.key(), json, policy.ttl())
              : ((RedisCache) delegate).replaceIfHolding(k.namespace(), k.key(), load.replacing, json, policy.ttl());
        } catch (RetriableException refused) {
          if (load.replacing != null) {
            // the value refreshed stays until its TTL; a put could undo another instance's write
            log.debug("reloaded {}:{}, but Redis refused the replace: {}", k.namespace(), k.key(), refused.getMessage());
            return;
          }
          // The claim was refused (Redis down or slow): the value is kept in this instance's local
          // tier only, since a put sent to Redis could undo another instance's write.
          if (delegate instanceof RedisCache redis) {
            redis.keepLocally(k.namespace(), k.key(), json, policy.ttl());
          } else {
            delegate.put(k.namespace(), k.key(), json, policy.ttl());
          }
          stored = true;
        }
        if (!stored) {
          log.debug("loaded {}:{}, but it was written or deleted meanwhile: the cache keeps that", k.namespace(), k.key());
          return;
        }
      } else {
        // Not a RedisCache itself (another backend, or one wrapped): taken as one instance's
        // cache, whose writes the overtaking above orders with the reload
        delegate.put(k.namespace(), k.key(), json, policy.ttl());
      }
      expiries.put(k, clock.instant().plus(policy.ttl()));
    } catch (RetriableException e) {
      // the cache is unavailable: the caller still gets the loaded value
      log.debug("loaded {}:{} but could not cache it: {}", k.namespace(), k.key(), e.getMessage());
    } finally {
      load.lock.unlock();
    }
  }

  /** Overtakes the loads of these keys under way (see {@link LoadInFlight}); before the write. */
  private void overtakeLoads(String namespace, Collection<String> keys) {
    for (String key : keys) {
      LoadInFlight load = loading.get(new Key(namespace, key));
      if (load != null) {
        load.overtake();
      }
    }
  }

  // ---- writes ----

  @Override
  public void put(String namespace, String key, String json) {
    Policy policy = policies.get(namespace);
    if (policy instanceof RefreshAhead ra) {
      put(namespace, key, json, ra.ttl());
    } else if (policy == null) {
      delegate.put(namespace, key, json);
    } else {
      write(namespace, Map.of(key, json), null, policy);
    }
  }

  @Override
  public void put(String namespace, String key, String json, Duration ttl) {
    Policy policy = policies.get(namespace);
    if (policy == null) {
      delegate.put(namespace, key, json, ttl);
    } else {
      CacheKeys.requireValidKey(key);
      Objects.requireNonNull(json, "json"); // Map.of would say less; write() checks the rest
      write(namespace, Map.of(key, json), CacheKeys.requirePositiveTtl(ttl), policy);
    }
  }

  /**
   * The cache decides (atomically, as its backend does); what it stored then goes where the
   * namespace's strategy sends a put: the store (write-through, so after the cache here, the
   * reverse of a put; when the store fails the key is deleted from the cache again and the caller
   * gets the error; writes of the key on this instance wait meanwhile, callers on other instances
   * that raced it lost to the entry), the write-back queue (whose room
   * is checked first, even for a call that then stores nothing), or the refresh-ahead schedule
   * (whose reload may later replace the value).
   */
  @Override
  public boolean putIfAbsent(String namespace, String key, String json, Duration ttl) {
    Policy policy = policies.get(namespace);
    if (policy instanceof WriteBack) {
      writeBack.requireRoom(namespace, 1);
      return inKeyOrder(namespace, Collections.singletonList(key), () -> {
        if (!delegate.putIfAbsent(namespace, key, json, ttl)) {
          return false;
        }
        queueForStore(namespace, Map.of(key, json));
        return true;
      });
    }
    if (policy instanceof WriteThrough wt) {
      return inKeyOrder(namespace, Collections.singletonList(key), () -> {
        if (unsettled.contains(namespace, key)) {
          settle(namespace, List.of(key)); // an older value the store no longer has is no claim
        }
        if (!delegate.putIfAbsent(namespace, key, json, ttl)) {
          return false;
        }
        try {
          wt.store().write(namespace, key, json);
        } catch (RuntimeException e) {
          try {
            delegate.delete(namespace, key); // still ours: writes of the key on this instance wait for the lock
          } catch (RuntimeException alsoFailed) {
            unsettled.add(namespace, List.of(key)); // the cache holds what the store does not
            e.addSuppressed(alsoFailed);
          }
          throw e;
        }
        unsettled.settled(namespace, List.of(key));
        return true;
      });
    }
    if (policy instanceof RefreshAhead) {
      overtakeLoads(namespace, List.of(key));
    }
    if (!delegate.putIfAbsent(namespace, key, json, ttl)) {
      return false;
    }
    if (policy instanceof RefreshAhead) {
      scheduleRefresh(namespace, List.of(key), ttl);
    }
    return true;
  }

  @Override
  public void putAll(String namespace, Map<String, String> entries) {
    Policy policy = policies.get(namespace);
    if (policy instanceof RefreshAhead ra) {
      putAll(namespace, entries, ra.ttl());
    } else if (policy == null) {
      delegate.putAll(namespace, entries);
    } else {
      write(namespace, entries, null, policy);
    }
  }

  @Override
  public void putAll(String namespace, Map<String, String> entries, Duration ttl) {
    Policy policy = policies.get(namespace);
    if (policy == null) {
      delegate.putAll(namespace, entries, ttl);
    } else {
      write(namespace, entries, CacheKeys.requirePositiveTtl(ttl), policy);
    }
  }

  /** A write under a strategy; ttl null means the namespace default of the delegate. */
  private void write(String namespace, Map<String, String> entries, Duration ttl, Policy policy) {
    entries.keySet().forEach(CacheKeys::requireValidKey);
    entries.forEach(CacheKeys::requireStorableValue); // before the store sees any of them
    switch (policy) {
      case WriteThrough wt -> inKeyOrder(namespace, entries.keySet(), () -> {
        if (entries.size() == 1) {
          Map.Entry<String, String> e = entries.entrySet().iterator().next();
          wt.store().write(namespace, e.getKey(), e.getValue());
        } else {
          wt.store().writeAll(namespace, entries);
        }
        return cacheAfterStore(namespace, entries.keySet(), () -> {
          putInDelegate(namespace, entries, ttl);
          return null;
        });
      });
      case WriteBack wb -> {
        if (closed) {
          throw new ClosedException("the cache is closed: write of namespace " + namespace + " refused");
        }
        writeBack.requireRoom(namespace, entries.size());
        inKeyOrder(namespace, entries.keySet(), () -> {
          putInDelegate(namespace, entries, ttl);
          queueForStore(namespace, entries);
          return null;
        });
      }
      case RefreshAhead ra -> {
        overtakeLoads(namespace, entries.keySet());
        putInDelegate(namespace, entries, ttl);
        scheduleRefresh(namespace, entries.keySet(), ttl);
      }
    }
  }

  /**
   * Queues what the cache took for the store (write-back), flushing in the background once a batch
   * is full; refused once close() has begun, whose drain would not see it (checked under the lock
   * close() takes to begin, so a write is either queued before the drain or refused).
   */
  private void queueForStore(String namespace, Map<String, String> entries) {
    synchronized (this) {
      if (closed) {
        throw new ClosedException("the cache is closed: the write-back of " + entries.size() + " entries of namespace "
            + namespace + " to its store is refused (the cache itself may hold them)");
      }
      entries.forEach((key, json) -> writeBack.write(namespace, key, json));
    }
    if (writeBack.full()) {
      executor.execute(this::flushQuietly);
    }
  }

  /** Runs the action holding the order locks of the keys (taken in stripe order: no deadlock between calls). */
  private <T> T inKeyOrder(String namespace, Collection<String> keys, Supplier<T> action) {
    keys.forEach(CacheKeys::requireValidKey); // a null key is refused as everywhere, before it is hashed
    ReentrantLock[] locks = locksOf(namespace);
    int[] stripes = keys.stream().mapToInt(key -> stripeOf(namespace, key)).distinct().sorted().toArray();
    int locked = 0;
    try {
      for (int stripe : stripes) {
        locks[stripe].lock();
        locked++;
      }
      return action.get();
    } finally {
      for (int i = locked - 1; i >= 0; i--) {
        locks[stripes[i]].unlock();
      }
    }
  }

  private ReentrantLock[] locksOf(String namespace) {
    return policies.get(namespace) instanceof WriteThrough ? writeThroughOrder : keyOrder;
  }

  private static int stripeOf(String namespace, String key) {
    return Math.floorMod(31 * namespace.hashCode() + key.hashCode(), 64);
  }

  /**
   * The cache's part of a write-through write the store took: when it fails, the keys' cache
   * values may be older than the store's, and are dropped from the cache once it answers (see
   * {@link UnsettledKeys}); the caller still gets the failure.
   */
  private <T> T cacheAfterStore(String namespace, Collection<String> keys, Supplier<T> step) {
    try {
      T result = step.get();
      unsettled.settled(namespace, keys);
      return result;
    } catch (RuntimeException e) {
      unsettled.add(namespace, keys);
      throw e;
    }
  }

  /**
   * Drops from the cache the values of these write-through keys that may be older than the
   * store's (the whole namespace when it is marked so); a failure leaves them to the next try.
   */
  private void settle(String namespace, Collection<String> keys) {
    if (unsettled.containsWhole(namespace)) {
      delegate.clear(namespace);
      unsettled.namespaceSettled(namespace);
      return;
    }
    for (String key : keys) {
      inKeyOrder(namespace, List.of(key), () -> settleHeld(namespace, key));
    }
  }

  /** Settles a key whose lock this thread holds. */
  private Void settleHeld(String namespace, String key) {
    if (unsettled.contains(namespace, key)) { // not settled by a write meanwhile
      delegate.delete(namespace, key);
      unsettled.settled(namespace, List.of(key));
    }
    return null;
  }

  /**
   * As {@link #settle} for one key, unless a write of its stripe is under way (its store may be
   * slow): the scheduled settling does not wait for stores, nor hold up the write-back flush that
   * shares its thread. The next round, or the write itself, settles it.
   */
  private void settleUnlessBusy(String namespace, String key) {
    ReentrantLock lock = writeThroughOrder[stripeOf(namespace, key)];
    if (!lock.tryLock()) {
      return;
    }
    try {
      settleHeld(namespace, key);
    } finally {
      lock.unlock();
    }
  }

  private void settleQuietly(String namespace, Collection<String> keys) {
    try {
      settle(namespace, keys);
    } catch (RuntimeException e) {
      log.debug("the cache still refuses to drop values of {} older than its store's: {}", namespace, e.getMessage());
    }
  }

  /** The scheduled settling: tries every unsettled namespace and key, until the cache refuses one. */
  void settleUnsettled() {
    if (unsettled.isEmpty() || closed) {
      return;
    }
    try {
      for (String namespace : unsettled.wholeNamespaces()) {
        settle(namespace, List.of());
      }
      for (UnsettledKeys.Key k : unsettled.keys()) {
        if (unsettled.containsWhole(k.namespace())) {
          settle(k.namespace(), List.of());
        } else {
          settleUnlessBusy(k.namespace(), k.key());
        }
      }
    } catch (RuntimeException e) {
      log.debug("the cache still refuses to drop write-through values older than the store's: {}", e.getMessage());
    }
  }

  /** Notes when the keys the cache took expire, for the refresh-ahead reload. */
  private void scheduleRefresh(String namespace, Collection<String> keys, Duration ttl) {
    Instant expiresAt = clock.instant().plus(ttl);
    keys.forEach(key -> expiries.put(new Key(namespace, key), expiresAt));
  }

  private void putInDelegate(String namespace, Map<String, String> entries, Duration ttl) {
    if (entries.size() == 1) {
      Map.Entry<String, String> e = entries.entrySet().iterator().next();
      if (ttl == null) {
        delegate.put(namespace, e.getKey(), e.getValue());
      } else {
        delegate.put(namespace, e.getKey(), e.getValue(), ttl);
      }
    } else if (ttl == null) {
      delegate.putAll(namespace, entries);
    } else {
      delegate.putAll(namespace, entries, ttl);
    }
  }

  @Override
  public boolean delete(String namespace, String key) {
    Policy policy = policies.get(namespace);
    if (policy instanceof WriteThrough wt) {
      return inKeyOrder(namespace, Collections.singletonList(key), () -> {
        wt.store().delete(namespace, key);
        return cacheAfterStore(namespace, List.of(key), () -> delegate.delete(namespace, key));
      });
    }
    if (policy instanceof RefreshAhead) {
      overtakeLoads(namespace, List.of(key));
      expiries.invalidate(new Key(namespace, key)); // before: a put landing after keeps its own
    }
    if (policy instanceof WriteBack) {
      if (closed) {
        throw new ClosedException("the cache is closed: delete in namespace " + namespace + " refused");
      }
      return inKeyOrder(namespace, Collections.singletonList(key), () -> {
        boolean removed = delegate.delete(namespace, key);
        synchronized (this) { // as queueForStore: queued before close()'s drain, or refused
          if (closed) {
            throw new ClosedException("the cache is closed: the delete of " + key + " in namespace " + namespace
                + " is refused for its store (the cache itself no longer holds it)");
          }
          writeBack.delete(namespace, key);
        }
        return removed;
      });
    }
    return delegate.delete(namespace, key);
  }

  @Override
  public long clear(String namespace) {
    boolean refreshAhead = policies.get(namespace) instanceof RefreshAhead;
    if (refreshAhead) {
      loading.forEach((k, load) -> {
        if (k.namespace().equals(namespace)) {
          load.overtake();
        }
      });
      expiries.asMap().keySet().removeIf(k -> k.namespace().equals(namespace));
    }
    return delegate.clear(namespace);
  }

  @Override
  public Map<String, String> entries(String namespace, int limit) {
    return delegate.entries(namespace, limit);
  }

  @Override
  public HealthCheck checkHealth(Duration timeout) {
    return delegate.checkHealth(timeout);
  }

  @Override
  public void recover() {
    delegate.recover();
  }

  // ---- write-back ----

  /**
   * Hands every waiting write-back write to its store now.
   *
   * @throws RetriableException when a store refuses a batch (its writes stay queued)
   */
  public void flush() {
    if (writeBack != null) {
      writeBack.flushNow();
    }
  }

  /** Write-back writes acknowledged and not yet in their store. */
  public int pendingWrites() {
    return writeBack == null ? 0 : writeBack.pending();
  }

  /** The scheduled flush: writes what is due, leaves failures to the backoff. */
  void flushQuietly() {
    try {
      if (writeBack.due()) {
        writeBack.flushDue();
      }
    } catch (RuntimeException e) {
      log.warn("write-back flush failed unexpectedly", e);
    }
  }

  /**
   * Flushes waiting write-back writes (retrying with backoff for up to the shutdown timeout), then
   * closes the decorated cache. Writes the stores still refuse at the deadline are logged with
   * their keys. Idempotent.
   */
  @Override
  public void close() {
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
    }
    if (!unsettled.isEmpty()) {
      log.warn("closing with write-through keys whose cache values may be older than their store's"
          + " (the cache refused to drop them): {}; they stay until their TTL", unsettled.describe());
    }
    try {
      if (ticker != null) {
        ticker.shutdown(); // a scheduled flush under way finishes; the drain below waits for it
      }
      if (writeBack != null) {
        drainWriteBack();
      }
    } finally {
      if (ownedExecutor != null) {
        ownedExecutor.shutdownNow();
      }
      delegate.close();
    }
  }

  private void drainWriteBack() {
    long deadline = System.nanoTime() + shutdownTimeout.toNanos();
    while (true) {
      try {
        // Even with nothing pending: a flush under way (whose batch is out of the queue, and comes
        // back if its store fails) holds the queue's flush lock, which this waits for, within the
        // shutdown timeout.
        writeBack.flushNow(Math.max(0, deadline - System.nanoTime()));
        return;
      } catch (RetriableException e) {
        Instant retryAt = writeBack.nextAttemptAt();
        Instant now = clock.instant();
        // The backoff's next attempt; none set (Instant.MIN after a success) or past: at once.
        long waitNanos = retryAt.isAfter(now) ? Duration.between(now, retryAt).toNanos() : TimeUnit.MILLISECONDS.toNanos(1);
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          break;
        }
        try {
          TimeUnit.NANOSECONDS.sleep(Math.min(waitNanos, left));
        } catch (InterruptedException interrupted) {
          Thread.currentThread().interrupt();
          break;
        }
      }
    }
    log.error(
        "closing with {} write-back writes the backing store did not take within {} s, and any of a flush still"
            + " under way; lost: {}",
        writeBack.pending(),
        shutdownTimeout.toSeconds(),
        writeBack.pendingKeys(20));
  }

  private static Counter loads(MeterRegistry registry, String kind, String result) {
    return Counter.builder("nis.cache.loads")
        .description("refresh-ahead loads")
        .tags("kind", kind, "result", result)
        .register(registry);
  }

  /** Builds a {@link StrategyCache}; every setting has a documented default. Not thread-safe. */
  public static final class Builder {
    private final Cache delegate;
    private final Map<String, Policy> policies = new LinkedHashMap<>();
    private InstantSource clock = InstantSource.system();
    private Executor executor;
    private MeterRegistry registry = new SimpleMeterRegistry();
    private int writeBackBatchSize = DEFAULT_WRITE_BACK_BATCH_SIZE;
    private Duration writeBackInterval = DEFAULT_WRITE_BACK_INTERVAL;
    private RetryPolicy writeBackRetry = RetryPolicy.defaults();
    private int writeBackMaxPending = DEFAULT_WRITE_BACK_MAX_PENDING;
    private Duration shutdownTimeout = DEFAULT_SHUTDOWN_TIMEOUT;
    private int maxUnsettledKeys = DEFAULT_MAX_UNSETTLED_KEYS;
    private final List<String> problems = new ArrayList<>();

    private Builder(Cache delegate) {
      this.delegate = delegate;
    }

    /** Writes of the namespace go to the store, then the cache, synchronously. */
    public Builder writeThrough(String namespace, BackingStore store) {
      return policy(namespace, new WriteThrough(Objects.requireNonNull(store, "store")));
    }

    /** Writes of the namespace are acknowledged after the cache write and reach the store later. */
    public Builder writeBack(String namespace, BackingStore store) {
      return policy(namespace, new WriteBack(Objects.requireNonNull(store, "store")));
    }

    /**
     * Reads of the namespace load misses with the loader and cache them for {@code ttl}; a hit in
     * the last {@value #DEFAULT_REFRESH_AHEAD_FRACTION} of the TTL reloads in the background.
     */
    public Builder refreshAhead(String namespace, CacheLoader loader, Duration ttl) {
      return refreshAhead(namespace, loader, ttl, DEFAULT_REFRESH_AHEAD_FRACTION);
    }

    /**
     * As {@link #refreshAhead(String, CacheLoader, Duration)}, reloading in the last {@code
     * fraction} (0 to 1, exclusive) of the TTL.
     */
    public Builder refreshAhead(String namespace, CacheLoader loader, Duration ttl, double fraction) {
      if (!(fraction > 0 && fraction < 1)) {
        problems.add("refresh-ahead fraction of " + namespace + " must be between 0 and 1, got " + fraction);
      }
      try {
        CacheKeys.requirePositiveTtl(ttl);
      } catch (ValidationException e) {
        problems.add("refresh-ahead TTL of " + namespace + ": " + e.getMessage());
      }
      return policy(namespace, new RefreshAhead(Objects.requireNonNull(loader, "loader"), ttl, fraction));
    }

    /** Time of expiry tracking and write-back retries (default the system clock). */
    public Builder clock(InstantSource clock) {
      this.clock = Objects.requireNonNull(clock, "clock");
      return this;
    }

    /**
     * Runs background reloads and full write-back batches (default: a virtual thread each, owned
     * by the cache). An executor given here is not shut down by {@link #close()}.
     */
    public Builder executor(Executor executor) {
      this.executor = Objects.requireNonNull(executor, "executor");
      return this;
    }

    public Builder meterRegistry(MeterRegistry registry) {
      this.registry = Objects.requireNonNull(registry, "registry");
      return this;
    }

    /** Writes per write-back batch (default {@value #DEFAULT_WRITE_BACK_BATCH_SIZE}). */
    public Builder writeBackBatchSize(int writeBackBatchSize) {
      this.writeBackBatchSize = writeBackBatchSize;
      return this;
    }

    /** How often waiting writes are flushed (default 1 s). */
    public Builder writeBackInterval(Duration writeBackInterval) {
      this.writeBackInterval = Objects.requireNonNull(writeBackInterval, "writeBackInterval");
      return this;
    }

    /**
     * Backoff between attempts at a batch the store refused (default: 1 s doubling to 30 s, jitter
     * ±50 %). Attempts go on past {@code maxAttempts}, at the maximum delay, logged as errors.
     */
    public Builder writeBackRetry(RetryPolicy writeBackRetry) {
      this.writeBackRetry = Objects.requireNonNull(writeBackRetry, "writeBackRetry");
      return this;
    }

    /** Writes that may wait for the store before puts are refused (default 10 000). */
    public Builder writeBackMaxPending(int writeBackMaxPending) {
      this.writeBackMaxPending = writeBackMaxPending;
      return this;
    }

    /** How long close may spend flushing write-back writes (default 30 s). */
    public Builder shutdownTimeout(Duration shutdownTimeout) {
      this.shutdownTimeout = Objects.requireNonNull(shutdownTimeout, "shutdownTimeout");
      return this;
    }

    /**
     * How many write-through keys whose cache step failed are kept track of before their
     * namespace is cleared whole (for tests; at least 1).
     */
    Builder maxUnsettledKeys(int max) {
      this.maxUnsettledKeys = max;
      return this;
    }

    /**
     * @throws ValidationException listing every setting that is wrong
     */
    public StrategyCache build() {
      List<String> all = new ArrayList<>(problems);
      if (writeBackBatchSize < 1) {
        all.add("writeBackBatchSize must be at least 1, got " + writeBackBatchSize);
      }
      if (writeBackMaxPending < 1) {
        all.add("writeBackMaxPending must be at least 1, got " + writeBackMaxPending);
      }
      if (writeBackInterval.toMillis() < 1) {
        all.add("writeBackInterval must be at least 1 ms, got " + writeBackInterval);
      }
      if (shutdownTimeout.isNegative()) {
        all.add("shutdownTimeout must not be negative, got " + shutdownTimeout);
      }
      if (!all.isEmpty()) {
        throw new ValidationException(all);
      }
      return new StrategyCache(this);
    }

    private Builder policy(String namespace, Policy policy) {
      try {
        CacheKeys.requireValidNamespace(namespace);
      } catch (ValidationException e) {
        problems.add(e.getMessage());
        return this;
      }
      if (policies.putIfAbsent(namespace, policy) != null) {
        problems.add("namespace " + namespace + " has two strategies; give it one");
      }
      return this;
    }
  }

  /** For tests in this package: the queue of write-back writes. */
  WriteBackQueue writeBackQueue() {
    return writeBack;
  }
}
