package org.nisprotocol.kafka;

import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which records this process's handlers had in hand when it last ended without closing: a handler
 * that kills the process (out of memory, {@code System.exit}, a native fault) would otherwise get
 * its record again at every start, for ever, and hold up its partition in every instance it moves
 * to. The subscriptions count such ends per record and dead-letter the record once the count
 * reaches the retry budget.
 *
 * <h2>Format</h2>
 *
 * A file of {@link #SLOTS} slots of {@link #SLOT_BYTES} bytes, mapped into memory: a worker marks
 * its slot before it calls the handler and clears it after, two stores to memory, which the
 * operating system keeps when the process dies (not when the machine does). A slot holds the
 * partition's key (a hash of group, topic and partition), the record's offset, the ends counted
 * before, the time of the last one, and its state: free, in hand, or ended (counted). On open, a
 * slot still in hand becomes ended, its count one higher.
 *
 * <p>Thread-safe. The file belongs to one process at a time, as the spool directory it lives in.
 */
final class HandlingJournal implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(HandlingJournal.class);

  static final int SLOTS = 4096;
  static final int SLOT_BYTES = 32;
  static final String FILE_NAME = "handling.journal";
  /** Counts older than this are dropped on open: the group's offsets have expired by then. */
  static final Duration KEPT_FOR = Duration.ofDays(7);

  private static final int KEY = 0;
  private static final int OFFSET = 8;
  private static final int ENDS = 16;
  private static final int STATE = 20;
  private static final int ENDED_AT = 24;

  private static final int FREE = 0;
  private static final int IN_HAND = 1;
  private static final int ENDED = 2;

  private static final VarHandle INTS =
      MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

  /** A record of a partition, as the journal knows it. */
  private record Handled(long partitionKey, long offset) {}

  private final MappedByteBuffer map;
  private final FileChannel channel;
  private final InstantSource clock;
  private final Deque<Integer> freeSlots = new ArrayDeque<>();
  private final Map<Handled, Integer> endedSlots = new ConcurrentHashMap<>();
  private boolean warnedFull;

  private HandlingJournal(FileChannel channel, MappedByteBuffer map, InstantSource clock) {
    this.channel = channel;
    this.map = map;
    this.clock = clock;
    map.order(ByteOrder.LITTLE_ENDIAN);
    long oldest = clock.millis() - KEPT_FOR.toMillis();
    for (int slot = 0; slot < SLOTS; slot++) {
      int at = slot * SLOT_BYTES;
      int state = map.getInt(at + STATE);
      if (state == IN_HAND) { // the process ended while this record was in hand
        map.putInt(at + ENDS, map.getInt(at + ENDS) + 1);
        map.putLong(at + ENDED_AT, clock.millis());
        map.putInt(at + STATE, ENDED);
        state = ENDED;
      }
      if (state == ENDED && map.getLong(at + ENDED_AT) >= oldest) {
        Handled record = new Handled(map.getLong(at + KEY), map.getLong(at + OFFSET));
        Integer other = endedSlots.get(record);
        if (other == null || map.getInt(other * SLOT_BYTES + ENDS) < map.getInt(at + ENDS)) {
          endedSlots.put(record, slot);
          if (other != null) {
            free(other);
          }
          continue;
        }
      }
      free(slot);
    }
    if (!endedSlots.isEmpty()) {
      log.warn("the process ended {} time(s) while a handler had a record in hand; such a record is"
          + " dead-lettered once this happened as often as the retry budget allows", endedSlots.size());
    }
  }

  /** Opens (or creates) the journal in the directory. */
  static HandlingJournal open(Path directory, InstantSource clock) throws IOException {
    FileChannel channel = FileChannel.open(
        directory.resolve(FILE_NAME), StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
    try {
      MappedByteBuffer map = channel.map(FileChannel.MapMode.READ_WRITE, 0, (long) SLOTS * SLOT_BYTES);
      return new HandlingJournal(channel, map, clock);
    } catch (IOException | RuntimeException e) {
      channel.close();
      throw e;
    }
  }

  /** The key of a group's partition. */
  static long partitionKey(String group, String topic, int partition) {
    long hash = 0xcbf29ce484222325L; // FNV-1a, 64 bits
    for (byte b : (group + '\u0000' + topic + '\u0000' + partition).getBytes(StandardCharsets.UTF_8)) {
      hash ^= b & 0xff;
      hash *= 0x100000001b3L;
    }
    return hash;
  }

  /** How often the process ended while the record was in hand (0 when never). */
  int endsWhileHandling(long partitionKey, long offset) {
    if (endedSlots.isEmpty()) {
      return 0; // nearly always: no allocation, no lock
    }
    Integer slot = endedSlots.get(new Handled(partitionKey, offset));
    return slot == null ? 0 : map.getInt(slot * SLOT_BYTES + ENDS);
  }

  /**
   * A worker's slot, marked while its handler runs; -1 when every slot is taken (the worker's
   * records are then not counted, which the log says once).
   */
  synchronized int claimSlot() {
    Integer slot = freeSlots.poll();
    if (slot == null) {
      if (!warnedFull) {
        warnedFull = true;
        log.warn("the handling journal's {} slots are all taken; records of further partitions are not"
            + " counted when the process ends while handling them", SLOTS);
      }
      return -1;
    }
    return slot;
  }

  /** Gives a worker's slot back (cleared). */
  synchronized void releaseSlot(int slot) {
    if (slot >= 0) {
      free(slot);
    }
  }

  /**
   * Marks the record as in hand in the worker's slot, with the ends counted for it so far: the
   * state is stored last, so a process that ends between these stores leaves the slot free.
   */
  void handling(int slot, long partitionKey, long offset, int endsSoFar) {
    if (slot < 0) {
      return;
    }
    int at = slot * SLOT_BYTES;
    INTS.setRelease(map, at + STATE, FREE);
    map.putLong(at + KEY, partitionKey);
    map.putLong(at + OFFSET, offset);
    map.putInt(at + ENDS, endsSoFar);
    map.putLong(at + ENDED_AT, 0);
    INTS.setRelease(map, at + STATE, IN_HAND);
  }

  /** The handler returned (or threw): the slot is no longer in hand. */
  void handled(int slot) {
    if (slot >= 0) {
      INTS.setRelease(map, slot * SLOT_BYTES + STATE, FREE);
    }
  }

  /** The record is done with (handled or dead-lettered): its count of ends is dropped. */
  synchronized void settled(long partitionKey, long offset) {
    Integer slot = endedSlots.remove(new Handled(partitionKey, offset));
    if (slot != null) {
      free(slot);
    }
  }

  private void free(int slot) {
    INTS.setRelease(map, slot * SLOT_BYTES + STATE, FREE);
    freeSlots.add(slot);
  }

  @Override
  public void close() throws IOException {
    map.force();
    channel.close();
  }
}
