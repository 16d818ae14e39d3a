package org.nisprotocol.redis;

import io.lettuce.core.KeyScanCursor;
import io.lettuce.core.KeyValue;
import io.lettuce.core.RedisCommandExecutionException;
import io.lettuce.core.RedisCommandTimeoutException;
import io.lettuce.core.RedisConnectionException;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.ScanArgs;
import io.lettuce.core.ScanCursor;
import io.lettuce.core.SetArgs;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.output.IntegerOutput;
import io.lettuce.core.output.StatusOutput;
import io.lettuce.core.protocol.AsyncCommand;
import io.lettuce.core.protocol.Command;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import io.lettuce.core.protocol.RedisCommand;
import io.lettuce.core.pubsub.RedisPubSubAdapter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.function.Predicate;
import java.util.function.Supplier;
import org.nisprotocol.core.BackendRefusedException;
import org.nisprotocol.core.Cache;
import org.nisprotocol.core.CacheKeys;
import org.nisprotocol.core.CircuitBreaker;
import org.nisprotocol.core.ClosedException;
import org.nisprotocol.core.HealthCheck;
import org.nisprotocol.core.HealthStatus;
import org.nisprotocol.core.NisException;
import org.nisprotocol.core.RetriableException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cache port on Redis (Lettuce, one multiplexed connection), with an optional near cache per
 * namespace and a local fallback that keeps reads answering while Redis is down or hung.
 *
 * <h2>Storage</h2>
 *
 * Each entry is a Redis string under {@code nis:cache:{namespace}:{key}} holding the JSON text as
 * given (UTF-8), written with {@code SET ... PX ttl}; a put without a TTL takes the namespace's
 * default. {@link #getAll} is one {@code MGET}; {@link #putAll} is one {@code SET PX} per entry,
 * written to the connection together (a pipeline: one flush per 100 commands, one round trip); {@link #clear} walks the namespace
 * with {@code SCAN MATCH nis:cache:{namespace}:* COUNT n} and removes each page with {@code UNLINK}
 * (never {@code KEYS}). In cluster mode Lettuce splits {@code MGET}/{@code UNLINK} by slot, routes
 * each {@code SET} to its node and scans every master.
 *
 * <h2>Near cache</h2>
 *
 * A namespace listed in {@link RedisCacheConfig#nearCaches()} gets a bounded local tier ({@link
 * NearCache}) that reads consult first. A value read from Redis is kept locally until its Redis TTL
 * ({@code PTTL}, fetched in the same round trip). Every write, delete or clear of such a namespace
 * publishes an {@link Invalidation} on {@link RedisCacheConfig#invalidationChannel()} after Redis
 * acknowledged it; every instance drops those keys when the message arrives (within milliseconds).
 * A read that raced with an invalidation does not store what it read: each namespace keeps
 * invalidation counters (striped by key), and a read stores its value only if the counter of its
 * key did not move while the read was in flight; a write keeps its own value locally on the same
 * condition. While the subscription is down, the near cache is bypassed (reads go to Redis); when it
 * is back, the near cache is emptied, since messages may have been missed. Writes made to Redis by
 * other programs (which publish no invalidation) reach a near cache only when its copy expires, so
 * a namespace that others write should not be near-cached.
 *
 * <h2>When Redis is unavailable</h2>
 *
 * Each command times out after {@link RedisCacheConfig#commandTimeout()} (250 ms by default), and a
 * circuit breaker (3 consecutive failures open it for 30 s) stops calling a failing Redis; a
 * background probe pings Redis every {@link RedisCacheConfig#healthProbeInterval()}, and closes the
 * breaker as soon as Redis answers, without waiting for the open time to end or for traffic.
 * Meanwhile:
 *
 * <ul>
 *   <li><b>Reads never throw</b> (only invalid arguments do): they answer from the local tier, that
 *       is the near cache of the namespace, or else the fallback tier holding this instance's own
 *       writes ({@link RedisCacheConfig#fallbackBytes()}); what is not there reads as absent. These
 *       values may be older than what other instances wrote since; they never outlive their TTL.
 *   <li><b>Writes</b> (put, delete, clear) are applied to the local tier, so this instance keeps
 *       reading its own writes, and then <b>refused</b> with {@link RetriableException}: the caller
 *       learns that other instances will not see them. They are not queued for replay, because a
 *       replay after recovery could overwrite newer values other instances wrote, and a cache
 *       entry is cheap to write again. A write that timed out may still be applied by Redis if it
 *       reached a server that was only slow.
 *   <li><b>Put-if-absent</b> (a claim only Redis can grant) is refused too, and kept nowhere.
 *   <li>{@link #health()} and {@link #checkHealth} report {@link HealthStatus#DEGRADED}; {@link
 *       #recover()} closes the breaker as soon as Redis answers a ping.
 * </ul>
 *
 * When the breaker closes again, the local tiers are emptied: they may hold writes Redis never got
 * and miss invalidations sent during the outage.
 *
 * <h2>Errors</h2>
 *
 * Invalid namespaces, keys and TTLs raise {@link org.nisprotocol.core.ValidationException}; a
 * closed cache raises {@link ClosedException}; an error reply Redis gives for the data (such as
 * {@code WRONGTYPE} for a key another program wrote) raises {@link NisException} and does not count
 * against the breaker.
 *
 * <p>Thread-safe. Metrics: see the meters named {@code nis.cache.*} (hits by tier, misses, hit
 * ratio, puts, evictions, errors, latency with p50/p95/p99), tagged by namespace.
 */
public final class RedisCache implements Cache {
  private static final Logger log = LoggerFactory.getLogger(RedisCache.class);

  /** Invalidation counters per near-cached namespace; a power of two. */
  private static final int EPOCH_STRIPES = 64;

  /** Commands written in one flush by putAll. */
  private static final int PIPELINE_CHUNK = 100;

  /** Past this many namespaces, further ones are served without caching their state. */
  private static final int MAX_REMEMBERED_NAMESPACES = 10_000;

  /** Redis error replies that mean "not now" rather than "never". */
  private static final List<String> TRANSIENT_REPLIES =
      List.of("LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "OOM", "READONLY", "NOAUTH", "WRONGPASS", "NOREPLICAS");

  private final RedisCacheConfig config;
  private final String origin = UUID.randomUUID().toString();
  private final CircuitBreaker breaker;
  private final CacheMetrics metrics;
  private final LocalTier.Ticker ticker = LocalTier.Ticker.SYSTEM;
  private final LocalTier fallback;
  private final ConcurrentHashMap<String, NamespaceState> namespaces = new ConcurrentHashMap<>();
  private final long guardNanos;
  private final ScheduledExecutorService prober;
  private final RedisLink link;

  private volatile boolean invalidationsLive;
  private volatile String lastError;
  private volatile boolean closed;

  /** What the cache knows about one namespace; only valid namespaces get one. */
  private static final class NamespaceState {
    final String name;
    final String prefix;
    final Duration defaultTtl;
    final LocalTier near;
    final AtomicLongArray epochs;
    final CacheMetrics.Namespace meters;

    NamespaceState(String name, Duration defaultTtl, LocalTier near, CacheMetrics.Namespace meters) {
      this.name = name;
      this.prefix = CacheKeys.namespacePrefix(name);
      this.defaultTtl = defaultTtl;
      this.near = near;
      this.epochs = near == null ? null : new AtomicLongArray(EPOCH_STRIPES);
      this.meters = meters;
    }

    int stripe(String key) {
      int h = key.hashCode();
      return (h ^ (h >>> 16)) & (EPOCH_STRIPES - 1);
    }

    long epoch(String key) {
      return epochs.get(stripe(key));
    }

    void bump(String key) {
      epochs.incrementAndGet(stripe(key));
    }

    /** Moves the key's counter on from {@code expected}; false when something else moved it first. */
    boolean bumpIfUnchanged(String key, long expected) {
      return epochs.compareAndSet(stripe(key), expected, expected + 1);
    }

    void bumpAll() {
      for (int i = 0; i < EPOCH_STRIPES; i++) {
        epochs.incrementAndGet(i);
      }
    }
  }

  /** Redis did not answer usefully: down, hung, or refusing for now. */
  private static final class Unavailable extends Exception {
    private static final long serialVersionUID = 1L;
    final boolean countsAgainstBreaker;

    Unavailable(String message, Throwable cause, boolean countsAgainstBreaker) {
      super(message, cause, false, false);
      this.countsAgainstBreaker = countsAgainstBreaker;
    }
  }

  private RedisCache(RedisCacheConfig config, MeterRegistry registry) {
    this.config = config;
    this.metrics = new CacheMetrics(registry);
    this.breaker = CircuitBreaker.create("redis-cache", config.circuitBreaker(), config.clock());
    // Lettuce times each command out after commandTimeout; this guard only backs it up
    this.guardNanos = 2 * config.commandTimeout().toNanos() + TimeUnit.MILLISECONDS.toNanos(100);
    this.fallback =
        config.fallbackBytes() == 0
            ? null
            : new AdaptiveTier(config.fallbackBytes(), true, ticker, () -> {});
    config
        .nearCaches()
        .forEach(
            (namespace, settings) -> {
              CacheMetrics.Namespace meters = metrics.of(namespace);
              LocalTier near = LocalTier.create(settings, ticker, meters.evictions::increment);
              namespaces.put(
                  namespace,
                  new NamespaceState(namespace, config.namespaceTtls().ttlFor(namespace), near, meters));
            });
    breaker.addListener(
        transition -> {
          if (transition.to() == CircuitBreaker.State.CLOSED) {
            log.info("Redis at {} answers again; the cache is healthy", config.target());
            dropLocalTiers();
          } else if (transition.to() == CircuitBreaker.State.OPEN
              && transition.from() == CircuitBreaker.State.CLOSED) {
            log.warn(
                "Redis at {} failed {} times in a row ({}); reads are served locally, writes refused",
                config.target(),
                config.circuitBreaker().failureThreshold(),
                lastError);
          }
        });
    this.link = RedisLink.connect(config, new InvalidationListener(), () -> invalidationsLive = false);
    this.prober =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "nis-redis-cache-probe");
              t.setDaemon(true);
              return t;
            });
    long interval = config.healthProbeInterval().toNanos();
    prober.scheduleWithFixedDelay(this::probe, interval, interval, TimeUnit.NANOSECONDS);
  }

  /**
   * Connects to Redis; meters go to an in-memory registry.
   *
   * @throws NisException when Redis refuses the credentials
   * @throws RetriableException when Redis cannot be reached
   */
  public static RedisCache create(RedisCacheConfig config) {
    return create(config, new SimpleMeterRegistry());
  }

  /**
   * Connects to Redis, publishing meters to the registry.
   *
   * @throws NisException when Redis refuses the credentials
   * @throws RetriableException when Redis cannot be reached
   */
  public static RedisCache create(RedisCacheConfig config, MeterRegistry registry) {
    return new RedisCache(
        Objects.requireNonNull(config, "config"), Objects.requireNonNull(registry, "registry"));
  }

  @Override
  public String name() {
    return "redis";
  }

  /** The settings this cache runs with. */
  public RedisCacheConfig config() {
    return config;
  }

  /**
   * Whether Redis answered lately, and the breaker's state; see {@link CacheHealth}. Costs no
   * round trip.
   */
  public CacheHealth health() {
    CircuitBreaker.State state = breaker.state();
    HealthStatus status;
    if (closed) {
      status = HealthStatus.UNHEALTHY;
    } else if (state == CircuitBreaker.State.CLOSED
        && (config.nearCaches().isEmpty() || invalidationsLive)) {
      status = HealthStatus.HEALTHY;
    } else {
      status = HealthStatus.DEGRADED;
    }
    return new CacheHealth(
        status,
        state,
        breaker.failureCount(),
        breaker.lastFailureAt(),
        Optional.ofNullable(lastError),
        invalidationsLive);
  }

  /**
   * Pings Redis, waiting at most the timeout (outside the breaker). Healthy when Redis answers,
   * the breaker is closed and invalidations arrive; degraded when Redis does not answer (reads are
   * then served locally and writes refused), when it answers but the breaker is still open, or when
   * invalidations do not arrive; unhealthy once closed.
   */
  @Override
  public HealthCheck checkHealth(Duration timeout) {
    if (closed) {
      return HealthCheck.of(HealthStatus.UNHEALTHY, Duration.ZERO, "the Redis cache is closed");
    }
    long start = System.nanoTime();
    try {
      link.async().ping().get(timeout.toNanos(), TimeUnit.NANOSECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return HealthCheck.of(HealthStatus.UNKNOWN, Duration.ofNanos(System.nanoTime() - start), "interrupted");
    } catch (ExecutionException | TimeoutException | RuntimeException e) {
      Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
      String why = e instanceof TimeoutException ? "no answer within " + timeout.toMillis() + " ms" : String.valueOf(cause);
      return HealthCheck.of(
          HealthStatus.DEGRADED,
          Duration.ofNanos(System.nanoTime() - start),
          "Redis at " + config.target() + " does not answer (" + why
              + "); reads are served from the local tier, writes are refused");
    }
    Duration latency = Duration.ofNanos(System.nanoTime() - start);
    CircuitBreaker.State state = breaker.state();
    if (state != CircuitBreaker.State.CLOSED) {
      return HealthCheck.of(
          HealthStatus.DEGRADED,
          latency,
          "Redis answers again but the circuit breaker is " + state.wireName()
              + " until its probes pass; reads are served from the local tier");
    }
    if (!config.nearCaches().isEmpty() && !invalidationsLive) {
      return HealthCheck.of(
          HealthStatus.DEGRADED,
          latency,
          "near-cache invalidations are not arriving; near caches are bypassed");
    }
    return HealthCheck.healthy(latency);
  }

  /** Closes the breaker at once if Redis answers a ping within the command timeout. */
  @Override
  public void recover() {
    if (closed || breaker.state() == CircuitBreaker.State.CLOSED) {
      return;
    }
    try {
      link.async().ping().get(config.commandTimeout().toNanos(), TimeUnit.NANOSECONDS);
      breaker.reset();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ExecutionException | TimeoutException | RuntimeException e) {
      lastError = "recovery probe failed: " + e;
    }
  }

  // ---- reads ----

  @Override
  public Optional<String> get(String namespace, String key) {
    NamespaceState ns = state(namespace);
    // A key in the near cache was valid when it was stored, so a hit needs no key check.
    if (ns.near != null && key != null && invalidationsLive && !closed) {
      LocalTier.Entry entry = ns.near.get(key);
      if (entry != null && !entry.localOnly()) {
        ns.meters.nearHits.increment();
        return Optional.of(entry.json());
      }
    }
    CacheKeys.requireValidKey(key);
    requireOpen();
    Found found = read(ns, key, ns.near != null, CacheMetrics.Operation.GET);
    return found == null ? Optional.empty() : Optional.of(found.json());
  }

  /**
   * The value and its remaining time to live, for refresh-ahead. The time is exact for values
   * from Redis or the near cache.
   */
  Optional<Found> getWithTtl(String namespace, String key) {
    NamespaceState ns = state(namespace);
    CacheKeys.requireValidKey(key);
    requireOpen();
    if (ns.near != null && invalidationsLive) {
      LocalTier.Entry entry = ns.near.get(key);
      if (entry != null && !entry.localOnly()) {
        ns.meters.nearHits.increment();
        return Optional.of(
            new Found(entry.json(), Duration.ofNanos(entry.expiresAtNanos() - ticker.read())));
      }
    }
    return Optional.ofNullable(read(ns, key, true, CacheMetrics.Operation.GET));
  }

  /** A value read, and its remaining TTL if known. */
  record Found(String json, Duration remaining) {}

  private Found read(NamespaceState ns, String key, boolean withTtl, CacheMetrics.Operation op) {
    requireOpen();
    if (!breaker.tryAcquire()) {
      ns.meters.errors.increment();
      return readLocal(ns, key);
    }
    String storeKey = ns.prefix + key;
    long start = System.nanoTime();
    try {
      String json;
      long pttl = -1;
      long epoch = ns.near == null ? 0 : ns.epoch(key);
      long sentAt = ticker.read(); // Redis counts the TTL it answers from when it ran the command
      if (withTtl) {
        RedisFuture<String> value = link.async().get(storeKey);
        RedisFuture<Long> ttl = link.async().pttl(storeKey);
        json = await(value, start);
        pttl = await(ttl, start);
      } else {
        json = await(link.async().get(storeKey), start);
      }
      breaker.onSuccess();
      ns.meters.recordLatency(op, start);
      if (json == null) {
        ns.meters.misses.increment();
        return null;
      }
      ns.meters.redisHits.increment();
      Duration remaining = pttl > 0 ? Duration.ofMillis(pttl) : null;
      if (ns.near != null && pttl != -2) {
        storeNear(ns, key, json, pttl, epoch, sentAt);
      }
      return new Found(json, remaining);
    } catch (Unavailable e) {
      failed(ns, e);
      return readLocal(ns, key);
    }
  }

  @Override
  public Map<String, String> getAll(String namespace, Collection<String> keys) {
    return readAll(namespace, keys, null);
  }

  /** As {@link #getAll}, with each value's remaining TTL where known. */
  Map<String, Found> getAllWithTtl(String namespace, Collection<String> keys) {
    Map<String, Duration> remaining = new HashMap<>();
    Map<String, Found> found = new LinkedHashMap<>();
    readAll(namespace, keys, remaining).forEach((key, json) -> found.put(key, new Found(json, remaining.get(key))));
    return found;
  }

  /** The values of the keys found; with {@code remaining} not null, their remaining TTLs put there too. */
  private Map<String, String> readAll(String namespace, Collection<String> keys, Map<String, Duration> remaining) {
    NamespaceState ns = state(namespace);
    Set<String> wanted = new LinkedHashSet<>(keys.size() * 2);
    for (String key : keys) {
      wanted.add(CacheKeys.requireValidKey(key));
    }
    requireOpen();
    Map<String, String> found = new LinkedHashMap<>();
    List<String> missing = new ArrayList<>(wanted.size());
    boolean nearUsable = ns.near != null && invalidationsLive;
    for (String key : wanted) {
      LocalTier.Entry entry = nearUsable ? ns.near.get(key) : null;
      if (entry != null && !entry.localOnly()) {
        ns.meters.nearHits.increment();
        found.put(key, entry.json());
        if (remaining != null) {
          remaining.put(key, Duration.ofNanos(entry.expiresAtNanos() - ticker.read()));
        }
      } else {
        missing.add(key);
      }
    }
    if (missing.isEmpty()) {
      return found;
    }
    if (!breaker.tryAcquire()) {
      ns.meters.errors.increment();
      readAllLocal(ns, missing, found, remaining);
      return found;
    }
    long start = System.nanoTime();
    String[] storeKeys = new String[missing.size()];
    for (int i = 0; i < storeKeys.length; i++) {
      storeKeys[i] = ns.prefix + missing.get(i);
    }
    try {
      long[] epochs = new long[storeKeys.length];
      List<RedisFuture<Long>> ttls = new ArrayList<>();
      if (ns.near != null) {
        for (int i = 0; i < storeKeys.length; i++) {
          epochs[i] = ns.epoch(missing.get(i));
        }
      }
      long sentAt = ticker.read();
      RedisFuture<List<KeyValue<String, String>>> values = link.async().mget(storeKeys);
      if (ns.near != null || remaining != null) {
        for (String storeKey : storeKeys) {
          ttls.add(link.async().pttl(storeKey));
        }
      }
      List<KeyValue<String, String>> answer = await(values, start);
      long[] pttls = new long[storeKeys.length];
      for (int i = 0; i < ttls.size(); i++) {
        pttls[i] = await(ttls.get(i), start);
      }
      breaker.onSuccess();
      ns.meters.recordLatency(CacheMetrics.Operation.GET_ALL, start);
      for (int i = 0; i < answer.size(); i++) {
        KeyValue<String, String> kv = answer.get(i);
        String key = missing.get(i);
        if (kv.hasValue()) {
          ns.meters.redisHits.increment();
          found.put(key, kv.getValue());
          if (ns.near != null && pttls[i] != -2) {
            storeNear(ns, key, kv.getValue(), pttls[i], epochs[i], sentAt);
          }
          if (remaining != null && pttls[i] > 0) {
            remaining.put(key, Duration.ofMillis(pttls[i]));
          }
        } else {
          ns.meters.misses.increment();
        }
      }
      return found;
    } catch (Unavailable e) {
      failed(ns, e);
      readAllLocal(ns, missing, found, remaining);
      return found;
    }
  }

  /**
   * Keeps a value read from Redis until its TTL ({@code pttl}) ends, counted from {@code sentAt}:
   * Redis counted it from no earlier, so the local copy never outlives the one in Redis.
   */
  private void storeNear(NamespaceState ns, String key, String json, long pttl, long epoch, long sentAt) {
    if (!invalidationsLive) {
      return;
    }
    long ttlNanos = pttl > 0 ? TimeUnit.MILLISECONDS.toNanos(pttl) : ns.defaultTtl.toNanos();
    LocalTier.Entry entry = new LocalTier.Entry(json, sentAt + ttlNanos);
    if (ns.epoch(key) == epoch) {
      keepNear(ns, key, entry, epoch);
    }
  }

  /**
   * Puts the entry in the near cache, whose key counter stood at {@code epoch} just before; undoes
   * it when an invalidation arrived meanwhile (it may have run before the put).
   */
  private static void keepNear(NamespaceState ns, String key, LocalTier.Entry entry, long epoch) {
    ns.near.put(key, entry);
    if (ns.epoch(key) != epoch) {
      ns.near.invalidate(key);
    }
  }

  private Found readLocal(NamespaceState ns, String key) {
    LocalTier tier = ns.near != null ? ns.near : fallback;
    LocalTier.Entry entry = tier == null ? null : tier.get(ns.near != null ? key : ns.prefix + key);
    if (entry == null) {
      ns.meters.misses.increment();
      return null;
    }
    ns.meters.fallbackHits.increment();
    return new Found(entry.json(), Duration.ofNanos(Math.max(0, entry.expiresAtNanos() - ticker.read())));
  }

  private void readAllLocal(NamespaceState ns, List<String> keys, Map<String, String> into, Map<String, Duration> remaining) {
    for (String key : keys) {
      Found found = readLocal(ns, key);
      if (found != null) {
        into.put(key, found.json());
        if (remaining != null) {
          remaining.put(key, found.remaining());
        }
      }
    }
  }

  // ---- writes ----

  @Override
  public void put(String namespace, String key, String json) {
    NamespaceState ns = state(namespace);
    put(ns, key, json, ns.defaultTtl);
  }

  @Override
  public void put(String namespace, String key, String json, Duration ttl) {
    put(state(namespace), key, json, ttl);
  }

  private void put(NamespaceState ns, String key, String json, Duration ttl) {
    CacheKeys.requireValidKey(key);
    CacheKeys.requireStorableValue(key, json);
    long ttlMillis = millis(CacheKeys.requirePositiveTtl(ttl));
    requireOpen();
    if (ns.near != null) {
      write(ns, Map.of(key, json), ttlMillis, CacheMetrics.Operation.PUT);
      return;
    }
    if (!breaker.tryAcquire()) {
      ns.meters.errors.increment();
      keepRefusedLocally(ns, Map.of(key, json), ttlMillis);
      throw refused("put of " + ns.name + ":" + key, "the circuit breaker is open", null);
    }
    long start = System.nanoTime();
    long sentAt = ticker.read();
    try {
      await(link.async().set(ns.prefix + key, json, SetArgs.Builder.px(ttlMillis)), start);
      breaker.onSuccess();
    } catch (Unavailable e) {
      failed(ns, e);
      keepRefusedLocally(ns, Map.of(key, json), ttlMillis);
      throw refused("put of " + ns.name + ":" + key, e.getMessage(), e.getCause());
    }
    ns.meters.recordLatency(CacheMetrics.Operation.PUT, start);
    ns.meters.puts.increment();
    applyLocally(ns, Map.of(key, json), sentAt + TimeUnit.MILLISECONDS.toNanos(ttlMillis), false);
  }

  @Override
  public void putAll(String namespace, Map<String, String> entries) {
    NamespaceState ns = state(namespace);
    putAll(ns, entries, ns.defaultTtl);
  }

  @Override
  public void putAll(String namespace, Map<String, String> entries, Duration ttl) {
    putAll(state(namespace), entries, ttl);
  }

  private void putAll(NamespaceState ns, Map<String, String> entries, Duration ttl) {
    long ttlMillis = millis(CacheKeys.requirePositiveTtl(ttl));
    for (Map.Entry<String, String> entry : entries.entrySet()) {
      CacheKeys.requireValidKey(entry.getKey());
      CacheKeys.requireStorableValue(entry.getKey(), entry.getValue());
    }
    requireOpen();
    if (!entries.isEmpty()) {
      write(ns, entries, ttlMillis, CacheMetrics.Operation.PUT_ALL);
    }
  }

  /** SET PX each entry, then PUBLISH the invalidation for a near-cached namespace (see {@link #dispatchAndInvalidate}). */
  private void write(
      NamespaceState ns, Map<String, String> entries, long ttlMillis, CacheMetrics.Operation op) {
    String what = (entries.size() == 1 ? "put of " : "put of " + entries.size() + " entries in ") + describe(ns, entries.keySet());
    if (!breaker.tryAcquire()) {
      ns.meters.errors.increment();
      keepRefusedLocally(ns, entries, ttlMillis);
      throw refused(what, "the circuit breaker is open", null);
    }
    long start = System.nanoTime();
    // For a near cache: the counters after this write's own bump. If another instance's
    // invalidation moves one before Redis acknowledges, that instance may have written the key
    // after us, so this value must not be kept locally.
    Map<String, Long> epochs = null;
    if (ns.near != null) {
      epochs = new LinkedHashMap<>();
      for (String key : entries.keySet()) {
        ns.bump(key);
        epochs.put(key, ns.epoch(key));
      }
    }
    long sentAt = ticker.read(); // Redis counts the TTL from when it ran the command
    List<AsyncCommand<String, String, ?>> commands = new ArrayList<>(entries.size() + 1);
    entries.forEach(
        (key, json) ->
            commands.add(
                command(
                    CommandType.SET,
                    new StatusOutput<>(StringCodec.UTF8),
                    args().addKey(ns.prefix + key).addValue(json).add("PX").add(ttlMillis))));
    try {
      dispatchAndInvalidate(ns, commands, () -> Invalidation.ofKeys(origin, ns.name, entries.keySet()));
      breaker.onSuccess();
    } catch (Unavailable e) {
      failed(ns, e);
      keepRefusedLocally(ns, entries, ttlMillis);
      throw refused(what, e.getMessage(), e.getCause());
    }
    ns.meters.recordLatency(op, start);
    ns.meters.puts.increment(entries.size());
    long expiresAt = sentAt + TimeUnit.MILLISECONDS.toNanos(ttlMillis);
    if (epochs == null) {
      applyLocally(ns, entries, expiresAt, false);
    } else {
      for (Map.Entry<String, Long> e : epochs.entrySet()) {
        String key = e.getKey();
        // Moved on again before this value is kept: a read on this instance that took the counter
        // after the bump above may have got the value before this write from Redis, and would
        // otherwise store it over this one, where no invalidation ever comes to remove it.
        if (ns.bumpIfUnchanged(key, e.getValue())) {
          keepNear(ns, key, new LocalTier.Entry(entries.get(key), expiresAt), e.getValue() + 1);
        } else {
          // Moved by another write of this instance, say, whose value may have reached Redis
          // before this one: moved again, so that one does not keep its value either.
          dropLocally(ns, key);
        }
      }
    }
  }

  /**
   * Keeps a value in this instance's local tier only, for its TTL from now, without sending it to
   * Redis: for a value loaded while Redis refused the conditional write that would have stored it.
   */
  void keepLocally(String namespace, String key, String json, Duration ttl) {
    CacheKeys.requireValidKey(key);
    requireOpen();
    keepRefusedLocally(state(namespace), Map.of(key, json), millis(CacheKeys.requirePositiveTtl(ttl)));
  }

  /** Keeps a write Redis refused or did not confirm in the local tier only, for its TTL from now. */
  private void keepRefusedLocally(NamespaceState ns, Map<String, String> entries, long ttlMillis) {
    applyLocally(ns, entries, ticker.read() + TimeUnit.MILLISECONDS.toNanos(ttlMillis), true);
  }

  /** Stores the entries in the local tier as they are, e.g. written while Redis refused them. */
  private void applyLocally(
      NamespaceState ns, Map<String, String> entries, long expiresAt, boolean localOnly) {
    LocalTier tier = ns.near != null ? ns.near : fallback;
    if (tier == null) {
      return;
    }
    entries.forEach(
        (key, json) -> {
          if (ns.near != null) {
            ns.bump(key);
          }
          tier.put(ns.near != null ? key : ns.prefix + key, new LocalTier.Entry(json, expiresAt, localOnly));
        });
  }

  @Override
  public boolean delete(String namespace, String key) {
    NamespaceState ns = state(namespace);
    CacheKeys.requireValidKey(key);
    requireOpen();
    String what = "delete of " + ns.name + ":" + key;
    if (!breaker.tryAcquire()) {
      ns.meters.errors.increment();
      dropLocally(ns, key);
      throw refused(what, "the circuit breaker is open", null);
    }
    long start = System.nanoTime();
    AsyncCommand<String, String, Long> unlink =
        command(CommandType.UNLINK, new IntegerOutput<>(StringCodec.UTF8), args().addKey(ns.prefix + key));
    long removed;
    try {
      dispatchOnKey(ns, key, unlink);
      removed = unlink.get();
      breaker.onSuccess();
    } catch (Unavailable e) {
      failed(ns, e);
      dropLocally(ns, key);
      throw refused(what, e.getMessage(), e.getCause());
    } catch (InterruptedException | ExecutionException e) {
      throw new IllegalStateException("a completed command failed to report", e);
    }
    ns.meters.recordLatency(CacheMetrics.Operation.DELETE, start);
    dropLocally(ns, key);
    return removed > 0;
  }

  /**
   * SET NX PX: stored only by the first of racing instances. Refused while Redis is not reachable
   * (nothing is kept locally: a claim only Redis can grant). The local tier's copy of the key is
   * dropped either way, so this instance reads the key from Redis next. On a near-cached
   * namespace the invalidation follows the command, whether it stores or not (on a single Redis
   * in the same round trip; a needless invalidation only costs other instances a read from Redis).
   */
  @Override
  public boolean putIfAbsent(String namespace, String key, String json, Duration ttl) {
    NamespaceState ns = state(namespace);
    CacheKeys.requireValidKey(key);
    CacheKeys.requireStorableValue(key, json);
    long ttlMillis = millis(CacheKeys.requirePositiveTtl(ttl));
    requireOpen();
    return conditionalWrite(
        ns,
        key,
        "put-if-absent of " + ns.name + ":" + key,
        command(
            CommandType.SET,
            new StatusOutput<>(StringCodec.UTF8),
            args().addKey(ns.prefix + key).addValue(json).add("NX").add("PX").add(ttlMillis)),
        "OK"::equals);
  }

  /** Sets KEYS[1] to ARGV[2] with a TTL of ARGV[3] ms if it holds ARGV[1]; answers 1 if it did. */
  private static final String REPLACE_IF_HOLDING =
      "if redis.call('GET', KEYS[1]) == ARGV[1] then"
          + " redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0";

  /**
   * Replaces the key's value with {@code json}, for {@code ttl}, only if Redis holds {@code
   * expected} (a script, so nothing comes between the comparison and the write): for a
   * refresh-ahead reload, so that a write or delete another instance made after the read stands.
   * Like {@link #putIfAbsent}, refused while Redis is not reachable (nothing kept locally); once
   * Redis answered, the local copy is dropped and, on a near-cached namespace, the invalidation
   * sent, whether it replaced or not.
   *
   * @return whether the value was replaced
   */
  boolean replaceIfHolding(String namespace, String key, String expected, String json, Duration ttl) {
    NamespaceState ns = state(namespace);
    CacheKeys.requireValidKey(key);
    Objects.requireNonNull(expected, "expected");
    CacheKeys.requireStorableValue(key, json);
    long ttlMillis = millis(CacheKeys.requirePositiveTtl(ttl));
    requireOpen();
    return conditionalWrite(
        ns,
        key,
        "replace of " + ns.name + ":" + key,
        command(
            CommandType.EVAL,
            new IntegerOutput<>(StringCodec.UTF8),
            args().add(REPLACE_IF_HOLDING).add(1).addKey(ns.prefix + key).addValue(expected).addValue(json).add(ttlMillis)),
        Long.valueOf(1)::equals);
  }

  /**
   * Runs a write of one key that Redis applies or not by a condition, which {@code applied} reads
   * from its answer: refused while Redis is not reachable, nothing kept locally, the local copy
   * dropped either way.
   */
  private <T> boolean conditionalWrite(
      NamespaceState ns, String key, String what, AsyncCommand<String, String, T> command, Predicate<T> applied) {
    if (!breaker.tryAcquire()) {
      ns.meters.errors.increment();
      throw refusedClaim(what, "the circuit breaker is open", null);
    }
    long start = System.nanoTime();
    boolean written;
    try {
      dispatchOnKey(ns, key, command);
      written = applied.test(command.get());
      breaker.onSuccess();
    } catch (Unavailable e) {
      failed(ns, e);
      throw refusedClaim(what, e.getMessage(), e.getCause());
    } catch (InterruptedException | ExecutionException e) {
      throw new IllegalStateException("a completed command failed to report", e);
    }
    ns.meters.recordLatency(CacheMetrics.Operation.PUT, start);
    if (written) {
      ns.meters.puts.increment();
    }
    dropLocally(ns, key);
    return written;
  }

  /**
   * A command on one key, with, on a near-cached namespace, the key's counter moved on before it
   * and its invalidation after (see {@link #dispatchAndInvalidate}).
   */
  private void dispatchOnKey(NamespaceState ns, String key, AsyncCommand<String, String, ?> command) throws Unavailable {
    if (ns.near != null) {
      ns.bump(key);
    }
    dispatchAndInvalidate(ns, List.of(command), () -> Invalidation.ofKeys(origin, ns.name, List.of(key)));
  }

  /**
   * Sends the commands and, on a near-cached namespace, then the invalidation of what they change
   * for the other instances. On a single Redis the invalidation goes in the same pipeline, whose
   * one connection keeps the order; in cluster mode only once the commands are acknowledged, since
   * the publish goes over another connection to another node and could overtake them (another
   * instance would then drop its copy, read the old value again and keep it); a publish that fails
   * then is logged, not the commands' failure (they are done). When a command fails or is refused,
   * the invalidation is still sent, best effort and without waiting: the commands before it may
   * have been applied.
   */
  private void dispatchAndInvalidate(
      NamespaceState ns, List<AsyncCommand<String, String, ?>> commands, Supplier<Invalidation> invalidation)
      throws Unavailable {
    if (ns.near == null) {
      dispatchAndAwait(commands);
      return;
    }
    List<AsyncCommand<String, String, ?>> sent = commands;
    if (!config.clusterMode()) {
      sent = new ArrayList<>(commands);
      sent.add(publish(invalidation.get()));
    }
    try {
      dispatchAndAwait(sent);
    } catch (Unavailable | BackendRefusedException e) {
      publishWithoutWaiting(invalidation.get());
      throw e;
    }
    if (config.clusterMode()) {
      try {
        dispatchAndAwait(List.of(publish(invalidation.get())));
      } catch (Unavailable | RuntimeException e) {
        log.warn("a write of namespace {} is done, but its invalidation was not published: other instances may"
            + " serve the value before it until its TTL: {}", ns.name, e.toString());
      }
    }
  }

  /** Sends an invalidation after a failed command, best effort: not waited for, a failure only logged. */
  private void publishWithoutWaiting(Invalidation invalidation) {
    try {
      link.connection().dispatch(publish(invalidation));
    } catch (RuntimeException e) {
      log.debug("invalidation after a failed command not sent either: {}", e.toString());
    }
  }

  private void dropLocally(NamespaceState ns, String key) {
    if (ns.near != null) {
      ns.bump(key);
      ns.near.invalidate(key);
    } else if (fallback != null) {
      fallback.invalidate(ns.prefix + key);
    }
  }

  /**
   * Up to {@code limit} entries of the namespace: {@code SCAN MATCH} pages, each read with one
   * {@code MGET}. While Redis is unavailable, what the local tier holds of the namespace.
   */
  @Override
  public Map<String, String> entries(String namespace, int limit) {
    NamespaceState ns = state(namespace);
    requireOpen();
    Map<String, String> found = new LinkedHashMap<>();
    if (limit <= 0) {
      return found;
    }
    if (!breaker.tryAcquire()) {
      ns.meters.errors.increment();
      return entriesLocally(ns, limit);
    }
    long start = System.nanoTime();
    try {
      ScanArgs match = ScanArgs.Builder.matches(globEscape(ns.prefix) + "*").limit(config.scanBatchSize());
      ScanCursor cursor = ScanCursor.INITIAL;
      do {
        KeyScanCursor<String> page = await(link.async().scan(cursor, match), System.nanoTime());
        List<String> keys = new ArrayList<>();
        for (String key : page.getKeys()) {
          String suffix = key.substring(ns.prefix.length());
          if (keys.size() + found.size() < limit && !found.containsKey(suffix)) {
            keys.add(key);
          }
        }
        if (!keys.isEmpty()) {
          for (KeyValue<String, String> kv : await(link.async().mget(keys.toArray(String[]::new)), System.nanoTime())) {
            if (kv.hasValue()) {
              found.put(kv.getKey().substring(ns.prefix.length()), kv.getValue());
            }
          }
        }
        cursor = page;
      } while (!cursor.isFinished() && found.size() < limit);
      breaker.onSuccess();
    } catch (Unavailable e) {
      failed(ns, e);
      return entriesLocally(ns, limit);
    }
    ns.meters.recordLatency(CacheMetrics.Operation.ENTRIES, start);
    return found;
  }

  private Map<String, String> entriesLocally(NamespaceState ns, int limit) {
    Map<String, String> found = new LinkedHashMap<>();
    if (ns.near != null) {
      ns.near.snapshot(k -> true, limit).forEach((key, entry) -> found.put(key, entry.json()));
    } else if (fallback != null) {
      String prefix = ns.prefix;
      fallback
          .snapshot(k -> k.startsWith(prefix), limit)
          .forEach((key, entry) -> found.put(key.substring(prefix.length()), entry.json()));
    }
    return found;
  }

  @Override
  public long clear(String namespace) {
    NamespaceState ns = state(namespace);
    requireOpen();
    String what = "clear of namespace " + ns.name;
    if (!breaker.tryAcquire()) {
      ns.meters.errors.increment();
      clearLocally(ns);
      throw refused(what, "the circuit breaker is open", null);
    }
    long start = System.nanoTime();
    long removed = 0;
    try {
      ScanArgs match = ScanArgs.Builder.matches(globEscape(ns.prefix) + "*").limit(config.scanBatchSize());
      ScanCursor cursor = ScanCursor.INITIAL;
      do {
        long pageStart = System.nanoTime();
        KeyScanCursor<String> page = await(link.async().scan(cursor, match), pageStart);
        List<String> keys = page.getKeys();
        if (!keys.isEmpty()) {
          removed += await(link.async().unlink(keys.toArray(String[]::new)), System.nanoTime());
        }
        cursor = page;
      } while (!cursor.isFinished());
      if (ns.near != null) {
        ns.bumpAll();
        await(link.async().publish(config.invalidationChannel(), Invalidation.ofClear(origin, ns.name).encode()), System.nanoTime());
      }
      breaker.onSuccess();
    } catch (Unavailable e) {
      failed(ns, e);
      if (ns.near != null) {
        // Pages removed, or one whose UNLINK timed out and may have run: gone for every instance.
        publishWithoutWaiting(Invalidation.ofClear(origin, ns.name));
      }
      clearLocally(ns);
      throw refused(what + " (" + removed + " keys removed before the failure)", e.getMessage(), e.getCause());
    }
    ns.meters.recordLatency(CacheMetrics.Operation.CLEAR, start);
    clearLocally(ns);
    return removed;
  }

  private void clearLocally(NamespaceState ns) {
    if (ns.near != null) {
      ns.bumpAll();
      ns.near.invalidateAll();
    } else if (fallback != null) {
      String prefix = ns.prefix;
      fallback.invalidateIf(k -> k.startsWith(prefix));
    }
  }

  // ---- life cycle ----

  /** Stops the probe and closes the connections. Idempotent. */
  @Override
  public void close() {
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
    }
    prober.shutdownNow();
    invalidationsLive = false;
    link.close();
    dropLocalTiers();
  }

  // ---- plumbing ----

  private NamespaceState state(String namespace) {
    NamespaceState ns = namespace == null ? null : namespaces.get(namespace);
    if (ns != null) {
      return ns;
    }
    CacheKeys.requireValidNamespace(namespace);
    NamespaceState fresh =
        new NamespaceState(namespace, config.namespaceTtls().ttlFor(namespace), null, metrics.of(namespace));
    if (namespaces.size() >= MAX_REMEMBERED_NAMESPACES) {
      return fresh;
    }
    ns = namespaces.putIfAbsent(namespace, fresh);
    return ns == null ? fresh : ns;
  }

  private void requireOpen() {
    if (closed) {
      throw new ClosedException("the Redis cache is closed");
    }
  }

  /** Waits for a command, up to the command timeout (Lettuce's, plus a guard) since start. */
  private <T> T await(Future<T> future, long startNanos) throws Unavailable {
    long left = guardNanos - (System.nanoTime() - startNanos);
    try {
      return future.get(Math.max(0, left), TimeUnit.NANOSECONDS);
    } catch (ExecutionException e) {
      throw unavailable(e.getCause());
    } catch (TimeoutException e) {
      future.cancel(false);
      throw new Unavailable(
          "Redis did not answer within " + config.commandTimeout().toMillis() + " ms", e, true);
    } catch (CancellationException e) {
      throw new Unavailable("the Redis command was cancelled", e, true);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new Unavailable("interrupted while waiting for Redis", e, false);
    }
  }

  /**
   * Writes the commands together (one flush per {@value #PIPELINE_CHUNK}, so that a huge batch
   * does not hold one deadline) and waits for each.
   */
  private void dispatchAndAwait(List<AsyncCommand<String, String, ?>> commands)
      throws Unavailable {
    for (int from = 0; from < commands.size(); from += PIPELINE_CHUNK) {
      List<AsyncCommand<String, String, ?>> chunk =
          commands.subList(from, Math.min(commands.size(), from + PIPELINE_CHUNK));
      long dispatched = System.nanoTime();
      try {
        link.connection().dispatch(chunk);
      } catch (RuntimeException e) {
        throw unavailable(e);
      }
      for (AsyncCommand<String, String, ?> command : chunk) {
        await(command, dispatched);
      }
    }
  }

  /** Classifies a failure: transient ones become Unavailable, data errors are thrown. */
  private Unavailable unavailable(Throwable cause) {
    if (cause instanceof RedisCommandExecutionException reply) {
      String message = String.valueOf(reply.getMessage());
      if (TRANSIENT_REPLIES.stream().noneMatch(message::startsWith)) {
        breaker.onSuccess();
        throw new BackendRefusedException("Redis refused the command: " + message, reply);
      }
      return new Unavailable("Redis answered " + message, reply, true);
    }
    if (cause instanceof RedisCommandTimeoutException) {
      return new Unavailable(
          "Redis did not answer within " + config.commandTimeout().toMillis() + " ms", cause, true);
    }
    String message = cause == null ? "unknown failure" : cause.getClass().getSimpleName() + ": " + cause.getMessage();
    return new Unavailable("Redis failed (" + message + ")", cause, true);
  }

  private void failed(NamespaceState ns, Unavailable e) {
    ns.meters.errors.increment();
    if (e.countsAgainstBreaker) {
      lastError = e.getMessage();
      breaker.onFailure();
    } else {
      breaker.release();
    }
  }

  /**
   * The error a refused write throws. Only a write the open breaker stopped, or one that found no
   * connection, is known not to be in Redis; any other failure came after it was sent (a hung
   * Redis that resumes still applies it), so the caller is told its outcome there is not known.
   */
  private RetriableException refused(String what, String why, Throwable cause) {
    return refusal(what, why, cause, maybeSent(cause)
        ? " was applied to this instance's local tier; it was sent to Redis, which may still apply it"
            + " when it answers again, so other instances may or may not see it;"
        : " was applied to this instance's local tier only, other instances will not see it;");
  }

  /** The error a refused put-if-absent throws: as {@link #refused}, but nothing is kept locally. */
  private RetriableException refusedClaim(String what, String why, Throwable cause) {
    return refusal(what, why, cause, maybeSent(cause)
        ? " was sent to Redis, which may still apply it when it answers again; nothing was kept locally;"
        : " was not stored, nor kept locally;");
  }

  private static boolean maybeSent(Throwable cause) {
    return cause != null && !(cause instanceof RedisConnectionException);
  }

  private RetriableException refusal(String what, String why, Throwable cause, String outcome) {
    return new RetriableException(
        "Redis at " + config.target() + " is unavailable (" + why + "): the " + what + outcome + " retry later",
        cause);
  }

  /**
   * Pings Redis, so health stays current and the breaker closes by itself: while the breaker is
   * open, outside it ({@link #recover()}: one ping a probe interval, closing it as soon as Redis
   * answers rather than when its open time is over); otherwise through it.
   */
  private void probe() {
    try {
      if (breaker.state() == CircuitBreaker.State.OPEN) {
        recover();
        return;
      }
      for (int i = 0; i <= config.circuitBreaker().halfOpenSuccesses() && !closed; i++) {
        if (!breaker.tryAcquire()) {
          return;
        }
        long start = System.nanoTime();
        try {
          await(link.async().ping(), start);
          breaker.onSuccess();
        } catch (Unavailable e) {
          lastError = e.getMessage();
          if (e.countsAgainstBreaker) {
            breaker.onFailure();
          } else {
            breaker.release();
          }
          return;
        } catch (NisException e) {
          return;
        }
        if (breaker.state() == CircuitBreaker.State.CLOSED) {
          return;
        }
      }
    } catch (RuntimeException e) {
      log.warn("Redis health probe failed unexpectedly", e);
    }
  }

  private void dropLocalTiers() {
    for (NamespaceState ns : namespaces.values()) {
      if (ns.near != null) {
        ns.bumpAll();
        ns.near.invalidateAll();
      }
    }
    if (fallback != null) {
      fallback.invalidateAll();
    }
  }

  private AsyncCommand<String, String, Long> publish(Invalidation invalidation) {
    return command(
        CommandType.PUBLISH,
        new IntegerOutput<>(StringCodec.UTF8),
        args().add(config.invalidationChannel()).addValue(invalidation.encode()));
  }

  private static <T> AsyncCommand<String, String, T> command(
      CommandType type, io.lettuce.core.output.CommandOutput<String, String, T> output, CommandArgs<String, String> args) {
    return new AsyncCommand<>(new Command<>(type, output, args));
  }

  private static CommandArgs<String, String> args() {
    return new CommandArgs<>(StringCodec.UTF8);
  }

  private static long millis(Duration ttl) {
    long millis = ttl.toMillis();
    return ttl.equals(Duration.ofMillis(millis)) ? Math.max(1, millis) : millis + 1;
  }

  private static String describe(NamespaceState ns, Set<String> keys) {
    return keys.size() == 1 ? ns.name + ":" + keys.iterator().next() : "namespace " + ns.name;
  }

  /** Escapes the glob characters of SCAN MATCH. */
  static String globEscape(String literal) {
    StringBuilder escaped = new StringBuilder(literal.length() + 8);
    for (int i = 0; i < literal.length(); i++) {
      char c = literal.charAt(i);
      if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
        escaped.append('\\');
      }
      escaped.append(c);
    }
    return escaped.toString();
  }

  /** Applies invalidations from other instances; runs on Lettuce's I/O thread, so stays short. */
  private final class InvalidationListener extends RedisPubSubAdapter<String, String> {
    @Override
    public void message(String channel, String message) {
      Optional<Invalidation> parsed = Invalidation.decode(message);
      if (parsed.isEmpty() || parsed.get().origin().equals(origin)) {
        return;
      }
      Invalidation invalidation = parsed.get();
      NamespaceState ns = namespaces.get(invalidation.namespace());
      if (ns == null || ns.near == null) {
        return;
      }
      if (invalidation.clear()) {
        ns.bumpAll();
        ns.near.invalidateAll();
      } else {
        for (String key : invalidation.keys()) {
          ns.bump(key);
          ns.near.invalidate(key);
        }
      }
    }

    @Override
    public void subscribed(String channel, long count) {
      // (Re)subscribed: messages sent while the subscription was down are lost, so start empty.
      for (NamespaceState ns : namespaces.values()) {
        if (ns.near != null) {
          ns.bumpAll();
          ns.near.invalidateAll();
        }
      }
      invalidationsLive = true;
    }
  }
}
