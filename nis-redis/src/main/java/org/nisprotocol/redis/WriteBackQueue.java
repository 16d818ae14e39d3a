package org.nisprotocol.redis;

import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.DoubleSupplier;
import org.nisprotocol.core.RetriableException;
import org.nisprotocol.core.RetryPolicy;
import org.nisprotocol.core.ValidationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The writes of write-back namespaces that the cache acknowledged and the store has not yet taken.
 *
 * <p>Writes are coalesced by key: only the newest write (or delete) of a key waits, so a key
 * written a thousand times between two flushes costs the store one write. A flush takes up to
 * {@code batchSize} of them in arrival order and hands each namespace's part to its store in one
 * {@link BackingStore#writeAll} (deletes one by one). What the store refuses goes back to the queue
 * (unless a newer write of the same key arrived meanwhile) and is tried again after the retry
 * policy's backoff; acknowledged writes are never dropped while the cache is open. Past {@code
 * maxAttempts} consecutive failures the backoff stays at its maximum and each failure is logged as
 * an error.
 *
 * <p>Thread-safe: writers only take the queue lock briefly; one flush runs at a time, and the store
 * is called outside the queue lock.
 */
final class WriteBackQueue {
  private static final Logger log = LoggerFactory.getLogger(WriteBackQueue.class);

  record Key(String namespace, String key) {}

  /** A pending operation: the JSON to write, or a delete when json is null. */
  private record Op(String json) {
    boolean delete() {
      return json == null;
    }
  }

  private final Map<String, BackingStore> stores;
  private final int batchSize;
  private final int maxPending;
  private final RetryPolicy retry;
  private final InstantSource clock;
  private final DoubleSupplier random;
  private final LinkedHashMap<Key, Op> pending = new LinkedHashMap<>();
  private final ReentrantLock flushing = new ReentrantLock();
  private int consecutiveFailures;
  private Instant nextAttemptAt = Instant.MIN;
  private long flushed;
  private long failures;
  private volatile RuntimeException lastError;

  WriteBackQueue(
      Map<String, BackingStore> stores,
      int batchSize,
      int maxPending,
      RetryPolicy retry,
      InstantSource clock,
      DoubleSupplier random) {
    this.stores = Map.copyOf(stores);
    this.batchSize = batchSize;
    this.maxPending = maxPending;
    this.retry = retry;
    this.clock = clock;
    this.random = random;
  }

  /**
   * Refuses new writes while the queue is full, before the cache is written.
   *
   * @throws RetriableException when {@code maxPending} writes wait already
   */
  synchronized void requireRoom(String namespace, int writes) {
    if (writes > maxPending) {
      throw new ValidationException("write-back of " + writes + " entries of namespace " + namespace + " refused: more"
          + " than the " + maxPending + " writes that may wait for the store at once; write them in smaller batches");
    }
    if (pending.size() + writes > maxPending) {
      throw new RetriableException(
          "write-back of namespace "
              + namespace
              + " refused: "
              + pending.size()
              + " writes already wait for the backing store (at most "
              + maxPending
              + "); the store is slow or failing, retry later");
    }
  }

  synchronized void write(String namespace, String key, String json) {
    Key k = new Key(namespace, key);
    pending.remove(k);
    pending.put(k, new Op(Objects.requireNonNull(json)));
  }

  synchronized void delete(String namespace, String key) {
    Key k = new Key(namespace, key);
    pending.remove(k);
    pending.put(k, new Op(null));
  }

  synchronized int pending() {
    return pending.size();
  }

  synchronized long flushed() {
    return flushed;
  }

  synchronized long failures() {
    return failures;
  }

  synchronized boolean due() {
    return !pending.isEmpty() && !clock.instant().isBefore(nextAttemptAt);
  }

  synchronized boolean full() {
    return pending.size() >= batchSize;
  }

  /** When the next attempt may run after failures (the past when none failed). */
  synchronized Instant nextAttemptAt() {
    return nextAttemptAt;
  }

  /**
   * Flushes batch after batch while writes wait and the backoff allows. Returns whether everything
   * pending was written; false when the store failed (the writes are back in the queue) or it is
   * too early to retry.
   */
  boolean flushDue() {
    return flush(false);
  }

  /**
   * Flushes everything now, ignoring the backoff.
   *
   * @throws RetriableException naming the store's error when it refuses a batch (the batch stays
   *     queued)
   */
  void flushNow() {
    flushNow(Long.MAX_VALUE);
  }

  /**
   * {@link #flushNow()}, waiting at most {@code waitNanos} for a flush under way to end.
   *
   * @throws RetriableException when the store refuses a batch, or the flush under way did not end
   *     in time
   */
  void flushNow(long waitNanos) {
    if (!lockFlushing(waitNanos)) {
      throw new RetriableException("a write-back flush under way did not end in time; " + pending()
          + " writes wait besides the batch it holds");
    }
    boolean flushed;
    try {
      flushed = flush(true);
    } finally {
      flushing.unlock();
    }
    if (!flushed) {
      RuntimeException cause = lastError;
      throw new RetriableException(
          "the backing store refused a write-back batch ("
              + (cause == null ? "unknown error" : cause.getMessage())
              + "); "
              + pending()
              + " writes stay queued and are retried",
          cause);
    }
  }

