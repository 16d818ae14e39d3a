package org.nisprotocol.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.Cache;
import org.nisprotocol.core.CacheKeys;
import org.nisprotocol.core.NamespaceTtls;
import org.nisprotocol.core.ValidationException;

/**
 * The contract every {@link Cache} backend keeps. A backend's test extends this class, builds its
 * cache in {@link #createCache} and says in {@link #elapse} how time passes for it (a manual clock
 * for in-process backends, real waiting for a server).
 *
 * <p>Each test works in namespaces of its own, so a shared server may hold other data.
 */
public abstract class CacheContract {
  /** TTL of the namespace {@link #shortNamespace}: short so that servers can be tested in real time. */
  protected static final Duration SHORT_NAMESPACE_TTL = Duration.ofMillis(600);

  /** A pause of this JVM that may outlast what separates a scenario's steps from its TTLs. */
  private static final Duration PAUSE = Duration.ofMillis(100);

  protected Cache cache;
  protected String namespace;
  protected String otherNamespace;
  protected String shortNamespace;

  /** A cache whose default TTLs are the ones given. */
  protected abstract Cache createCache(NamespaceTtls namespaceTtls);

  /**
   * Lets the given time pass as the cache sees it: real time, as for a server; a backend on a
   * manual clock advances it instead.
   */
  protected void elapse(Duration duration) {
    ServerProcess.sleep(duration);
  }

  @BeforeEach
  void createCacheAndNamespaces() {
    String run = UUID.randomUUID().toString().substring(0, 8);
    namespace = "contract-" + run;
    otherNamespace = "contract-other-" + run;
    shortNamespace = "contract-short-" + run;
    cache = createCache(NamespaceTtls.defaults().with(shortNamespace, SHORT_NAMESPACE_TTL));
  }

  @AfterEach
  void closeCache() {
    cache.close();
  }

  @Test
  void storedJsonIsReadBackAsStored() {
    String json = "{\"monte_carlo_iterations\":1000,\"physics_validation\":true,\"tags\":[\"a\",\"b\"]}";
    cache.put(namespace, "simulation_config", json, Duration.ofMinutes(5));

    assertThat(cache.get(namespace, "simulation_config")).contains(json);
  }

  @Test
  void absentKeyIsEmpty() {
    assertThat(cache.get(namespace, "never-written")).isEmpty();
  }

  @Test
  void putReplacesTheValue() {
    cache.put(namespace, "k", "1", Duration.ofMinutes(5));
    cache.put(namespace, "k", "2", Duration.ofMinutes(5));

    assertThat(cache.get(namespace, "k")).contains("2");
  }

  @Test
  void entryExpiresAfterItsTtl() {
    withinRealTime(Duration.ofMillis(450 + 300), () -> {
      cache.put(namespace, "short", "\"soon gone\"", Duration.ofMillis(300));
      cache.put(namespace, "long", "\"stays\"", Duration.ofMinutes(5));
      assertThat(cache.get(namespace, "short")).contains("\"soon gone\"");

      elapse(Duration.ofMillis(450));

      assertThat(cache.get(namespace, "short")).isEmpty();
      assertThat(cache.getAll(namespace, List.of("short", "long")))
          .containsExactly(Map.entry("long", "\"stays\""));
    });
  }

  @Test
  void putWithoutTtlTakesTheNamespaceDefault() {
    Duration wait = SHORT_NAMESPACE_TTL.plusMillis(200);
    withinRealTime(wait.plus(SHORT_NAMESPACE_TTL), () -> {
      cache.put(shortNamespace, "k", "true");
      cache.put(namespace, "k", "true");
      assertThat(cache.get(shortNamespace, "k")).contains("true");

      elapse(wait);

      assertThat(cache.get(shortNamespace, "k")).isEmpty();
      assertThat(cache.get(namespace, "k")).as("default TTL of an unnamed namespace is an hour").contains("true");
    });
  }

  @Test
  void rewritingAnEntryRestartsItsTtl() {
    withinRealTime(Duration.ofMillis(300 + 300 + 200), () -> {
      cache.put(namespace, "k", "1", Duration.ofMillis(500));
      elapse(Duration.ofMillis(300));
      cache.put(namespace, "k", "2", Duration.ofMillis(500));
      elapse(Duration.ofMillis(300));

      assertThat(cache.get(namespace, "k")).contains("2");
    });
  }

  /**
   * Runs a scenario whose reads hold only within its entries' TTLs. A real server's clock runs on
   * while this machine stalls, so a scenario that failed after taking longer than {@code window}
   * (its waits plus the TTL its reads rely on) in real time, or during which this JVM paused
   * (long enough to outlast a TTL between two of its steps), runs again, three times at most; one
   * that failed within its window and without a pause fails at once.
   */
  private static void withinRealTime(Duration window, Runnable scenario) {
    StallWatch stalls = StallWatch.shared();
    List<AssertionError> disturbedAttempts = new ArrayList<>();
    for (int attempt = 1; ; attempt++) {
      long start = System.nanoTime();
      try {
        scenario.run();
        return;
      } catch (AssertionError e) {
        long end = System.nanoTime();
        boolean disturbed = end - start >= window.toNanos() || stalls.stalledBetween(start, end).compareTo(PAUSE) >= 0;
        if (!disturbed || attempt == 3) {
          disturbedAttempts.forEach(e::addSuppressed);
          throw e;
        }
        disturbedAttempts.add(e);
      }
    }
  }

