package org.nisprotocol.bench;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SetArgs;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.IntConsumer;
import org.nisprotocol.core.CacheKeys;
import org.nisprotocol.redis.NearCache;
import org.nisprotocol.redis.RedisCache;
import org.nisprotocol.redis.RedisCacheConfig;
import org.nisprotocol.testkit.RedisServer;

/**
 * The Redis cache against the raw clients doing the same work, on one Redis of its own, in one run:
 *
 * <ul>
 *   <li>get and put throughput of {@link RedisCache} (metrics on) against raw Lettuce {@code GET}
 *       and {@code SET ... PX} on one shared connection, same keys and 256-byte JSON values, 1 and
 *       8 calling threads (target ratio ≥ 0.9);
 *   <li>near-cache hit throughput against a raw Caffeine cache with the same bound and expiry,
 *       keyed by the same Redis key strings, 1 and 2 threads (target ratio ≥ 0.5).
 * </ul>
 *
 * <p>Each measure runs a warm-up, then five rounds alternating baseline and NIS, keeping each
 * one's best. Run with {@code bin/nis bench redis [secondsPerRound]} (default 2); {@code
 * -Dnis.bench.parts=get,put,near} (through {@code NIS_JAVA_OPTS}) runs only some of them, {@code
 * -Dnis.bench.threads=1,8} picks the Redis thread counts.
 */
public final class RedisCacheBenchmark {
  private static final int KEYS = 10_000;
  private static final String NS = "bench";
  private static final String NEAR_NS = "bench-near";
  private static final Duration TTL = Duration.ofHours(1);
  private static final int ROUNDS = 5;

  private RedisCacheBenchmark() {}

  public static void main(String[] args) throws Exception {
    Duration round = Duration.ofSeconds(args.length > 0 ? Long.parseLong(args[0]) : 2);
    String json = "{\"agent\":\"bench\",\"payload\":\"" + "x".repeat(220) + "\"}";
    String[] keys = new String[KEYS];
    String[] storeKeys = new String[KEYS];
    String[] nearStoreKeys = new String[KEYS];
    for (int i = 0; i < KEYS; i++) {
      keys[i] = "agent:" + i;
      storeKeys[i] = CacheKeys.storeKey(NS, keys[i]);
      nearStoreKeys[i] = CacheKeys.storeKey(NEAR_NS, keys[i]);
    }
    List<String[]> rows = new ArrayList<>();
    try (RedisServer redis = RedisServer.builder().name("bench-redis").build()) {
      redis.start();
      RedisClient client =
          RedisClient.create(RedisURI.builder().withHost(redis.host()).withPort(redis.port()).build());
      try (StatefulRedisConnection<String, String> connection = client.connect();
          RedisCache cache =
              RedisCache.create(
                  RedisCacheConfig.builder()
                      .host(redis.host())
                      .port(redis.port())
                      .nearCache(NEAR_NS, NearCache.adaptive(2 * KEYS))
                      .build())) {
        RedisCommands<String, String> raw = connection.sync();
        SetArgs px = SetArgs.Builder.px(TTL.toMillis());
        for (int i = 0; i < KEYS; i++) {
          raw.set(storeKeys[i], json, px);
          raw.set(nearStoreKeys[i], json, px);
        }

        java.util.Set<String> parts =
            java.util.Set.of(System.getProperty("nis.bench.parts", "get,put,near").split(","));
        int[] threadCounts =
            java.util.Arrays.stream(System.getProperty("nis.bench.threads", "1,8").split(","))
                .mapToInt(Integer::parseInt)
                .toArray();
        for (int threads : threadCounts) {
          if (parts.contains("get")) {
            rows.add(
              compare(
                  "get, " + threads + " thread(s) (ops/s)",
                  threads,
                  round,
                  i -> raw.get(storeKeys[i % KEYS]),
                  i -> cache.get(NS, keys[i % KEYS]),
                  "≥ 0.90"));
          }
          if (parts.contains("put")) {
            rows.add(
              compare(
                  "put, " + threads + " thread(s) (ops/s)",
                  threads,
                  round,
                  i -> raw.set(storeKeys[i % KEYS], json, px),
                  i -> cache.put(NS, keys[i % KEYS], json, TTL),
                  "≥ 0.90"));
          }
        }

        if (!parts.contains("near")) {
          print(round, rows);
          return;
        }
        Cache<String, String> caffeine =
            Caffeine.newBuilder().maximumSize(2L * KEYS).expireAfterWrite(TTL).build();
        for (int i = 0; i < KEYS; i++) {
          caffeine.put(nearStoreKeys[i], json);
          cache.get(NEAR_NS, keys[i]); // fills the near cache
        }
        for (int threads : new int[] {1, 2}) {
          rows.add(
              compare(
                  "near-cache hit, " + threads + " thread(s) (ops/s)",
                  threads,
                  round,
                  i -> caffeine.getIfPresent(nearStoreKeys[i % KEYS]),
                  i -> cache.get(NEAR_NS, keys[i % KEYS]),
                  "≥ 0.50"));
        }
      } finally {
        client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
      }
    }
    print(round, rows);
  }

  private static void print(Duration round, List<String[]> rows) {
    System.out.println();
    System.out.println("Redis cache vs raw clients (" + round.toSeconds() + " s rounds, best of " + ROUNDS + ")");
    String format = "%-36s %16s %16s %8s %10s%n";
    System.out.printf(format, "measure", "baseline (raw)", "NIS", "ratio", "target");
    rows.forEach(r -> System.out.printf(format, (Object[]) r));
  }

  private static String[] compare(
      String what, int threads, Duration round, IntConsumer baseline, IntConsumer nis, String target)
      throws InterruptedException {
    throughput(threads, round, baseline);
    throughput(threads, round, nis);
    double baselineBest = 0;
    double nisBest = 0;
    for (int r = 0; r < ROUNDS; r++) {
      baselineBest = Math.max(baselineBest, throughput(threads, round, baseline));
      nisBest = Math.max(nisBest, throughput(threads, round, nis));
    }
    System.out.printf(Locale.ROOT, "%-36s raw %,14.0f   nis %,14.0f%n", what, baselineBest, nisBest);
    return new String[] {
      what,
      String.format(Locale.ROOT, "%,.0f", baselineBest),
      String.format(Locale.ROOT, "%,.0f", nisBest),
      String.format(Locale.ROOT, "%.2f", nisBest / baselineBest),
      target
    };
  }

  /** Operations per second of the given threads calling op for the duration. */
  private static double throughput(int threads, Duration duration, IntConsumer op)
      throws InterruptedException {
    LongAdder done = new LongAdder();
    CountDownLatch start = new CountDownLatch(1);
    List<Thread> workers = new ArrayList<>();
    long[] window = new long[2];
    for (int t = 0; t < threads; t++) {
      int offset = t * (KEYS / threads);
      Thread worker =
          new Thread(
              () -> {
                try {
                  start.await();
                } catch (InterruptedException e) {
                  return;
                }
                long deadline = window[1];
                int i = offset;
                long n = 0;
                while (true) {
                  op.accept(i++);
                  // reading the clock every call would cost as much as a near-cache hit
                  if ((++n & 63) == 0 && System.nanoTime() >= deadline) {
                    break;
                  }
                }
                done.add(n);
              },
              "bench-" + t);
      workers.add(worker);
      worker.start();
    }
    window[0] = System.nanoTime();
    window[1] = window[0] + duration.toNanos();
    start.countDown();
    for (Thread worker : workers) {
      worker.join();
    }
    long elapsed = System.nanoTime() - window[0];
    return done.sum() * 1e9 / elapsed;
  }
}
