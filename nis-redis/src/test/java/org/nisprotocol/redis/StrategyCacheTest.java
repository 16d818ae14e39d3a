package org.nisprotocol.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.Cache;
import org.nisprotocol.core.ClosedException;
import org.nisprotocol.core.RetriableException;
import org.nisprotocol.core.RetryPolicy;
import org.nisprotocol.core.ValidationException;
import org.nisprotocol.embedded.InMemoryCache;
import org.nisprotocol.embedded.InMemoryCacheConfig;
import org.nisprotocol.testkit.ManualClock;

/** The strategies over the embedded cache, with a manual clock and a manual executor. */
class StrategyCacheTest {
  private static final Duration TTL = Duration.ofSeconds(100);

  private final ManualClock clock = ManualClock.create();
  private final InMemoryCache memory =
      InMemoryCache.create(InMemoryCacheConfig.defaults().withClock(clock));
  private final ManualExecutor executor = new ManualExecutor();
  private final RecordingStore store = new RecordingStore();
  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
  private StrategyCache cache;

  @AfterEach
  void close() {
    if (cache != null) {
      cache.close();
    }
  }

  private StrategyCache.Builder builder(Cache delegate) {
    return StrategyCache.builder(delegate)
        .clock(clock)
        .executor(executor)
        .meterRegistry(registry)
        .writeBackInterval(Duration.ofHours(1));
  }

  // ---- TTL (no strategy) ----

  @Test
  void aNamespaceWithoutStrategyExpiresAfterWriteAndReadsDoNotExtendIt() {
    cache = builder(memory).writeThrough("orders", store).build();
    cache.put("plain", "k", "1", Duration.ofSeconds(10));
    clock.advance(Duration.ofSeconds(9));
    assertThat(cache.get("plain", "k")).contains("1");
    clock.advance(Duration.ofSeconds(1));

    assertThat(cache.get("plain", "k")).isEmpty();
    assertThat(store.calls).isEmpty();
  }

  // ---- WRITE_THROUGH ----

  @Test
  void writeThroughWritesTheStoreBeforeTheCache() {
    List<Optional<String>> cacheSeenByStore = new ArrayList<>();
    store.beforeEachCall(() -> cacheSeenByStore.add(memory.get("orders", "o1")));
    cache = builder(memory).writeThrough("orders", store).build();

    cache.put("orders", "o1", "{\"qty\":1}");

    assertThat(cacheSeenByStore).containsExactly(Optional.empty());
    assertThat(store.data).containsEntry("orders:o1", "{\"qty\":1}");
    assertThat(memory.get("orders", "o1")).contains("{\"qty\":1}");
  }

  @Test
  void writeThroughLeavesTheCacheAloneWhenTheStoreFails() {
    cache = builder(memory).writeThrough("orders", store).build();
    cache.put("orders", "o1", "1");
    store.failNext(1);

    assertThatThrownBy(() -> cache.put("orders", "o1", "2")).hasMessageContaining("store unavailable");

    assertThat(cache.get("orders", "o1")).contains("1");
    assertThat(store.data).containsEntry("orders:o1", "1");
  }

  @Test
  void aValueTheCacheWouldRefuseNeverReachesTheStore() {
    cache = builder(memory).writeThrough("orders", store).writeBack("memory", store).build();
    Map<String, String> batch = new LinkedHashMap<>();
    batch.put("fine", "1");
    batch.put("broken", "\"\uD83D\"");

    for (String namespace : List.of("orders", "memory")) {
      assertThatThrownBy(() -> cache.put(namespace, "broken", "\"\uD83D\""))
          .isInstanceOf(ValidationException.class)
          .hasMessageContaining("lone surrogate");
      assertThatThrownBy(() -> cache.put(namespace, "broken", "\"\uD83D\"", Duration.ofSeconds(5)))
          .isInstanceOf(ValidationException.class);
      assertThatThrownBy(() -> cache.putAll(namespace, batch)).isInstanceOf(ValidationException.class);
      assertThatThrownBy(() -> cache.putIfAbsent(namespace, "broken", "\"\uDE00\"", Duration.ofSeconds(5)))
          .isInstanceOf(ValidationException.class);
    }

    assertThat(cache.pendingWrites()).as("nothing queued for the store").isZero();
    assertThat(store.calls).isEmpty();
    assertThat(memory.get("orders", "fine")).isEmpty();
    assertThat(memory.get("memory", "fine")).isEmpty();
  }

  @Test
  void writeThroughBatchesAndDeletesReachTheStore() {
    cache = builder(memory).writeThrough("orders", store).build();
    cache.putAll("orders", Map.of("a", "1"), Duration.ofSeconds(5));
    cache.putAll("orders", new LinkedHashMap<>(Map.of("b", "2", "c", "3")));

    assertThat(cache.delete("orders", "b")).isTrue();

    assertThat(store.data).isEqualTo(Map.of("orders:a", "1", "orders:c", "3"));
    assertThat(cache.getAll("orders", List.of("a", "b", "c"))).isEqualTo(Map.of("a", "1", "c", "3"));
    clock.advance(Duration.ofSeconds(5));
    assertThat(cache.get("orders", "a")).as("the TTL given still applies").isEmpty();
  }

