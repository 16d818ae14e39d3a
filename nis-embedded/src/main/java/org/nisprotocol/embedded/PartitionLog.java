package org.nisprotocol.embedded;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.nisprotocol.core.NisMessage;

/**
 * One partition of a topic: an append-only sequence of entries numbered by offset, from which the
 * entries every active group has consumed are trimmed. Guarded by its own lock; {@link #changed}
 * is signalled on append, on consumption and on membership changes.
 */
final class PartitionLog {
  /** An entry; {@code holdsPermit} says whether it counts against the bus capacity. */
  record Entry(NisMessage message, Map<String, String> headers, long offset, boolean holdsPermit) {}

  final int index;
  final ReentrantLock lock = new ReentrantLock();
  final Condition changed = lock.newCondition();

  // entries.get(head) has offset baseOffset; slots before head are trimmed (null).
  private final List<Entry> entries = new ArrayList<>();
  private int head;
  private long baseOffset;

  PartitionLog(int index) {
    this.index = index;
  }

  /** Appends and wakes the consumers. Caller must not hold the lock. */
  long append(NisMessage message, Map<String, String> headers, boolean holdsPermit) {
    lock.lock();
    try {
      long offset = endOffset();
      entries.add(new Entry(message, headers, offset, holdsPermit));
      changed.signalAll();
      return offset;
    } finally {
      lock.unlock();
    }
  }

  /** Offset of the oldest entry still held. Caller holds the lock. */
  long baseOffset() {
    return baseOffset;
  }

  /** Offset the next append gets. Caller holds the lock. */
  long endOffset() {
    return baseOffset + entries.size() - head;
  }

  /** The entry at an offset between base and end. Caller holds the lock. */
  Entry get(long offset) {
    return entries.get(head + (int) (offset - baseOffset));
  }

  /**
   * Drops entries below the offset; returns how many of them held a capacity permit. Caller holds
   * the lock.
   */
  int trimBelow(long offset) {
    int permits = 0;
    while (baseOffset < offset && head < entries.size()) {
      if (entries.get(head).holdsPermit()) {
        permits++;
      }
      entries.set(head++, null);
      baseOffset++;
    }
    if (head > 1024 && head > entries.size() / 2) {
      entries.subList(0, head).clear();
      head = 0;
    }
    return permits;
  }

  /** Wakes every consumer of this partition. */
  void signalAll() {
    lock.lock();
    try {
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /** Waits for a change, at most the given time. Caller holds the lock. */
  boolean await(long nanos) throws InterruptedException {
    return changed.await(nanos, TimeUnit.NANOSECONDS);
  }
}
