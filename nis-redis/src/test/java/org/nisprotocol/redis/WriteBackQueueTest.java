package org.nisprotocol.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.RetriableException;
import org.nisprotocol.core.RetryPolicy;
import org.nisprotocol.testkit.ManualClock;

class WriteBackQueueTest {
  private static final RetryPolicy NO_JITTER =
      new RetryPolicy(3, Duration.ofSeconds(1), Duration.ofSeconds(30), 0);

  private final ManualClock clock = ManualClock.create();
  private final RecordingStore memory = new RecordingStore();
  private final RecordingStore goals = new RecordingStore();

  private WriteBackQueue queue(int batchSize, int maxPending) {
    return new WriteBackQueue(
        Map.of("memory", memory, "goals", goals), batchSize, maxPending, NO_JITTER, clock, () -> 0.5);
  }

  @Test
  void onlyTheNewestWriteOfAKeyReachesTheStore() {
    WriteBackQueue queue = queue(100, 1000);
    queue.write("memory", "a", "1");
    queue.write("memory", "a", "2");
    queue.write("memory", "b", "1");
    queue.delete("memory", "b");
    queue.delete("memory", "c");
    queue.write("memory", "c", "3");

    assertThat(queue.pending()).isEqualTo(3);
    assertThat(queue.flushDue()).isTrue();

    assertThat(memory.calls).containsExactly("writeAll memory {a=2, c=3}", "delete memory:b");
    assertThat(memory.data).isEqualTo(Map.of("memory:a", "2", "memory:c", "3"));
    assertThat(queue.pending()).isZero();
    assertThat(queue.flushed()).isEqualTo(3);
  }

  @Test
  void batchesAreBoundedAndSplitByNamespace() {
    WriteBackQueue queue = queue(2, 1000);
    queue.write("memory", "a", "1");
    queue.write("goals", "g", "1");
    queue.write("memory", "b", "2");

    queue.flushDue();

    assertThat(memory.calls).containsExactly("writeAll memory {a=1}", "writeAll memory {b=2}");
    assertThat(goals.calls).containsExactly("writeAll goals {g=1}");
  }

  @Test
  void aRefusedBatchIsRetriedAfterTheBackoff() {
    WriteBackQueue queue = queue(100, 1000);
    memory.failNext(2);
    queue.write("memory", "a", "1");

    assertThat(queue.flushDue()).isFalse();
    assertThat(queue.pending()).isEqualTo(1);
    assertThat(queue.due()).isFalse();

    clock.advance(Duration.ofMillis(999));
    assertThat(queue.flushDue()).as("too early: nothing tried").isFalse();
    assertThat(memory.calls).hasSize(1);

    clock.advance(Duration.ofMillis(1));
    assertThat(queue.flushDue()).as("second failure").isFalse();
    clock.advance(Duration.ofMillis(1999));
    assertThat(queue.due()).as("backoff doubled to 2 s").isFalse();
    clock.advance(Duration.ofMillis(1));
    assertThat(queue.flushDue()).isTrue();

    assertThat(memory.calls)
        .containsExactly("FAILED writeAll memory {a=1}", "FAILED writeAll memory {a=1}", "writeAll memory {a=1}");
    assertThat(memory.data).containsEntry("memory:a", "1");
    assertThat(queue.failures()).isEqualTo(2);
  }

  @Test
  void aNewerWriteMadeWhileTheStoreFailedWins() {
    WriteBackQueue queue = queue(100, 1000);
    queue.write("memory", "a", "old");
    memory.failNext(1).beforeEachCall(() -> queue.write("memory", "a", "new"));

    assertThat(queue.flushDue()).isFalse();
    memory.beforeEachCall(() -> {});
    clock.advance(Duration.ofSeconds(1));
    queue.flushDue();

    assertThat(memory.data).containsEntry("memory:a", "new");
    assertThat(memory.calls).containsExactly("FAILED writeAll memory {a=old}", "writeAll memory {a=new}");
  }

  @Test
  void flushNowIgnoresTheBackoffAndReportsTheStoreError() {
    WriteBackQueue queue = queue(100, 1000);
    memory.failNext(2);
    queue.write("memory", "a", "1");
    queue.flushDue();

    assertThatThrownBy(queue::flushNow)
        .isInstanceOf(RetriableException.class)
        .hasMessageContaining("store unavailable")
        .hasMessageContaining("1 writes stay queued");

    queue.flushNow();
    assertThat(memory.data).containsEntry("memory:a", "1");
  }

  @Test
  void aFullQueueRefusesMoreWrites() {
    WriteBackQueue queue = queue(100, 2);
    queue.requireRoom("memory", 2);
    queue.write("memory", "a", "1");
    queue.write("memory", "b", "1");

    assertThatThrownBy(() -> queue.requireRoom("memory", 1))
        .isInstanceOf(RetriableException.class)
        .hasMessageContaining("2 writes already wait")
        .hasMessageContaining("at most 2");
  }

  /** Whatever the writes, deletes and store failures, the store ends with the newest value of each key. */
  @Property(tries = 200)
  void theStoreEndsWithTheNewestValueOfEveryKey(
      @ForAll @Size(max = 60) List<@IntRange(min = 0, max = 30) Integer> ops,
      @ForAll @IntRange(min = 1, max = 5) int batchSize,
      @ForAll long seed) {
    ManualClock time = ManualClock.create();
    RecordingStore store = new RecordingStore();
    WriteBackQueue queue =
        new WriteBackQueue(Map.of("ns", store), batchSize, 1000, NO_JITTER, time, () -> 0.5);
    Random random = new Random(seed);
    Map<String, String> model = new HashMap<>();
    int version = 0;
    for (int op : ops) {
      String key = "k" + (op % 6);
      if (op < 20) {
        String value = key + "v" + version++;
        queue.write("ns", key, value);
        model.put("ns:" + key, value);
      } else if (op < 25) {
        queue.delete("ns", key);
        model.remove("ns:" + key);
      } else {
        store.failNext(random.nextInt(2));
        queue.flushDue();
        time.advance(Duration.ofSeconds(random.nextInt(3)));
      }
    }
    store.failNext(0);
    queue.flushNow();

    assertThat(store.data).isEqualTo(model);
    assertThat(queue.pending()).isZero();
  }
}
