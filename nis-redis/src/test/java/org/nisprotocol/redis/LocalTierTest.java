package org.nisprotocol.redis;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

/** The three eviction policies of the local tier, against simple reference models. */
class LocalTierTest {
  private static final Duration LONG = Duration.ofHours(1);

  private final ManualTicker ticker = new ManualTicker();
  private final AtomicInteger evictions = new AtomicInteger();

  private LocalTier tier(NearCache settings) {
    return LocalTier.create(settings, ticker, evictions::incrementAndGet);
  }

  @Test
  void lruEvictsTheEntryUsedLongestAgo() {
    LocalTier lru = tier(NearCache.lru(3));
    lru.put("a", ticker.entry("1", LONG));
    lru.put("b", ticker.entry("2", LONG));
    lru.put("c", ticker.entry("3", LONG));
    lru.get("a"); // a is now the most recently used; b the least

    lru.put("d", ticker.entry("4", LONG));

    assertThat(lru.get("b")).isNull();
    assertThat(lru.get("a")).isNotNull();
    assertThat(lru.get("c")).isNotNull();
    assertThat(lru.get("d")).isNotNull();
    assertThat(evictions).hasValue(1);
  }

  @Test
  void lfuEvictsTheEntryUsedFewestTimesEvenIfUsedRecently() {
    LocalTier lfu = tier(NearCache.lfu(3));
    lfu.put("hot", ticker.entry("1", LONG));
    lfu.put("warm", ticker.entry("2", LONG));
    lfu.put("cold", ticker.entry("3", LONG));
    for (int i = 0; i < 5; i++) {
      lfu.get("hot");
    }
    lfu.get("warm");
    lfu.get("warm");
    lfu.get("cold"); // most recent, but used only twice in all

    lfu.put("new", ticker.entry("4", LONG));

    assertThat(lfu.get("cold")).as("least frequently used goes, though most recently used").isNull();
    assertThat(lfu.get("hot")).isNotNull();
    assertThat(lfu.get("warm")).isNotNull();
    assertThat(lfu.get("new")).isNotNull();
    assertThat(evictions).hasValue(1);
  }

  @Test
  void lfuBreaksTiesByRecency() {
    LocalTier lfu = tier(NearCache.lfu(2));
    lfu.put("older", ticker.entry("1", LONG));
    lfu.put("newer", ticker.entry("2", LONG));

    lfu.put("third", ticker.entry("3", LONG));

    assertThat(lfu.get("older")).isNull();
    assertThat(lfu.get("newer")).isNotNull();
  }

  @Test
  void everyPolicyHonoursTheEntryExpiry() {
    for (NearCache.Eviction eviction : NearCache.Eviction.values()) {
      LocalTier t = tier(new NearCache(10, eviction));
      t.put("short", ticker.entry("1", Duration.ofMillis(100)));
      t.put("long", ticker.entry("2", Duration.ofMillis(500)));

      ticker.advance(Duration.ofMillis(99));
      assertThat(t.get("short")).as(eviction.name()).isNotNull();
      ticker.advance(Duration.ofMillis(1));
      assertThat(t.get("short")).as(eviction.name()).isNull();
      assertThat(t.get("long")).as(eviction.name()).isNotNull();
      ticker.advance(Duration.ofMillis(400));
      assertThat(t.get("long")).as(eviction.name()).isNull();
    }
    assertThat(evictions).as("expiry is not eviction").hasValue(0);
  }

  @Test
  void invalidationRemovesWithoutCountingAnEviction() {
    for (NearCache.Eviction eviction : NearCache.Eviction.values()) {
      LocalTier t = tier(new NearCache(10, eviction));
      t.put("ns1:a", ticker.entry("1", LONG));
      t.put("ns1:b", ticker.entry("2", LONG));
      t.put("ns2:a", ticker.entry("3", LONG));

      assertThat(t.invalidate("ns1:a")).isTrue();
      assertThat(t.invalidate("ns1:a")).isFalse();
      t.invalidateIf(k -> k.startsWith("ns1:"));
      assertThat(t.get("ns1:b")).isNull();
      assertThat(t.get("ns2:a")).isNotNull();
      t.invalidateAll();
      assertThat(t.get("ns2:a")).isNull();
      assertThat(t.size()).isZero();
    }
    assertThat(evictions).hasValue(0);
  }