  @Test
  void putIfAbsentStoresOnlyWhereNothingIs() {
    assertThat(cache.putIfAbsent(namespace, "k", "\"first\"", Duration.ofMinutes(5))).isTrue();
    assertThat(cache.putIfAbsent(namespace, "k", "\"second\"", Duration.ofMinutes(5))).isFalse();
    assertThat(cache.get(namespace, "k")).contains("\"first\"");

    cache.put(otherNamespace, "k", "\"theirs\"", Duration.ofMinutes(5));
    assertThat(cache.putIfAbsent(otherNamespace, "k", "\"mine\"", Duration.ofMinutes(5))).isFalse();
    assertThat(cache.get(otherNamespace, "k")).contains("\"theirs\"");

    assertThat(cache.delete(namespace, "k")).isTrue();
    assertThat(cache.putIfAbsent(namespace, "k", "\"third\"", Duration.ofMinutes(5))).isTrue();
    assertThat(cache.get(namespace, "k")).contains("\"third\"");
    assertThatThrownBy(() -> cache.putIfAbsent(namespace, "k2", "1", Duration.ZERO))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("ttl");
  }

  @Test
  void putIfAbsentStoresAgainOnceTheEntryExpired() {
    withinRealTime(Duration.ofMillis(450 + 300), () -> {
      String key = "lease-" + UUID.randomUUID();
      assertThat(cache.putIfAbsent(namespace, key, "1", Duration.ofMillis(300))).isTrue();
      assertThat(cache.putIfAbsent(namespace, key, "2", Duration.ofMillis(300))).isFalse();

      elapse(Duration.ofMillis(450));

      assertThat(cache.putIfAbsent(namespace, key, "3", Duration.ofMinutes(5))).isTrue();
      assertThat(cache.get(namespace, key)).contains("3");
    });
  }

  /** Threads race for each of several keys: one stores, and what it stored is what is read. */
  @Test
  void ofRacingPutIfAbsentsOneStores() throws Exception {
    int threads = 6;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      for (int round = 0; round < 20; round++) {
        String key = "race-" + round;
        CountDownLatch start = new CountDownLatch(1);
        List<Future<Boolean>> outcomes = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
          String json = Integer.toString(t);
          outcomes.add(pool.submit(() -> {
            start.await();
            return cache.putIfAbsent(namespace, key, json, Duration.ofMinutes(5));
          }));
        }
        start.countDown();
        List<Integer> winners = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
          if (outcomes.get(t).get(30, TimeUnit.SECONDS)) {
            winners.add(t);
          }
        }
        assertThat(winners).as(key).hasSize(1);
        assertThat(cache.get(namespace, key)).as(key).contains(Integer.toString(winners.get(0)));
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void namespacesAreSeparate() {
    cache.put(namespace, "shared-key", "\"mine\"", Duration.ofMinutes(5));
    cache.put(otherNamespace, "shared-key", "\"theirs\"", Duration.ofMinutes(5));

    assertThat(cache.get(namespace, "shared-key")).contains("\"mine\"");
    assertThat(cache.get(otherNamespace, "shared-key")).contains("\"theirs\"");
  }

  @Test
  void deleteRemovesOneKey() {
    cache.put(namespace, "a", "1", Duration.ofMinutes(5));
    cache.put(namespace, "b", "2", Duration.ofMinutes(5));

    assertThat(cache.delete(namespace, "a")).isTrue();
    assertThat(cache.delete(namespace, "a")).isFalse();
    assertThat(cache.get(namespace, "a")).isEmpty();
    assertThat(cache.get(namespace, "b")).contains("2");
  }

  @Test
  void clearRemovesTheWholeNamespaceAndNothingElse() {
    Map<String, String> values = new LinkedHashMap<>();
    for (int i = 0; i < 250; i++) {
      values.put("key:" + i, Integer.toString(i));
    }
    cache.putAll(namespace, values, Duration.ofMinutes(5));
    cache.put(otherNamespace, "key:1", "\"kept\"", Duration.ofMinutes(5));

    assertThat(cache.clear(namespace)).isEqualTo(250);

    assertThat(cache.get(namespace, "key:1")).isEmpty();
    assertThat(cache.getAll(namespace, values.keySet())).isEmpty();
    assertThat(cache.get(otherNamespace, "key:1")).contains("\"kept\"");
    assertThat(cache.clear(namespace)).isZero();
  }

