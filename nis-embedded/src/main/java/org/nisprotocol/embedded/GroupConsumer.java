package org.nisprotocol.embedded;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.HandlerScope;
import org.nisprotocol.core.MessageHandler;
import org.nisprotocol.core.SubscriptionSpec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One consumer group reading one topic: a cursor and a dispatcher (a virtual thread) per
 * partition. Each dispatcher delivers its partition's entries one at a time, which keeps every
 * ordering key in order; it hands each entry to one open member of the group that accepts the
 * entry's type (members share the partitions), and advances the cursor only after the handler
 * returned, or after the entry was dead-lettered.
 */
final class GroupConsumer {
  private static final Logger log = LoggerFactory.getLogger(GroupConsumer.class);
  private static final long IDLE_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(200);

  /** The bus as the dispatchers see it. */
  interface Bus {
    /** What the bus's {@link HandlerScope}s name as their owner. */
    Object handlerOwner();

    org.nisprotocol.core.RetryPolicy retryPolicy();

    boolean stopped();

    void releasePermits(int permits);

    void deadLetter(
        PartitionLog.Entry entry,
        String topic,
        int partition,
        String group,
        Throwable error,
        int attempts);
  }

  /** A subscription's member in this group. */
  static final class Member {
    final SubscriptionSpec spec;
    final MessageHandler handler;
    volatile boolean closed;

    Member(SubscriptionSpec spec, MessageHandler handler) {
      this.spec = spec;
      this.handler = handler;
    }
  }

  final String group;
  final TopicLog topic;
  private final Bus bus;
  private final List<Member> members = new CopyOnWriteArrayList<>();
  private final long[] cursors; // cursors[p] guarded by topic.partitions[p].lock
  // Filled by the first start(), once the consumer is in the bus's map; not changed after.
  private final List<Thread> dispatchers = new CopyOnWriteArrayList<>();
  private final AtomicBoolean started = new AtomicBoolean();
  /** 1 while a partition's dispatcher has an entry in hand (handling or retrying it): close() waits for it, whether or not a member is left. */
  private final AtomicIntegerArray inHand;
  private volatile boolean retired;

  /** A group's consumer of a topic: from the oldest entry held, or from the end when {@code atEnd}. */
  GroupConsumer(String group, TopicLog topic, Bus bus, boolean atEnd) {
    this.group = group;
    this.topic = topic;
    this.bus = bus;
    this.cursors = new long[topic.partitions.length];
    this.inHand = new AtomicIntegerArray(topic.partitions.length);
    if (atEnd) {
      for (PartitionLog partition : topic.partitions) {
        partition.lock.lock();
        try {
          cursors[partition.index] = partition.endOffset();
        } finally {
          partition.lock.unlock();
        }
      }
    }
  }

  /** Starts the dispatchers, on the first call only. */
  void start() {
    if (!started.compareAndSet(false, true)) {
      return;
    }
    // All listed before any runs: a handler that closes the bus must be known as a dispatcher's.
    List<Thread> threads = new ArrayList<>();
    for (PartitionLog partition : topic.partitions) {
      threads.add(
          Thread.ofVirtual()
              .name("nis-bus-" + group + "-" + topic.name + "-" + partition.index)
              .unstarted(() -> dispatch(partition)));
    }
    dispatchers.addAll(threads);
    threads.forEach(Thread::start);
  }

  void addMember(Member member) {
    members.add(member);
    topic.signalAll();
  }

  void removeMember(Member member) {
    members.remove(member);
    topic.signalAll();
  }

  boolean hasMembers() {
    return !members.isEmpty();
  }

  /**
   * Ends the dispatchers of a group the bus has forgotten (a temporary one whose last member left):
   * each ends once the entry it may be delivering to a closing member is done.
   */
  void retire() {
    retired = true;
    topic.signalAll();
  }

  boolean isActive() {
    for (Member member : members) {
      if (!member.closed) {
        return true;
      }
    }
    return false;
  }

  /** Messages released since the last warning, and when that was: one warning per group at most every 10 s. */
  private long lostSinceWarning;
  private long lastLossWarning = System.nanoTime() - LOSS_WARNING_EVERY_NANOS;
  private static final long LOSS_WARNING_EVERY_NANOS = TimeUnit.SECONDS.toNanos(10);

  /** Messages this group, without a subscriber, had not taken and the full bus released. */
  synchronized void lost(long messages, String topicName, int partition) {
    lostSinceWarning += messages;
    long now = System.nanoTime();
    if (now - lastLossWarning >= LOSS_WARNING_EVERY_NANOS) {
      log.warn("the message bus is full: group {} has no subscriber and lost {} message(s) of {} it had not taken"
          + " (the latest from partition {})", group, lostSinceWarning, topicName, partition);
      lostSinceWarning = 0;
      lastLossWarning = now;
    }
  }

  /** Next offset to deliver in the partition. Caller holds the partition's lock. */
  long cursor(int partition) {
    return cursors[partition];
  }

  /**
   * Whether this group still has accepted entries to deliver, or an entry in hand on the partition
   * (for a member that may have closed meanwhile). Caller holds the lock.
   */
  boolean hasBacklog(PartitionLog partition) {
    return inHand.get(partition.index) != 0
        || isActive() && Math.max(cursors[partition.index], partition.baseOffset()) < partition.endOffset();
  }

  /** Whether the thread is one of this group's dispatchers (which run its handlers). */
  boolean dispatchesOn(Thread thread) {
    return dispatchers.contains(thread);
  }

  boolean dispatchersEnded() {
    return dispatchers.stream().noneMatch(Thread::isAlive);
  }

  void interruptDispatchers() {
    dispatchers.forEach(Thread::interrupt);
  }