  @Test
  void aSnapshotListsLiveEntriesUpToTheLimitWithoutUsingThem() {
    for (NearCache.Eviction eviction : NearCache.Eviction.values()) {
      LocalTier t = tier(new NearCache(10, eviction));
      t.put("a:1", ticker.entry("1", LONG));
      t.put("a:2", ticker.entry("2", Duration.ofMillis(10)));
      t.put("a:3", ticker.entry("3", LONG));
      t.put("b:1", ticker.entry("4", LONG));
      ticker.advance(Duration.ofMillis(10));

      assertThat(t.snapshot(k -> k.startsWith("a:"), 10)).as(eviction.name()).containsOnlyKeys("a:1", "a:3");
      assertThat(t.snapshot(k -> true, 2)).as(eviction.name()).hasSize(2);
    }
  }

  @Test
  void adaptiveTierStaysWithinItsBound() {
    LocalTier adaptive = tier(NearCache.adaptive(100));
    for (int i = 0; i < 1_000; i++) {
      adaptive.put("k" + i, ticker.entry(Integer.toString(i), LONG));
    }

    assertThat(adaptive.size()).isLessThanOrEqualTo(100);
    assertThat(evictions).hasValue(900);
  }

  @Test
  void bytesBoundedTierWeighsKeysAndValues() {
    // each entry: 2 * (2 + 1000) + 64 = 2068 bytes; 10 fit in 21 000
    LocalTier bytes = new AdaptiveTier(21_000, true, ticker, evictions::incrementAndGet);
    for (int i = 0; i < 50; i++) {
      bytes.put(String.format("%02d", i), ticker.entry("x".repeat(1000), LONG));
    }

    assertThat(bytes.size()).isLessThanOrEqualTo(10);
  }

  // ---- the strict policies against reference models, for any sequence of operations ----

  record Op(int kind, int key) {}

  @Provide
  Arbitrary<List<Op>> operations() {
    return Arbitraries.integers()
        .between(0, 9)
        .flatMap(kind -> Arbitraries.integers().between(0, 7).map(key -> new Op(kind, key)))
        .list()
        .ofMaxSize(200);
  }

  @Property(tries = 300)
  void lruMatchesTheModel(@ForAll("operations") List<Op> ops, @ForAll @IntRange(min = 1, max = 6) int bound) {
    LocalTier lru = LocalTier.create(NearCache.lru(bound), ticker, () -> {});
    List<String> model = new ArrayList<>(); // least recently used first
    Map<String, String> values = new LinkedHashMap<>();
    for (Op op : ops) {
      String key = "k" + op.key();
      if (op.kind() < 5) { // get
        LocalTier.Entry found = lru.get(key);
        assertThat(found == null ? null : found.json()).isEqualTo(model.contains(key) ? values.get(key) : null);
        if (model.remove(key)) {
          model.add(key);
        }
      } else if (op.kind() < 9) { // put
        String value = key + "=" + op.kind();
        lru.put(key, ticker.entry(value, LONG));
        model.remove(key);
        model.add(key);
        values.put(key, value);
        if (model.size() > bound) {
          model.remove(0);
        }
      } else { // invalidate
        lru.invalidate(key);
        model.remove(key);
      }
      assertThat(lru.size()).isEqualTo(model.size());
    }
  }

  @Property(tries = 300)
  void lfuMatchesTheModel(@ForAll("operations") List<Op> ops, @ForAll @IntRange(min = 1, max = 6) int bound) {
    LocalTier lfu = LocalTier.create(NearCache.lfu(bound), ticker, () -> {});
    Map<String, Long> uses = new LinkedHashMap<>();
    Map<String, Long> lastUse = new LinkedHashMap<>();
    Map<String, String> values = new LinkedHashMap<>();
    long time = 0;
    for (Op op : ops) {
      String key = "k" + op.key();
      time++;
      if (op.kind() < 5) {
        LocalTier.Entry found = lfu.get(key);
        assertThat(found == null ? null : found.json()).isEqualTo(uses.containsKey(key) ? values.get(key) : null);
        if (uses.containsKey(key)) {
          uses.merge(key, 1L, Long::sum);
          lastUse.put(key, time);
        }
      } else if (op.kind() < 9) {
        String value = key + "=" + op.kind();
        lfu.put(key, ticker.entry(value, LONG));
        if (!uses.containsKey(key) && uses.size() >= bound) {
          String victim =
              uses.keySet().stream()
                  .min((x, y) -> uses.get(x).equals(uses.get(y))
                      ? Long.compare(lastUse.get(x), lastUse.get(y))
                      : Long.compare(uses.get(x), uses.get(y)))
                  .orElseThrow();
          uses.remove(victim);
          lastUse.remove(victim);
        }
        uses.merge(key, 1L, Long::sum);
        lastUse.put(key, time);
        values.put(key, value);
      } else {
        lfu.invalidate(key);
        uses.remove(key);
        lastUse.remove(key);
      }
      assertThat(lfu.size()).isEqualTo(uses.size());
    }
  }
}