  @Test
  void batchPutAndGetCarryEveryEntry() {
    Map<String, String> values = Map.of("config_1", "{\"setting\":\"value1\"}", "config_2", "{\"setting\":\"value2\"}", "config_3", "{\"setting\":\"value3\"}");
    cache.putAll(namespace, values);

    Map<String, String> found = cache.getAll(namespace, List.of("config_1", "config_2", "config_3", "absent"));

    assertThat(found).isEqualTo(values);
  }

  @Test
  void batchPutHonoursItsTtl() {
    cache.putAll(namespace, Map.of("a", "1", "b", "2"), Duration.ofMillis(300));
    elapse(Duration.ofMillis(450));

    assertThat(cache.getAll(namespace, List.of("a", "b"))).isEmpty();
  }

  @Test
  void entriesListsTheNamespaceWithinItsLimit() {
    for (int i = 0; i < 30; i++) {
      cache.put(namespace, "agent-" + i, "{\"n\":" + i + "}", Duration.ofMinutes(5));
    }
    cache.put(namespace, "expiring", "0", Duration.ofMillis(300));
    cache.put(otherNamespace, "agent-0", "\"other\"", Duration.ofMinutes(5));
    elapse(Duration.ofMillis(450));

    assertThat(cache.entries(namespace, 1000))
        .hasSize(30)
        .containsEntry("agent-7", "{\"n\":7}")
        .doesNotContainKey("expiring");
    assertThat(cache.entries(namespace, 10)).hasSize(10);
    assertThat(cache.entries("contract-empty-" + namespace.substring(9), 10)).isEmpty();
  }

  @Test
  void keysMayHoldColonsAndUnicode() {
    cache.put(namespace, "agent:42:état", "\"ok\"", Duration.ofMinutes(5));
    cache.put(namespace, "agent:42:\uD83D\uDE00", "\"paired\"", Duration.ofMinutes(5));

    assertThat(cache.get(namespace, "agent:42:état")).contains("\"ok\"");
    assertThat(cache.get(namespace, "agent:42:\uD83D\uDE00")).contains("\"paired\"");
    assertThat(cache.clear(namespace)).isEqualTo(2);
  }

  @Test
  void aValueWithALoneSurrogateIsRefusedByEveryWriteAndNothingIsStored() {
    // Redis would hold '?' in its place, while the embedded cache kept it: both refuse it
    String half = "{\"text\":\"cut \uD83D\"}";
    assertThatThrownBy(() -> cache.put(namespace, "k", half))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("value of key 'k'")
        .hasMessageContaining("lone surrogate \\ud83d")
        .hasMessageContaining("after \"{\"text\":\"cut \"");
    assertThatThrownBy(() -> cache.put(namespace, "k", half, Duration.ofMinutes(5)))
        .isInstanceOf(ValidationException.class);
    assertThatThrownBy(() -> cache.putIfAbsent(namespace, "k", half, Duration.ofMinutes(5)))
        .isInstanceOf(ValidationException.class);
    Map<String, String> batch = new LinkedHashMap<>();
    batch.put("fine", "1");
    batch.put("broken", "\"\uDE00\"");
    assertThatThrownBy(() -> cache.putAll(namespace, batch))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("value of key 'broken'");
    assertThatThrownBy(() -> cache.putAll(namespace, batch, Duration.ofMinutes(5)))
        .isInstanceOf(ValidationException.class);
    assertThat(cache.get(namespace, "k")).isEmpty();
    assertThat(cache.get(namespace, "fine")).as("a batch with a bad value stores none of it").isEmpty();

    String paired = "{\"text\":\"whole \uD83D\uDE00\",\"escaped\":\"\\ud83d\"}";
    cache.put(namespace, "k", paired);
    assertThat(cache.get(namespace, "k")).contains(paired);
  }

  @Test
  void badNamesAndTtlsAreRefusedWithTheValueNamed() {
    assertThatThrownBy(() -> cache.put("bad namespace*", "k", "1"))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("bad namespace*");
    assertThatThrownBy(() -> cache.get(namespace, ""))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("key");
    assertThatThrownBy(() -> cache.put(namespace, "x".repeat(CacheKeys.MAX_KEY_LENGTH + 1), "1"))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining(Integer.toString(CacheKeys.MAX_KEY_LENGTH));
    // else Redis would store '?' for it, and keys differing only in which half it is would name one entry
    assertThatThrownBy(() -> cache.put(namespace, "half:\uD800", "1"))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("lone surrogate \\ud800")
        .hasMessageContaining("after \"half:\"");
    assertThatThrownBy(() -> cache.get(namespace, "\uDE00"))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("lone surrogate \\ude00");
    assertThatThrownBy(() -> cache.put(namespace, "k", "1", Duration.ZERO))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("ttl");
    assertThatThrownBy(() -> cache.clear("a:b"))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("a:b");
  }

  @Test
  void largeValuesSurvive() {
    String json = "\"" + "x".repeat(200_000) + "\"";
    cache.put(namespace, "big", json, Duration.ofMinutes(5));

    assertThat(cache.get(namespace, "big")).contains(json);
  }
}