  /**
   * Takes the flush lock, waiting at most {@code waitNanos}; an interrupt does not cut the wait
   * short (a close() on an interrupted thread must still write what waits) and is kept for the caller.
   */
  private boolean lockFlushing(long waitNanos) {
    if (flushing.tryLock()) {
      return true;
    }
    long deadline = System.nanoTime() + Math.min(waitNanos, Long.MAX_VALUE / 2);
    boolean interrupted = false;
    try {
      while (true) {
        try {
          return flushing.tryLock(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private boolean flush(boolean ignoreBackoff) {
    flushing.lock();
    try {
      while (true) {
        Map<Key, Op> batch = takeBatch(ignoreBackoff);
        if (batch == null) {
          synchronized (this) {
            if (pending.isEmpty() || !ignoreBackoff) {
              return pending.isEmpty();
            }
          }
          continue; // a write came in after the queue was found empty: flushed too, not reported as refused
        }
        if (!writeToStores(batch)) {
          return false;
        }
      }
    } finally {
      flushing.unlock();
    }
  }

  private synchronized Map<Key, Op> takeBatch(boolean ignoreBackoff) {
    if (pending.isEmpty() || (!ignoreBackoff && clock.instant().isBefore(nextAttemptAt))) {
      return null;
    }
    Map<Key, Op> batch = new LinkedHashMap<>();
    Iterator<Map.Entry<Key, Op>> it = pending.entrySet().iterator();
    while (it.hasNext() && batch.size() < batchSize) {
      Map.Entry<Key, Op> next = it.next();
      batch.put(next.getKey(), next.getValue());
      it.remove();
    }
    return batch;
  }

  /** Writes one batch, namespace by namespace; on failure re-queues what was not written. */
  private boolean writeToStores(Map<Key, Op> batch) {
    Map<String, Map<Key, Op>> byNamespace = new LinkedHashMap<>();
    batch.forEach((k, op) -> byNamespace.computeIfAbsent(k.namespace(), n -> new LinkedHashMap<>()).put(k, op));
    List<Map<Key, Op>> groups = new ArrayList<>(byNamespace.values());
    for (int i = 0; i < groups.size(); i++) {
      Map<Key, Op> group = groups.get(i);
      String namespace = group.keySet().iterator().next().namespace();
      try {
        writeGroup(stores.get(namespace), namespace, group);
      } catch (RuntimeException e) {
        List<Map<Key, Op>> unwritten = groups.subList(i, groups.size());
        requeue(unwritten, e, namespace);
        return false;
      }
      synchronized (this) {
        flushed += group.size();
      }
    }
    synchronized (this) {
      consecutiveFailures = 0;
      nextAttemptAt = Instant.MIN;
    }
    return true;
  }

  private static void writeGroup(BackingStore store, String namespace, Map<Key, Op> group) {
    Map<String, String> writes = new LinkedHashMap<>();
    List<String> deletes = new ArrayList<>();
    group.forEach(
        (k, op) -> {
          if (op.delete()) {
            deletes.add(k.key());
          } else {
            writes.put(k.key(), op.json());
          }
        });
    if (!writes.isEmpty()) {
      store.writeAll(namespace, writes);
    }
    for (String key : deletes) {
      store.delete(namespace, key);
    }
  }

  private void requeue(List<Map<Key, Op>> unwritten, RuntimeException error, String namespace) {
    int attempt;
    Duration delay;
    synchronized (this) {
      failures++;
      attempt = ++consecutiveFailures;
      delay = retry.delayBefore(attempt, random.getAsDouble());
      nextAttemptAt = clock.instant().plus(delay);
      int requeued = 0;
      for (Map<Key, Op> group : unwritten) {
        for (Map.Entry<Key, Op> e : group.entrySet()) {
          // a newer write of the key arrived while this one was with the store: the newer wins
          if (!pending.containsKey(e.getKey())) {
            pending.put(e.getKey(), e.getValue());
            requeued++;
          }
        }
      }
      lastError = error;
      if (attempt >= retry.maxAttempts()) {
        log.error(
            "the backing store of namespace {} failed {} times in a row ({}); {} writes wait, next try in {} ms",
            namespace, attempt, error.toString(), pending.size(), delay.toMillis());
      } else {
        log.warn(
            "the backing store of namespace {} refused a write-back batch ({}); {} writes re-queued, retry in {} ms",
            namespace, error.toString(), requeued, delay.toMillis());
      }
    }
  }

  /** The keys still waiting, for the message of a close that could not flush them. */
  synchronized List<Key> pendingKeys(int limit) {
    return pending.keySet().stream().limit(limit).toList();
  }
}
