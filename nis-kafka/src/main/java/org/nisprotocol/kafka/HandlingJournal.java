package org.nisprotocol.kafka;

import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which records this process's handlers had in hand when it last ended: a handler that kills the
 * process (a JVM set to exit on running out of memory, a container's out-of-memory kill, {@code
 * System.exit}, a native fault) would otherwise get its record again at every start, for ever,
 * and hold up its partition in every instance it moves to. The subscriptions count such ends per
 * record, as attempts added to those the handler failed by throwing, and dead-letter the record
 * once they reach the retry budget.
 *
 * <h2>Format</h2>
 *
 * A file of {@link #SLOTS} slots of {@link #SLOT_BYTES} bytes, mapped into memory: a worker marks
 * its slot before it calls the handler and clears it after, stores to memory which the operating
 * system keeps when the process dies (not when the machine does). A slot holds the record's key (a
 * hash of group, topic, partition and the record's timestamp), its offset, what was spent on it
 * before (attempts, and the ends among them), its state (free, in hand, or ended: counted) and the
 * time of its last end; the counts and the state are written together, in one store. On open, a
 * slot still in hand becomes ended, its attempts and ends each one higher. Each count stops at
 * {@link Spent#MAX}, which then spends any budget. {@link #close} clears the marks of handlers
 * still running (a shutdown that stopped waiting for them is not an end while handling).
 *
 * <p>Thread-safe. The file is locked while open: the spool directory it lives in belongs to one bus
 * at a time.
 */
final class HandlingJournal implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(HandlingJournal.class);

  static final int SLOTS = 4096;
  static final int SLOT_BYTES = 32;
  static final String FILE_NAME = "handling.journal";
  /** Counts whose last end is older than this are dropped on open: such a record is long gone or handled elsewhere. */
  static final Duration KEPT_FOR = Duration.ofDays(7);

  private static final int KEY = 0;
  private static final int OFFSET = 8;
  private static final int SPENT_AND_STATE = 16; // ends in the low 16 bits, attempts in the next 16, the state in the high half
  private static final int ENDED_AT = 24;

  private static final int FREE = 0;
  private static final int IN_HAND = 1;
  private static final int ENDED = 2;
  private static final long FREE_SLOT = spentAndState(Spent.NOTHING, FREE);

  private static final VarHandle LONGS =
      MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

  /** The journals open in this process, by their file: closing a second channel on a file would release the first's lock. */
  private static final Set<Path> OPEN = ConcurrentHashMap.newKeySet();

  /** A record of a partition, as the journal knows it. */
  private record Handled(long recordKey, long offset) {}

  /** A counted record: its slot and what was spent on it. */
  private record Ended(int slot, Spent spent) {}

  /**
   * What was spent on a record before: attempts of its handler (those that threw and those the
   * process ended during), and how many of them ended the process.
   */
  record Spent(int attempts, int ends) {
    static final Spent NOTHING = new Spent(0, 0);

    /** The most either count can hold in a slot: a budget above it is spent once attempts reach it. */
    static final int MAX = 0xffff;

    /** Whether these attempts spend a retry budget of {@code maxAttempts}. */
    boolean spend(int maxAttempts) {
      return attempts >= Math.min(maxAttempts, MAX);
    }

    Spent {
      if (ends < 0 || attempts < ends) {
        throw new IllegalArgumentException("attempts " + attempts + " with ends " + ends);
      }
    }
  }

  private final Path file;
  private final MappedByteBuffer map;
  private final FileChannel channel;
  private final Deque<Integer> freeSlots = new ArrayDeque<>();
  private final Set<Integer> claimedSlots = new HashSet<>();
  private final Map<Handled, Ended> ended = new ConcurrentHashMap<>();
  /** The thread whose handler has each slot's record in hand (in memory only). */
  private final Thread[] holders = new Thread[SLOTS];
  private volatile boolean closed;
  private boolean warnedFull;

  private HandlingJournal(Path file, FileChannel channel, MappedByteBuffer map, InstantSource clock) {
    this.file = file;
    this.channel = channel;
    this.map = map;
    map.order(ByteOrder.LITTLE_ENDIAN);
    long now = clock.millis();
    long oldest = now - KEPT_FOR.toMillis();
    for (int slot = 0; slot < SLOTS; slot++) {
      int at = slot * SLOT_BYTES;
      long spentAndState = map.getLong(at + SPENT_AND_STATE);
      int state = stateOf(spentAndState);
      Spent spent = spentOf(spentAndState);
      if (state == IN_HAND) { // the process ended while this record was in hand
        spent = new Spent(Math.min(spent.attempts() + 1, Spent.MAX), Math.min(spent.ends() + 1, Spent.MAX));
        map.putLong(at + ENDED_AT, now);
        LONGS.setRelease(map, at + SPENT_AND_STATE, spentAndState(spent, ENDED));
        state = ENDED;
        log.warn("the process ended while a handler had record {} of a partition in hand ({} time(s) now, {} attempt(s)"
            + " in all); it is dead-lettered once its attempts reach the retry budget",
            map.getLong(at + OFFSET), spent.ends(), spent.attempts());
      }
      if (state == ENDED && spent.ends() > 0 && map.getLong(at + ENDED_AT) >= oldest) {
        Handled record = new Handled(map.getLong(at + KEY), map.getLong(at + OFFSET));
        Ended other = ended.get(record);
        if (other == null || other.spent().attempts() < spent.attempts()) {
          ended.put(record, new Ended(slot, spent));
          if (other != null) {
            free(other.slot());
          }
          continue;
        }
      }
      if (state == FREE) {
        freeSlots.add(slot); // already so on file: not written again at every start
      } else {
        free(slot);
      }
    }
  }

  private static long spentAndState(Spent spent, int state) {
    return (spent.ends() & 0xffffL) | ((spent.attempts() & 0xffffL) << 16) | ((long) state << 32);
  }

  /** The counts a slot holds (a slot of another layout reads as consistent counts, never as an error). */
  private static Spent spentOf(long spentAndState) {
    int ends = (int) (spentAndState & 0xffff);
    int attempts = (int) ((spentAndState >>> 16) & 0xffff);
    return new Spent(Math.max(attempts, ends), ends);
  }

  private static int stateOf(long spentAndState) {
    return (int) (spentAndState >>> 32);
  }

  /**
   * Opens (or creates) the journal in the directory, and locks it until {@link #close}: the spool
   * directory it lives in is then this bus's alone.
   *
   * @throws DirectoryInUseException when another bus, in this process or another, has it open
   */
  static HandlingJournal open(Path directory, InstantSource clock) throws IOException {
    Files.createDirectories(directory);
    Path file = directory.toRealPath().resolve(FILE_NAME); // one name for the directory however it is spelt
    if (!OPEN.add(file)) { // checked before opening: a second channel's close would free the lock
      throw inUse(directory);
    }
    try {
      FileChannel channel = FileChannel.open(
          file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
      try {
        if (channel.tryLock() == null) { // another process's
          throw inUse(directory);
        }
        MappedByteBuffer map = channel.map(FileChannel.MapMode.READ_WRITE, 0, (long) SLOTS * SLOT_BYTES);
        return new HandlingJournal(file, channel, map, clock);
      } catch (IOException | RuntimeException e) {
        channel.close();
        throw e;
      }
    } catch (IOException | RuntimeException e) {
      OPEN.remove(file);
      throw e;
    }
  }

  private static DirectoryInUseException inUse(Path directory) {
    return new DirectoryInUseException("the spool directory " + directory.toAbsolutePath()
        + " is in use by another Kafka bus; each instance needs one of its own (NIS_SPOOL_DIR)");
  }

  /** The spool directory is another bus's. */
  static final class DirectoryInUseException extends IOException {
    private static final long serialVersionUID = 1L;

    DirectoryInUseException(String message) {
      super(message);
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

  /**
   * The key of a record of the partition: with its timestamp, so that a record at the same offset
   * of a topic deleted and created again is another.
   */
  static long recordKey(long partitionKey, long timestamp) {
    long mixed = (partitionKey ^ timestamp) * 0x9e3779b97f4a7c15L;
    return mixed ^ (mixed >>> 29);
  }

  /**
   * What was spent on the record when the process last ended while it was in hand: the attempts
   * then, the one it ended during included, and the ends so far ({@link Spent#NOTHING} when the
   * process never ended during one).
   */
  Spent spentOn(long recordKey, long offset) {
    if (ended.isEmpty()) {
      return Spent.NOTHING; // nearly always: no allocation, no lock
    }
    Ended counted = ended.get(new Handled(recordKey, offset));
    return counted == null ? Spent.NOTHING : counted.spent();
  }

  /**
   * A worker's slot, marked while its handler runs; -1 when every slot is taken (the worker's
   * records are then not counted, which the log says once) or the journal is closed.
   */
  synchronized int claimSlot() {
    Integer slot = closed ? null : freeSlots.poll();
    if (slot == null) {
      if (!closed && !warnedFull) {
        warnedFull = true;
        log.warn("the handling journal's {} slots are all taken; records of further partitions are not"
            + " counted when the process ends while handling them", SLOTS);
      }
      return -1;
    }
    claimedSlots.add(slot);
    return slot;
  }

  /** Gives a worker's slot back (cleared). */
  synchronized void releaseSlot(int slot) {
    if (slot >= 0 && !closed && claimedSlots.remove(slot)) {
      free(slot);
    }
  }

  /**
   * Marks the record as in hand in the worker's slot, with what was spent on it before this
   * attempt: the attempts before it (however they ended) and the ends of the process among them.
   * (Like {@link #handled}, under the journal's lock, held for a few stores: none lands after
   * close.)
   */
  synchronized void handling(int slot, long recordKey, long offset, Spent before) {
    if (slot < 0 || closed) {
      return;
    }
    int at = slot * SLOT_BYTES;
    map.putLong(at + KEY, recordKey);
    map.putLong(at + OFFSET, offset);
    map.putLong(at + ENDED_AT, 0);
    Spent kept = new Spent(Math.min(before.attempts(), Spent.MAX - 1), Math.min(before.ends(), Spent.MAX - 1));
    LONGS.setRelease(map, at + SPENT_AND_STATE, spentAndState(kept, IN_HAND)); // last: the mark
    holders[slot] = Thread.currentThread();
  }

  /** The handler returned (or threw): the slot is no longer in hand. */
  synchronized void handled(int slot) {
    if (slot >= 0 && !closed) {
      LONGS.setRelease(map, slot * SLOT_BYTES + SPENT_AND_STATE, FREE_SLOT);
      holders[slot] = null;
    }
  }

  /** The record is done with (handled or dead-lettered): what was spent on it is forgotten. */
  synchronized void settled(long recordKey, long offset) {
    Ended counted = ended.remove(new Handled(recordKey, offset));
    if (counted != null && !closed) {
      free(counted.slot());
    }
  }

  private void free(int slot) {
    LONGS.setRelease(map, slot * SLOT_BYTES + SPENT_AND_STATE, FREE_SLOT);
    freeSlots.add(slot);
  }

  /**
   * Clears the marks of handlers still running (the bus stopped waiting for them: not an end
   * while handling), except those of a handler that is ending the process ({@code System.exit},
   * whose shutdown hooks closed the bus), and unlocks the file; from now on the workers' marks
   * are not written.
   */
  @Override
  public synchronized void close() throws IOException {
    if (!closed) {
      for (int slot : claimedSlots) {
        Thread holder = holders[slot];
        if (holder == null || !isEndingTheProcess(holder)) {
          LONGS.setRelease(map, slot * SLOT_BYTES + SPENT_AND_STATE, FREE_SLOT);
        }
      }
    }
    closeLeavingMarks();
  }

  /** Whether the thread is in {@code System.exit}, waiting for the shutdown hooks. */
  private static boolean isEndingTheProcess(Thread thread) {
    for (StackTraceElement frame : thread.getStackTrace()) {
      if (frame.getClassName().equals("java.lang.Shutdown")) {
        return true;
      }
    }
    return false;
  }

  /** Unlocks the file and writes no more, marks left as they are: what the end of the process does (for tests). */
  synchronized void closeLeavingMarks() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    try {
      channel.close();
    } finally {
      OPEN.remove(file);
    }
  }
}