  void joinDispatchers(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    for (Thread thread : dispatchers) {
      long left = deadline - System.nanoTime();
      if (left > 0) {
        thread.join(Duration.ofNanos(left));
      }
    }
  }

  private void dispatch(PartitionLog partition) {
    try {
      while (!bus.stopped() && !retired) {
        PartitionLog.Entry entry = nextEntry(partition);
        if (entry == null) {
          return;
        }
        try {
          if (deliver(entry, partition.index)) {
            advance(partition, entry.offset() + 1);
          }
        } finally {
          inHand.set(partition.index, 0);
          partition.signalAll(); // a close() waiting for this entry looks again
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** Waits for an entry this group can take now; null when the bus stops or the group is retired. */
  private PartitionLog.Entry nextEntry(PartitionLog partition) throws InterruptedException {
    partition.lock.lock();
    try {
      while (!bus.stopped() && !retired) {
        long cursor = Math.max(cursors[partition.index], partition.baseOffset());
        cursors[partition.index] = cursor;
        if (cursor < partition.endOffset() && isActive()) {
          // Marked under the lock the drain reads it with: from here until it is done with, the
          // entry is in this group's hands, whether or not its member closes meanwhile.
          inHand.set(partition.index, 1);
          return partition.get(cursor);
        }
        partition.await(IDLE_WAIT_NANOS);
      }
      return null;
    } finally {
      partition.lock.unlock();
    }
  }

  private void advance(PartitionLog partition, long next) {
    int freed;
    partition.lock.lock();
    try {
      cursors[partition.index] = Math.max(cursors[partition.index], next);
      freed = topic.trim(partition);
      partition.changed.signalAll();
    } finally {
      partition.lock.unlock();
    }
    bus.releasePermits(freed);
  }

  /**
   * Delivers with retries. Returns true when the entry is done (handled, skipped as a type this
   * group does not take, or dead-lettered); false when no member is open any more, so the entry
   * waits for the next one, or when the bus stopped before a retry.
   */
  private boolean deliver(PartitionLog.Entry entry, int partition) throws InterruptedException {
    var retryPolicy = bus.retryPolicy();
    for (int attempt = 1; ; attempt++) {
      Member member = pickMember(entry, partition);
      if (member == null) {
        return false; // no open member: the entry waits for one
      }
      if (member == IGNORED) {
        return true;
      }
      try {
        HandlerScope scope = HandlerScope.enter(bus.handlerOwner());
        try {
          member.handler.handle(
              new Delivery(
                  entry.message(), topic.name, partition, entry.offset(), attempt, entry.headers()));
        } finally {
          scope.close();
        }
        clearHandlersInterrupt();
        return true;
      } catch (Exception | Error e) {
        // Any Error too (OutOfMemoryError, ServiceConfigurationError...): a failed attempt, retried
        // and then dead-lettered, rather than a dispatcher gone and its partition stalled.
        if (e instanceof InterruptedException && bus.stopped()) {
          throw (InterruptedException) e; // the bus stopping this dispatcher
        }
        clearHandlersInterrupt();
        if (attempt >= retryPolicy.maxAttempts()) {
          bus.deadLetter(entry, topic.name, partition, group, e, attempt);
          return true;
        }
        log.debug(
            "group {} handler failed on {} attempt {}; retrying",
            group,
            entry.message().messageId(),
            attempt,
            e);
        if (bus.stopped()) {
          return false; // stopped after the drain's time ran out: no more attempts
        }
        Duration wait = retryPolicy.delayBefore(attempt, ThreadLocalRandom.current().nextDouble());
        if (!sleepWhileActive(wait)) {
          return false; // its last member left during the wait: the entry waits for the next one
        }
      }
    }
  }

  /** Sleeps the retry's wait in slices; false as soon as the group has no open member left. */
  private boolean sleepWhileActive(Duration wait) throws InterruptedException {
    long deadline = System.nanoTime() + wait.toNanos();
    for (long left = wait.toNanos(); left > 0; left = deadline - System.nanoTime()) {
      if (!isActive()) {
        return false;
      }
      TimeUnit.NANOSECONDS.sleep(Math.min(left, TimeUnit.MILLISECONDS.toNanos(100)));
    }
    return true; // a member that left at the very end is found by the next attempt's pick
  }

  /**
   * Clears an interrupt the handler left on this thread (its own: the bus interrupts dispatchers
   * only once it has stopped, and the dispatch loop ends on that by itself), so that it does not
   * end the dispatcher.
   */
  private void clearHandlersInterrupt() {
    // Cleared first, then the flag checked: the bus sets stopped before it interrupts, so an
    // interrupt of the bus's that this cleared is seen as stopped and set again.
    if (Thread.interrupted()) {
      if (bus.stopped()) {
        Thread.currentThread().interrupt();
      } else {
        log.debug("group {}: a handler left its thread interrupted; cleared", group);
      }
    }
  }

  private static final Member IGNORED = new Member(SubscriptionSpec.group("ignored"), d -> {});

  /**
   * An open member that takes the entry's type, spread over members by partition; {@link
   * #IGNORED} when open members exist but none takes the type; null when none is open.
   */
  private Member pickMember(PartitionLog.Entry entry, int partition) {
    List<Member> eligible = new ArrayList<>(members.size());
    boolean anyOpen = false;
    for (Member member : members) {
      if (!member.closed) {
        anyOpen = true;
        if (member.spec.accepts(entry.message().messageType())) {
          eligible.add(member);
        }
      }
    }
    if (eligible.isEmpty()) {
      return anyOpen ? IGNORED : null;
    }
    return eligible.get(partition % eligible.size());
  }
}