  @Test
  void writeThroughPutIfAbsentWritesTheStoreOnlyWhenItStoredAndUndoesItWhenTheStoreFails() {
    cache = builder(memory).writeThrough("orders", store).build();

    assertThat(cache.putIfAbsent("orders", "o1", "1", Duration.ofMinutes(1))).isTrue();
    assertThat(cache.putIfAbsent("orders", "o1", "2", Duration.ofMinutes(1))).isFalse();
    assertThat(store.calls).containsExactly("write orders:o1=1");
    store.failNext(1);
    assertThatThrownBy(() -> cache.putIfAbsent("orders", "o2", "3", Duration.ofMinutes(1)))
        .hasMessageContaining("store unavailable");

    assertThat(cache.get("orders", "o1")).contains("1");
    assertThat(cache.get("orders", "o2")).as("taken back when the store failed").isEmpty();
    assertThat(store.data).isEqualTo(Map.of("orders:o1", "1"));
  }

  @Test
  void twoWriteThroughPutsOfOneKeyLeaveTheCacheAsTheStore() throws Exception {
    whileAWriteThroughPutIsBetweenStoreAndCache(() -> cache.put("orders", "o1", "2"));

    assertThat(store.data).containsEntry("orders:o1", "2");
    assertThat(cache.get("orders", "o1")).contains("2");
  }

  @Test
  void aWriteThroughDeleteDuringAPutOfItsKeyLeavesTheCacheAsTheStore() throws Exception {
    whileAWriteThroughPutIsBetweenStoreAndCache(() -> cache.delete("orders", "o1"));

    assertThat(store.data).doesNotContainKey("orders:o1");
    assertThat(cache.get("orders", "o1")).as("not put back by the put that wrote the store first").isEmpty();
  }

