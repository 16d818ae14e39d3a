package org.nisprotocol.redis;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;

/**
 * The cache's meters, one set per namespace (tag {@code namespace}), all tagged {@code
 * cache=redis}:
 *
 * <ul>
 *   <li>{@code nis.cache.hits} (tag {@code tier}: near, redis or fallback), {@code
 *       nis.cache.misses}, and the gauge {@code nis.cache.hit.ratio} (hits / lookups since start);
 *   <li>{@code nis.cache.puts}: entries written; {@code nis.cache.evictions}: entries the local
 *       tier evicted for its size bound; {@code nis.cache.errors}: Redis commands that failed or
 *       timed out, and calls refused by the open breaker;
 *   <li>{@code nis.cache.latency} (tag {@code operation}): time of each call that went to Redis,
 *       with p50, p95 and p99 published and a percentile histogram. Near-cache hits are counted but
 *       not timed: they take well under a microsecond, less than timing them would.
 * </ul>
 *
 * <p>Namespaces are named by callers, so the tag is bounded: past {@value #MAX_TAGGED_NAMESPACES}
 * namespaces, further ones share the tag value {@value #OTHER}.
 */
final class CacheMetrics {
  static final int MAX_TAGGED_NAMESPACES = 100;
  static final String OTHER = "~other";

  enum Operation {
    GET("get"),
    GET_ALL("get_all"),
    PUT("put"),
    PUT_ALL("put_all"),
    DELETE("delete"),
    CLEAR("clear"),
    ENTRIES("entries");

    final String tag;

    Operation(String tag) {
      this.tag = tag;
    }
  }

  /** The meters of one namespace. Thread-safe. */
  static final class Namespace {
    /** Near-cache hits: the hottest path, so a plain adder read by a function counter. */
    final LongAdder nearHits = new LongAdder();
    final Counter redisHits;
    final Counter fallbackHits;
    final Counter misses;
    final Counter puts;
    final Counter evictions;
    final Counter errors;
    private final Timer[] latency = new Timer[Operation.values().length];

    private Namespace(MeterRegistry registry, String namespace) {
      FunctionCounter.builder("nis.cache.hits", nearHits, LongAdder::sum)
          .description("lookups answered, by the tier that answered")
          .tags("cache", "redis", "namespace", namespace, "tier", "near")
          .register(registry);
      redisHits = hits(registry, namespace, "redis");
      fallbackHits = hits(registry, namespace, "fallback");
      misses = counter(registry, "nis.cache.misses", namespace, "lookups that found nothing");
      puts = counter(registry, "nis.cache.puts", namespace, "entries written");
      evictions =
          counter(registry, "nis.cache.evictions", namespace, "local entries evicted for the size bound");
      errors = counter(registry, "nis.cache.errors", namespace, "Redis calls failed, timed out or refused");
      Gauge.builder("nis.cache.hit.ratio", this, Namespace::hitRatio)
          .description("hits / lookups since start")
          .tags("cache", "redis", "namespace", namespace)
          .register(registry);
      for (Operation operation : Operation.values()) {
        latency[operation.ordinal()] =
            Timer.builder("nis.cache.latency")
                .description("time of calls that went to Redis")
                .tags("cache", "redis", "namespace", namespace, "operation", operation.tag)
                .publishPercentiles(0.5, 0.95, 0.99)
                .publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofNanos(20_000))
                .maximumExpectedValue(Duration.ofSeconds(5))
                .register(registry);
      }
    }

    void recordLatency(Operation operation, long startNanos) {
      latency[operation.ordinal()].record(System.nanoTime() - startNanos, TimeUnit.NANOSECONDS);
    }

    double hitRatio() {
      double hits = nearHits.sum() + redisHits.count() + fallbackHits.count();
      double lookups = hits + misses.count();
      return lookups == 0 ? 0 : hits / lookups;
    }

    private static Counter hits(MeterRegistry registry, String namespace, String tier) {
      return Counter.builder("nis.cache.hits")
          .description("lookups answered, by the tier that answered")
          .tags("cache", "redis", "namespace", namespace, "tier", tier)
          .register(registry);
    }

    private static Counter counter(
        MeterRegistry registry, String name, String namespace, String description) {
      return Counter.builder(name)
          .description(description)
          .tags("cache", "redis", "namespace", namespace)
          .register(registry);
    }
  }

  private final MeterRegistry registry;
  private final ConcurrentHashMap<String, Namespace> byNamespace = new ConcurrentHashMap<>();

  CacheMetrics(MeterRegistry registry) {
    this.registry = registry;
  }

  MeterRegistry registry() {
    return registry;
  }

  /** The meters of the namespace (a valid one), created on first use. */
  Namespace of(String namespace) {
    Namespace meters = byNamespace.get(namespace);
    if (meters != null) {
      return meters;
    }
    String tag = namespace;
    if (byNamespace.size() >= MAX_TAGGED_NAMESPACES && !byNamespace.containsKey(namespace)) {
      tag = OTHER;
    }
    String finalTag = tag;
    Namespace created = byNamespace.computeIfAbsent(finalTag, t -> new Namespace(registry, t));
    return created;
  }
}
