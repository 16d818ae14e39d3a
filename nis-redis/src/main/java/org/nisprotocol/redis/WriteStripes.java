package org.nisprotocol.redis;

import java.util.Collection;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;

/**
 * Orders a load's cache write after the writes of its key on this instance: a load takes its
 * key's {@link #stamp} before it asks the source, and stores what it got only if no write, delete
 * or clear of the key came meanwhile. Without this, a load that read the source before a write or
 * a delete put the older value back, and it stayed until its TTL ended. Keys share stripes, so a
 * write to another key of the stripe also makes a load skip its store: the next read loads again.
 */
final class WriteStripes {
  private static final int STRIPES = 64;

  private final ReentrantLock[] locks = new ReentrantLock[STRIPES];
  private final long[] writes = new long[STRIPES]; // writes[i] guarded by locks[i]

  WriteStripes() {
    for (int i = 0; i < STRIPES; i++) {
      locks[i] = new ReentrantLock();
    }
  }

  /** The key's stripe count, to hand to {@link #storeIfUnchanged}. */
  long stamp(Object key) {
    int stripe = stripeOf(key);
    locks[stripe].lock();
    try {
      return writes[stripe];
    } finally {
      locks[stripe].unlock();
    }
  }

  /** Runs a write of the keys, counted on their stripes, and returns its result. */
  <T> T write(Collection<?> keys, Supplier<T> write) {
    boolean[] taken = new boolean[STRIPES];
    keys.forEach(key -> taken[stripeOf(key)] = true);
    return underStripes(taken, write);
  }

  /** Runs a write that may touch any key (a clear), counted on every stripe. */
  <T> T writeAny(Supplier<T> write) {
    boolean[] taken = new boolean[STRIPES];
    java.util.Arrays.fill(taken, true);
    return underStripes(taken, write);
  }

  /** Runs the store unless the key's stripe was written since the stamp; whether it ran. */
  boolean storeIfUnchanged(Object key, long stamp, Runnable store) {
    int stripe = stripeOf(key);
    locks[stripe].lock();
    try {
      if (writes[stripe] != stamp) {
        return false;
      }
      store.run();
      return true;
    } finally {
      locks[stripe].unlock();
    }
  }

  /** Takes the stripes in index order (so two writes never wait for each other in a ring). */
  private <T> T underStripes(boolean[] taken, Supplier<T> write) {
    int locked = 0;
    try {
      for (; locked < STRIPES; locked++) {
        if (taken[locked]) {
          locks[locked].lock();
          writes[locked]++;
        }
      }
      return write.get();
    } finally {
      for (int i = locked - 1; i >= 0; i--) {
        if (taken[i]) {
          locks[i].unlock();
        }
      }
    }
  }

  private static int stripeOf(Object key) {
    return Math.floorMod(key.hashCode() * 0x9E3779B9, STRIPES);
  }
}