  /**
   * Puts "1" to orders:o1 (write-through) and, while that put has written the store but not yet
   * the cache, runs {@code second} on another thread, which then either waits for the put or ends.
   */
  private void whileAWriteThroughPutIsBetweenStoreAndCache(Runnable second) throws Exception {
    CountDownLatch inCache = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    Cache delegate = new SwitchableCache(memory) {
      @Override
      public void put(String namespace, String key, String json) {
        if (json.equals("1")) { // the store has it; the cache not yet
          inCache.countDown();
          try {
            release.await(20, TimeUnit.SECONDS);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        }
        super.put(namespace, key, json);
      }
    };
    cache = builder(delegate).writeThrough("orders", store).build();
    Thread first = Thread.ofVirtual().start(() -> cache.put("orders", "o1", "1"));
    assertThat(inCache.await(10, TimeUnit.SECONDS)).isTrue();
    Thread other = Thread.ofVirtual().start(second);
    awaitWaitingOrDone(other);
    release.countDown();
    assertThat(first.join(Duration.ofSeconds(10))).isTrue();
    assertThat(other.join(Duration.ofSeconds(10))).isTrue();
  }

  private static void awaitWaitingOrDone(Thread thread) {
    await().atMost(Duration.ofSeconds(10)).until(() -> thread.getState() == Thread.State.WAITING
        || thread.getState() == Thread.State.TERMINATED);
  }

  @Test
  void aWriteThroughPutIfAbsentTakingBackItsValueLeavesAPutThatCameMeanwhile() throws Exception {
    AtomicBoolean firstCall = new AtomicBoolean(true);
    AtomicReference<Thread> other = new AtomicReference<>();
    store.beforeEachCall(() -> {
      if (firstCall.getAndSet(false)) { // the putIfAbsent's store write, which is to fail
        other.set(Thread.ofVirtual().start(() -> cache.put("orders", "o1", "B")));
        awaitWaitingOrDone(other.get());
        store.failNext(1);
      }
    });
    cache = builder(memory).writeThrough("orders", store).build();

    assertThatThrownBy(() -> cache.putIfAbsent("orders", "o1", "A", TTL)).hasMessageContaining("store unavailable");
    assertThat(other.get().join(Duration.ofSeconds(10))).isTrue();

    assertThat(store.data).containsEntry("orders:o1", "B");
    assertThat(cache.get("orders", "o1")).as("the put's value, not deleted with the one taken back").contains("B");
  }

  @Test
  void aWriteThroughPutTheCacheRefusedLeavesNoOlderValueOnceTheCacheIsBack() {
    SwitchableCache switchable = new SwitchableCache(memory);
    cache = builder(switchable).writeThrough("orders", store).build();
    cache.put("orders", "o1", "1");
    switchable.refuseWrites = true;

    assertThatThrownBy(() -> cache.put("orders", "o1", "2")).isInstanceOf(RetriableException.class);
    assertThat(store.data).containsEntry("orders:o1", "2");
    assertThat(cache.get("orders", "o1")).as("still down: the cache cannot drop it yet").contains("1");
    switchable.refuseWrites = false;

    assertThat(cache.get("orders", "o1")).as("the value the store replaced, dropped before the read").isEmpty();
    assertThat(memory.get("orders", "o1")).isEmpty();
  }

  @Test
  void aWriteThroughDeleteTheCacheRefusedLeavesNoDeletedValueOnceTheCacheIsBack() {
    SwitchableCache switchable = new SwitchableCache(memory);
    cache = builder(switchable).writeThrough("orders", store).build();
    cache.putAll("orders", Map.of("o1", "1", "o2", "2"));
    switchable.refuseWrites = true;

    assertThatThrownBy(() -> cache.delete("orders", "o1")).isInstanceOf(RetriableException.class);
    switchable.refuseWrites = false;

    assertThat(store.data).isEqualTo(Map.of("orders:o2", "2"));
    assertThat(cache.getAll("orders", List.of("o1", "o2"))).isEqualTo(Map.of("o2", "2"));
  }

  @Test
  void aWriteThroughPutIfAbsentIsNotRefusedForAValueTheStoreNoLongerHas() {
    SwitchableCache switchable = new SwitchableCache(memory);
    cache = builder(switchable).writeThrough("orders", store).build();
    cache.put("orders", "o1", "1");
    switchable.refuseWrites = true;
    assertThatThrownBy(() -> cache.delete("orders", "o1")).isInstanceOf(RetriableException.class);
    switchable.refuseWrites = false;

    assertThat(cache.putIfAbsent("orders", "o1", "2", TTL)).isTrue();

    assertThat(store.data).containsEntry("orders:o1", "2");
    assertThat(memory.get("orders", "o1")).contains("2");
  }

  @Test
  void theScheduledSettlingDoesNotWaitForAStoreWritingTheKey() throws Exception {
    SwitchableCache switchable = new SwitchableCache(memory);
    cache = builder(switchable).writeThrough("orders", store).build();
    cache.put("orders", "o1", "1");
    switchable.refuseWrites = true;
    assertThatThrownBy(() -> cache.put("orders", "o1", "2")).isInstanceOf(RetriableException.class);
    switchable.refuseWrites = false;
    CountDownLatch inStore = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    store.beforeEachCall(holdingStoreCall(inStore, release, Duration.ofSeconds(20)));
    Thread writer = Thread.ofVirtual().start(() -> cache.put("orders", "o1", "3"));
    assertThat(inStore.await(10, TimeUnit.SECONDS)).isTrue();

    assertTimeoutPreemptively(Duration.ofSeconds(5), cache::settleUnsettled, "waited for the store");

    release.countDown();
    assertThat(writer.join(Duration.ofSeconds(10))).isTrue();
    assertThat(memory.get("orders", "o1")).as("the write settled it").contains("3");
  }

  @Test
  void theScheduledSettlingDropsOlderValuesButNotWhatWasWrittenSince() {
    SwitchableCache switchable = new SwitchableCache(memory);
    cache = builder(switchable).writeThrough("orders", store).build();
    cache.putAll("orders", Map.of("o1", "1", "o2", "1"));
    switchable.refuseWrites = true;
    assertThatThrownBy(() -> cache.putAll("orders", Map.of("o1", "2", "o2", "2"))).isInstanceOf(RetriableException.class);
    cache.settleUnsettled(); // still refused: kept for the next try

    switchable.refuseWrites = false;
    cache.put("orders", "o2", "3");
    cache.settleUnsettled();

    assertThat(memory.get("orders", "o1")).as("older than the store's: dropped").isEmpty();
    assertThat(memory.get("orders", "o2")).as("written since: kept").contains("3");
    assertThat(store.data).isEqualTo(Map.of("orders:o1", "2", "orders:o2", "3"));
  }

  @Test
  void pastTheKeysItKeepsTrackOfTheNamespaceIsClearedWhole() {
    SwitchableCache switchable = new SwitchableCache(memory);
    cache = builder(switchable).maxUnsettledKeys(2).writeThrough("orders", store).build();
    cache.putAll("orders", Map.of("a", "1", "b", "1", "c", "1", "untouched", "1"));
    switchable.refuseWrites = true;
    assertThatThrownBy(() -> cache.putAll("orders", Map.of("a", "2", "b", "2", "c", "2")))
        .isInstanceOf(RetriableException.class);
    switchable.refuseWrites = false;

    assertThat(cache.get("orders", "untouched")).as("cleared with the namespace").isEmpty();
    assertThat(memory.entries("orders", 10)).isEmpty();
  }

  @Test
  void aWriteThroughPutIfAbsentTheCacheCouldNotTakeBackLeavesNoValueTheStoreLacks() {
    SwitchableCache switchable = new SwitchableCache(memory);
    AtomicBoolean firstCall = new AtomicBoolean(true);
    store.beforeEachCall(() -> {
      if (firstCall.getAndSet(false)) { // the store fails, and the cache goes down with it
        switchable.refuseWrites = true;
        store.failNext(1);
      }
    });
    cache = builder(switchable).writeThrough("orders", store).build();

    assertThatThrownBy(() -> cache.putIfAbsent("orders", "o1", "A", TTL)).hasMessageContaining("store unavailable");
    switchable.refuseWrites = false;

    assertThat(store.data).isEmpty();
    assertThat(cache.get("orders", "o1")).isEmpty();
  }

  @Test
  void writeBackPutIfAbsentQueuesOnlyWhatItStored() {
    cache = builder(memory).writeBack("memory", store).build();

    assertThat(cache.putIfAbsent("memory", "m1", "1", Duration.ofMinutes(1))).isTrue();
    assertThat(cache.putIfAbsent("memory", "m1", "2", Duration.ofMinutes(1))).isFalse();
    assertThat(cache.pendingWrites()).isEqualTo(1);
    cache.flush();

    assertThat(store.calls).containsExactly("writeAll memory {m1=1}");
  }

  // ---- WRITE_BACK ----

  @Test
  void writeBackAcknowledgesAfterTheCacheAndFlushesLater() {
    cache = builder(memory).writeBack("memory", store).build();

    cache.put("memory", "m1", "1");
    cache.put("memory", "m1", "2");
    cache.put("memory", "m2", "3");
    cache.delete("memory", "m2");

    assertThat(cache.get("memory", "m1")).contains("2");
    assertThat(store.calls).isEmpty();
    assertThat(cache.pendingWrites()).isEqualTo(2);

    cache.flush();

    assertThat(store.calls).containsExactly("writeAll memory {m1=2}", "delete memory:m2");
    assertThat(cache.pendingWrites()).isZero();
    assertThat(registry.get("nis.cache.write_back.flushed").gauge().value()).isEqualTo(2);
  }

  @Test
  void aFullBatchIsFlushedInTheBackground() {
    cache = builder(memory).writeBack("memory", store).writeBackBatchSize(3).build();
    cache.put("memory", "a", "1");
    cache.put("memory", "b", "1");
    assertThat(executor.queued()).isZero();

    cache.put("memory", "c", "1");

    assertThat(executor.queued()).isEqualTo(1);
    executor.runAll();
    assertThat(store.data).hasSize(3);
  }

  @Test
  void theScheduledFlushRunsOnItsInterval() {
    cache = builder(memory).writeBack("memory", store).writeBackInterval(Duration.ofMillis(20)).build();
    cache.put("memory", "a", "1");

    await().atMost(Duration.ofSeconds(5))
        .untilAsserted(() -> assertThat(store.data).containsEntry("memory:a", "1"));
  }

  @Test
  void aFailingStoreKeepsTheWritesQueued() {
    cache = builder(memory).writeBack("memory", store).build();
    cache.put("memory", "a", "1");
    store.failNext(1);

    assertThatThrownBy(cache::flush).isInstanceOf(RetriableException.class).hasMessageContaining("store unavailable");
    assertThat(cache.pendingWrites()).isEqualTo(1);

    cache.flush();
    assertThat(store.data).containsEntry("memory:a", "1");
  }

  @Test
  void closeFlushesWhatWaitsRetryingAFailingStore() {
    Cache delegate = new SwitchableCache(memory);
    cache =
        builder(delegate)
            .writeBack("memory", store)
            .writeBackRetry(new RetryPolicy(3, Duration.ofMillis(1), Duration.ofMillis(5), 0))
            .build();
    cache.put("memory", "a", "1");
    cache.put("memory", "b", "2");
    store.failNext(2);

    cache.close();

    assertThat(store.data).isEqualTo(Map.of("memory:a", "1", "memory:b", "2"));
    assertThat(((SwitchableCache) delegate).closed).isTrue();
  }

  /**
   * A write-back write that comes while close() is under way, after its drain and before the
   * cache it decorates is closed, is refused: queued then, no drain would see it, and the caller
   * would have been told it was taken.
   */
  @Test
  void aWriteBackWriteDuringCloseIsRefusedNotLostUnsaid() throws Exception {
    whileTheDecoratedCacheCloses(() -> assertThatThrownBy(() -> cache.put("memory", "b", "2"))
        .isInstanceOf(ClosedException.class).hasMessageContaining("closed"));
  }

  /**
   * Builds a write-back cache holding a:1, closes it on another thread and, while the close of the
   * cache it decorates is held up (after the drain), runs the check; then lets the close end, and
   * checks the store got a:1 and nothing else.
   */
  /** A store call that says it came, then waits for the release (at most {@code atMost}). */
  private static Runnable holdingStoreCall(CountDownLatch came, CountDownLatch release, Duration atMost) {
    return () -> {
      came.countDown();
      try {
        release.await(atMost.toMillis(), TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    };
  }

  private void whileTheDecoratedCacheCloses(Runnable check) throws Exception {
    CountDownLatch closing = new CountDownLatch(1);
    CountDownLatch letClose = new CountDownLatch(1);
    Cache delegate = new SwitchableCache(memory) {
      @Override
      public void close() {
        closing.countDown();
        try {
          letClose.await();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        super.close();
      }
    };
    cache = builder(delegate).writeBack("memory", store).build();
    cache.put("memory", "a", "1");
    Thread closer = Thread.ofVirtual().start(cache::close);
    closing.await();

    check.run();

    letClose.countDown();
    closer.join();
    assertThat(store.data).isEqualTo(Map.of("memory:a", "1"));
  }

  @Test
  void closeWaitsForAFlushUnderWayAndRetriesItsBatchWhenTheStoreFailsIt() throws Exception {
    CountDownLatch inStore = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicBoolean first = new AtomicBoolean(true);
    Runnable hold = holdingStoreCall(inStore, release, Duration.ofSeconds(20));
    store.beforeEachCall(() -> {
      if (first.getAndSet(false)) {
        hold.run();
      }
    });
    cache = builder(memory).writeBack("memory", store).writeBackBatchSize(2)
        .writeBackRetry(new RetryPolicy(3, Duration.ofMillis(1), Duration.ofMillis(5), 0)).build();
    cache.put("memory", "a", "1");
    cache.put("memory", "b", "2"); // a full batch: its flush is queued
    Thread flusher = Thread.ofVirtual().start(executor::runAll);
    assertThat(inStore.await(10, TimeUnit.SECONDS)).isTrue(); // the batch is out of the queue, in the store's hands
    assertThat(cache.pendingWrites()).isZero();
    CompletableFuture<Void> closed = CompletableFuture.runAsync(cache::close);

    await().during(Duration.ofMillis(300)).atMost(Duration.ofSeconds(5)).until(() -> !closed.isDone());
    store.failNext(1); // the store fails the batch under way: it goes back in the queue
    release.countDown();

    closed.get(20, TimeUnit.SECONDS);
    flusher.join(Duration.ofSeconds(10));
    assertThat(store.data).isEqualTo(Map.of("memory:a", "1", "memory:b", "2"));
  }

  @Test
  void closeWaitsForAHungFlushNoLongerThanTheShutdownTimeout() throws Exception {
    CountDownLatch inStore = new CountDownLatch(1);
    CountDownLatch never = new CountDownLatch(1);
    store.beforeEachCall(holdingStoreCall(inStore, never, Duration.ofSeconds(60)));
    cache = builder(memory).writeBack("memory", store).writeBackBatchSize(1)
        .shutdownTimeout(Duration.ofMillis(300)).build();
    cache.put("memory", "a", "1");
    Thread.ofVirtual().start(executor::runAll);
    assertThat(inStore.await(10, TimeUnit.SECONDS)).isTrue();
    try {
      long start = System.nanoTime();
      cache.close();
      assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
    } finally {
      never.countDown();
    }
  }

  @Test
  void closeOnAnInterruptedThreadStillWritesWhatWaits() throws Exception {
    cache = builder(memory).writeBack("memory", store).build();
    cache.put("memory", "a", "1");

    Thread closer = Thread.ofVirtual().start(() -> {
      Thread.currentThread().interrupt();
      cache.close();
    });
    closer.join(Duration.ofSeconds(10));

    assertThat(store.data).isEqualTo(Map.of("memory:a", "1"));
  }

  @Test
  void aNullKeyIsRefusedAsInvalidOnAWriteBackNamespace() {
    cache = builder(memory).writeBack("memory", store).build();

    assertThatThrownBy(() -> cache.delete("memory", null)).isInstanceOf(ValidationException.class);
    assertThatThrownBy(() -> cache.putIfAbsent("memory", null, "1", TTL)).isInstanceOf(ValidationException.class);
  }

  @Test
  void twoWritesOfOneKeyReachTheStoreInTheOrderTheCacheTookThem() throws Exception {
    CountDownLatch wroteOne = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    Cache delegate = new SwitchableCache(memory) {
      @Override
      public void put(String namespace, String key, String json) {
        super.put(namespace, key, json);
        if (json.equals("1")) { // in the cache, not yet queued
          wroteOne.countDown();
          try {
            release.await(20, TimeUnit.SECONDS);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        }
      }
    };
    cache = builder(delegate).writeBack("memory", store).build();
    Thread one = Thread.ofVirtual().start(() -> cache.put("memory", "k", "1"));
    assertThat(wroteOne.await(10, TimeUnit.SECONDS)).isTrue();
    Thread two = Thread.ofVirtual().start(() -> cache.put("memory", "k", "2"));
    awaitWaitingOrDone(two);
    release.countDown();
    one.join(Duration.ofSeconds(10));
    two.join(Duration.ofSeconds(10));

    cache.flush();

    assertThat(store.data.get("memory:k")).as("the store ends as the cache").isEqualTo(cache.get("memory", "k").orElseThrow());
  }

  @Test
  void aWriteBackDeleteDuringCloseIsRefused() throws Exception {
    whileTheDecoratedCacheCloses(
        () -> assertThatThrownBy(() -> cache.delete("memory", "a")).isInstanceOf(ClosedException.class));
  }

  @Test
  void aFullQueueRefusesWritesBeforeTheyReachTheCache() {
    cache = builder(memory).writeBack("memory", store).writeBackMaxPending(1).build();
    cache.put("memory", "a", "1");

    assertThatThrownBy(() -> cache.put("memory", "b", "2"))
        .isInstanceOf(RetriableException.class)
        .hasMessageContaining("at most 1");
    assertThat(cache.get("memory", "b")).isEmpty();
  }

  @Test
  void aBatchLargerThanTheWholeQueueIsRefusedAsInvalidNotAsTryLater() {
    cache = builder(memory).writeBack("memory", store).writeBackMaxPending(2).build();

    assertThatThrownBy(() -> cache.putAll("memory", Map.of("a", "1", "b", "2", "c", "3")))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("smaller batches");
    cache.putAll("memory", Map.of("a", "1", "b", "2"));
    assertThat(cache.pendingWrites()).isEqualTo(2);
  }

  @Test
  void aWriteTheCacheRefusesIsNotQueued() {
    SwitchableCache delegate = new SwitchableCache(memory);
    cache = builder(delegate).writeBack("memory", store).build();
    delegate.refuseWrites = true;

    assertThatThrownBy(() -> cache.put("memory", "a", "1")).isInstanceOf(RetriableException.class);

    assertThat(cache.pendingWrites()).isZero();
  }

  // ---- REFRESH_AHEAD ----

  @Test
  void aMissLoadsAndCachesForTheRefreshTtl() {
    CountingLoader loader = new CountingLoader();
    cache = builder(memory).refreshAhead("goals", loader, TTL).build();

    assertThat(cache.get("goals", "g1")).contains("\"g1#1\"");
    assertThat(cache.get("goals", "g1")).contains("\"g1#1\"");

    assertThat(loader.calls).hasValue(1);
    clock.advance(TTL);
    assertThat(memory.get("goals", "g1")).as("cached for the refresh TTL").isEmpty();
  }

  @Test
  void concurrentMissesLoadOnce() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    CountingLoader loader = new CountingLoader(release);
    cache = builder(memory).refreshAhead("goals", loader, TTL).build();
    int callers = 8;
    CyclicBarrier start = new CyclicBarrier(callers);
    ExecutorService threads = Executors.newFixedThreadPool(callers);
    try {
      List<Future<Optional<String>>> results = new ArrayList<>();
      for (int i = 0; i < callers; i++) {
        results.add(threads.submit(() -> {
          start.await();
          return cache.get("goals", "g1");
        }));
      }
      loader.started.await(5, TimeUnit.SECONDS);
      Thread.sleep(50); // let the other callers reach the load in flight (not timing logic)
      release.countDown();
      for (Future<Optional<String>> result : results) {
        assertThat(result.get(5, TimeUnit.SECONDS)).contains("\"g1#1\"");
      }
    } finally {
      threads.shutdownNow();
    }
    assertThat(loader.calls).hasValue(1);
  }

  @Test
  void aHitInTheLastFifthOfItsTtlReloadsInTheBackgroundOnce() {
    CountingLoader loader = new CountingLoader();
    cache = builder(memory).refreshAhead("goals", loader, TTL).build();
    cache.get("goals", "g1");

    clock.advance(Duration.ofSeconds(79));
    assertThat(cache.get("goals", "g1")).contains("\"g1#1\"");
    assertThat(executor.queued()).as("79 % of the TTL gone: no reload").isZero();

    clock.advance(Duration.ofSeconds(1));
    assertThat(cache.get("goals", "g1")).as("the caller gets the cached value at once").contains("\"g1#1\"");
    assertThat(cache.get("goals", "g1")).contains("\"g1#1\"");
    assertThat(executor.queued()).as("one reload for many reads").isEqualTo(1);
    assertThat(loader.calls).hasValue(1);

    executor.runAll();

    assertThat(loader.calls).hasValue(2);
    assertThat(cache.get("goals", "g1")).contains("\"g1#2\"");
    clock.advance(Duration.ofSeconds(79));
    assertThat(cache.get("goals", "g1")).as("the reload restarted the TTL").contains("\"g1#2\"");
    assertThat(registry.get("nis.cache.loads").tags("kind", "refresh", "result", "ok").counter().count()).isEqualTo(1);
  }

  /** A loader that, after reading the source, lets another caller's write of the key land first. */
  private CacheLoader loaderRacedBy(Consumer<String> otherCallersWrite, AtomicBoolean racing) {
    CountingLoader source = new CountingLoader();
    return (namespace, key) -> {
      Optional<String> read = source.load(namespace, key);
      if (racing.getAndSet(false)) {
        otherCallersWrite.accept(key);
      }
      return read;
    };
  }

  @Test
  void aReloadThatReadTheSourceBeforeADeleteDoesNotPutTheValueBack() {
    AtomicBoolean racing = new AtomicBoolean();
    cache = builder(memory).refreshAhead("goals", loaderRacedBy(key -> cache.delete("goals", key), racing), TTL).build();
    cache.get("goals", "g1");
    clock.advance(Duration.ofSeconds(80));
    cache.get("goals", "g1"); // queues the reload
    racing.set(true);

    executor.runAll();

    assertThat(memory.get("goals", "g1")).as("deleted after the reload read the source").isEmpty();
  }

  @Test
  void aLoadThatReadTheSourceBeforeAWriteDoesNotOverwriteIt() {
    AtomicBoolean racing = new AtomicBoolean(true);
    cache = builder(memory).refreshAhead("goals", loaderRacedBy(key -> cache.put("goals", key, "\"written\""), racing), TTL).build();

    assertThat(cache.get("goals", "g1")).as("the caller gets what it loaded").contains("\"g1#1\"");

    assertThat(memory.get("goals", "g1")).as("the write that came after the read stays").contains("\"written\"");
  }

  @Test
  void aLoadAfterAMissDoesNotOverwriteAWriteOfAnotherInstance() {
    AtomicBoolean racing = new AtomicBoolean(true);
    cache = builder(memory)
        .refreshAhead("goals", loaderRacedBy(key -> memory.put("goals", key, "\"written\""), racing), TTL)
        .build();

    assertThat(cache.get("goals", "g1")).as("the caller gets what it loaded").contains("\"g1#1\"");

    assertThat(memory.get("goals", "g1")).as("written by another instance after the read").contains("\"written\"");
  }

  @Test
  void aLoadAfterAMissDoesNotOverwriteAClaimMadeBeforeItStored() throws Exception {
    CountDownLatch loaderStarted = new CountDownLatch(1);
    CountDownLatch claimed = new CountDownLatch(1);
    CountingLoader source = new CountingLoader();
    CacheLoader slowLoader = (namespace, key) -> {
      loaderStarted.countDown();
      awaitLatch(claimed);
      return source.load(namespace, key);
    };
    AtomicReference<Future<Optional<String>>> missingRead = new AtomicReference<>();
    Cache delegate = new SwitchableCache(memory) {
      @Override
      public boolean putIfAbsent(String namespace, String key, String json, Duration ttl) {
        if (json.equals("\"claim\"")) { // the claim found no load under way; one starts now
          missingRead.set(CompletableFuture.supplyAsync(() -> cache.get(namespace, key)));
          awaitLatch(loaderStarted);
          boolean stored = super.putIfAbsent(namespace, key, json, ttl);
          claimed.countDown();
          return stored;
        }
        return super.putIfAbsent(namespace, key, json, ttl);
      }
    };
    cache = builder(delegate).refreshAhead("goals", slowLoader, TTL).build();

    assertThat(cache.putIfAbsent("goals", "g1", "\"claim\"", TTL)).isTrue();
    assertThat(missingRead.get().get(10, TimeUnit.SECONDS)).contains("\"g1#1\"");

    assertThat(memory.get("goals", "g1")).as("the claim that succeeded stays").contains("\"claim\"");
  }

  private static void awaitLatch(CountDownLatch latch) {
    try {
      if (!latch.await(10, TimeUnit.SECONDS)) {
        throw new IllegalStateException("waited 10 s in vain");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  @Test
  void aReloadThatReadTheSourceBeforeAClearDoesNotPutTheValueBack() {
    AtomicBoolean racing = new AtomicBoolean();
    cache = builder(memory).refreshAhead("goals", loaderRacedBy(key -> cache.clear("goals"), racing), TTL).build();
    cache.get("goals", "g1");
    clock.advance(Duration.ofSeconds(80));
    cache.get("goals", "g1");
    racing.set(true);

    executor.runAll();

    assertThat(memory.get("goals", "g1")).isEmpty();
  }

  @Test
  void theRefreshShareIsConfigurable() {
    CountingLoader loader = new CountingLoader();
    cache = builder(memory).refreshAhead("goals", loader, TTL, 0.5).build();
    cache.get("goals", "g1");

    clock.advance(Duration.ofSeconds(49));
    cache.get("goals", "g1");
    assertThat(executor.queued()).isZero();
    clock.advance(Duration.ofSeconds(1));
    cache.get("goals", "g1");
    assertThat(executor.queued()).isEqualTo(1);
  }

  @Test
  void aFailedReloadKeepsTheOldValueUntilItsTtlEnds() {
    CountingLoader loader = new CountingLoader();
    cache = builder(memory).refreshAhead("goals", loader, TTL).build();
    cache.get("goals", "g1");
    clock.advance(Duration.ofSeconds(90));
    loader.failNext = true;
    cache.get("goals", "g1");

    executor.runAll();

    assertThat(cache.get("goals", "g1")).contains("\"g1#1\"");
    assertThat(registry.get("nis.cache.loads").tags("kind", "refresh", "result", "failed").counter().count()).isEqualTo(1);
    clock.advance(Duration.ofSeconds(10));
    executor.runAll();
    assertThat(cache.get("goals", "g1")).as("expired: loaded anew on the miss").contains("\"g1#3\"");
  }

  @Test
  void callersNeverWaitForAReload() {
    CountDownLatch release = new CountDownLatch(1);
    CountingLoader loader = new CountingLoader();
    cache =
        StrategyCache.builder(memory)
            .clock(clock)
            .refreshAhead("goals", loader, TTL)
            .build(); // the default executor: real background threads
    cache.get("goals", "g1");
    loader.blockOn = release;
    clock.advance(Duration.ofSeconds(90));

    try {
      Optional<String> read = assertTimeoutPreemptively(Duration.ofSeconds(8), () -> cache.get("goals", "g1"));
      assertThat(read).contains("\"g1#1\"");
    } finally {
      release.countDown();
    }
  }

  @Test
  void anEmptyLoadCachesNothing() {
    AtomicInteger calls = new AtomicInteger();
    cache =
        builder(memory)
            .refreshAhead("goals", (ns, key) -> {
              calls.incrementAndGet();
              return Optional.empty();
            }, TTL)
            .build();

    assertThat(cache.get("goals", "none")).isEmpty();
    assertThat(cache.get("goals", "none")).isEmpty();
    assertThat(calls).hasValue(2);
  }

  @Test
  void getAllLoadsTheMissesAndRefreshesWhatIsDue() {
    CountingLoader loader = new CountingLoader();
    cache = builder(memory).refreshAhead("goals", loader, TTL).build();
    cache.put("goals", "a", "\"a#0\"");

    Map<String, String> first = cache.getAll("goals", List.of("a", "b"));
    assertThat(first).isEqualTo(Map.of("a", "\"a#0\"", "b", "\"b#1\""));
    clock.advance(Duration.ofSeconds(85));
    cache.getAll("goals", List.of("a", "b"));

    assertThat(executor.queued()).isEqualTo(2);
  }

  @Test
  void getAllLoadsAKeyNamedTwiceOnce() {
    CountingLoader loader = new CountingLoader();
    cache = builder(memory).refreshAhead("goals", loader, TTL).build();

    assertThat(cache.getAll("goals", List.of("a", "a"))).isEqualTo(Map.of("a", "\"a#1\""));

    assertThat(loader.calls).hasValue(1);
  }

  @Test
  void listingAndHealthAreTheDelegates() {
    cache = builder(memory).writeThrough("orders", store).build();
    cache.put("orders", "o1", "1");

    assertThat(cache.entries("orders", 10)).isEqualTo(Map.of("o1", "1"));
    assertThat(cache.checkHealth(Duration.ofSeconds(1)).status()).isEqualTo(org.nisprotocol.core.HealthStatus.HEALTHY);
    cache.recover();
  }

  // ---- configuration ----

  @Test
  void badStrategiesAreAllReported() {
    assertThatThrownBy(
            () ->
                StrategyCache.builder(memory)
                    .writeThrough("orders", store)
                    .writeBack("orders", store)
                    .refreshAhead("goals", new CountingLoader(), TTL, 1.5)
                    .writeThrough("bad ns", store)
                    .writeBackBatchSize(0)
                    .build())
        .isInstanceOfSatisfying(
            ValidationException.class,
            e ->
                assertThat(e.problems())
                    .hasSize(4)
                    .anySatisfy(p -> assertThat(p).contains("orders has two strategies"))
                    .anySatisfy(p -> assertThat(p).contains("fraction").contains("1.5"))
                    .anySatisfy(p -> assertThat(p).contains("bad ns"))
                    .anySatisfy(p -> assertThat(p).contains("writeBackBatchSize")));
  }

  // ---- test doubles ----

  /** Runs submitted tasks only when the test says so. */
  static final class ManualExecutor implements java.util.concurrent.Executor {
    private final Queue<Runnable> tasks = new ArrayDeque<>();

    @Override
    public synchronized void execute(Runnable task) {
      tasks.add(task);
    }

    synchronized int queued() {
      return tasks.size();
    }

    void runAll() {
      Runnable task;
      while ((task = poll()) != null) {
        task.run();
      }
    }

    private synchronized Runnable poll() {
      return tasks.poll();
    }
  }

  /** Loads "key#n" for the n-th load; can block or fail. */
  static final class CountingLoader implements CacheLoader {
    final AtomicInteger calls = new AtomicInteger();
    final CountDownLatch started = new CountDownLatch(1);
    volatile CountDownLatch blockOn;
    volatile boolean failNext;

    CountingLoader() {}

    CountingLoader(CountDownLatch blockOn) {
      this.blockOn = blockOn;
    }

    @Override
    public Optional<String> load(String namespace, String key) {
      int n = calls.incrementAndGet();
      started.countDown();
      if (failNext) {
        failNext = false;
        throw new IllegalStateException("loader down");
      }
      CountDownLatch latch = blockOn;
      if (latch != null) {
        try {
          latch.await(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      return Optional.of("\"" + key + "#" + n + "\"");
    }
  }

  /** A real cache that can be told to refuse writes as an unavailable backend does. */
  static class SwitchableCache implements Cache {
    private final Cache real;
    volatile boolean refuseWrites;
    volatile boolean closed;

    SwitchableCache(Cache real) {
      this.real = real;
    }

    @Override
    public Optional<String> get(String namespace, String key) {
      return real.get(namespace, key);
    }

    @Override
    public Map<String, String> getAll(String namespace, Collection<String> keys) {
      return real.getAll(namespace, keys);
    }

    @Override
    public void put(String namespace, String key, String json) {
      refuse();
      real.put(namespace, key, json);
    }

    @Override
    public void put(String namespace, String key, String json, Duration ttl) {
      refuse();
      real.put(namespace, key, json, ttl);
    }

    @Override
    public boolean putIfAbsent(String namespace, String key, String json, Duration ttl) {
      refuse();
      return real.putIfAbsent(namespace, key, json, ttl);
    }

    @Override
    public void putAll(String namespace, Map<String, String> entries) {
      refuse();
      real.putAll(namespace, entries);
    }

    @Override
    public void putAll(String namespace, Map<String, String> entries, Duration ttl) {
      refuse();
      real.putAll(namespace, entries, ttl);
    }

    @Override
    public boolean delete(String namespace, String key) {
      refuse();
      return real.delete(namespace, key);
    }

    @Override
    public Map<String, String> entries(String namespace, int limit) {
      return real.entries(namespace, limit);
    }

    @Override
    public long clear(String namespace) {
      return real.clear(namespace);
    }

    @Override
    public String name() {
      return "switchable";
    }

    @Override
    public void close() {
      closed = true;
      real.close();
    }

    private void refuse() {
      if (refuseWrites) {
        throw new RetriableException("backend unavailable");
      }
    }
  }
}
