package org.nisprotocol.embedded;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.ToIntFunction;
import java.util.stream.Stream;
import org.nisprotocol.core.CloseOnce;
import org.nisprotocol.core.ClosedException;
import org.nisprotocol.core.DeadLetterHeaders;
import org.nisprotocol.core.HandlerScope;
import org.nisprotocol.core.MessageBus;
import org.nisprotocol.core.MessageBusFullException;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.MessageHandler;
import org.nisprotocol.core.MessageTooLargeException;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.PublishReceipt;
import org.nisprotocol.core.RetryPolicy;
import org.nisprotocol.core.StreamingTopics;
import org.nisprotocol.core.Subscription;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.core.Utf8Text;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The in-process message bus, the default backend: no server, same contract as Kafka.
 *
 * <h2>Design</h2>
 *
 * Like Kafka, each topic is a log split into partitions by ordering key, and each consumer group
 * keeps a cursor per partition. A virtual thread per (group, topic, partition) delivers entries
 * one at a time, so each key stays in order while different keys are handled in parallel. A cursor
 * moves only after the handler returned (or the entry was dead-lettered), which makes delivery
 * at-least-once.
 *
 * <p>Memory is bounded by a count of accepted, undelivered messages ({@link
 * InMemoryMessageBusConfig#capacity()}, and the handlers' reserve below): an entry is trimmed once every group of its topic has
 * passed it. A group whose subscriptions all closed keeps its place and what it has not taken, for
 * its next subscription (an agent restarting), until the bus is full: then what only such groups
 * still hold is released, as Kafka's retention would, with a warning naming each group and what it
 * lost. A topic nobody consumes keeps its entries for the first subscriber. When the bound is
 * reached, publish waits up to the publish timeout for room, then throws {@link
 * MessageBusFullException}: nothing is dropped silently. A handler publishing (an agent answering
 * what it handles) does not wait while a reserve of another tenth of the capacity lasts: were it
 * to wait, the room it waits for, which its own message takes until it returns, would not come,
 * and the bus's backpressure would end with its message dead-lettered. The room freed next goes
 * back to the reserve first. Dead letters are never refused; each
 * partition of a dead-letter topic keeps the newest {@code capacity} of them (older ones are
 * dropped with a warning), so that a topic whose dead letters nobody reads does not grow without
 * end.
 *
 * <p>Thread-safe. Everything is lost when the process ends: use the Kafka backend for durability.
 */
public final class InMemoryMessageBus implements MessageBus {
  private static final Logger log = LoggerFactory.getLogger(InMemoryMessageBus.class);

  private final InMemoryMessageBusConfig config;
  private final CloseOnce closing;
  private final Semaphore capacity;
  /** Room only a handler's publish takes when {@link #capacity} has none: a tenth of it, at least 1. */
  private final Semaphore handlerReserve;
  /** Permits taken from the reserve and not yet given back: freed room repays them first. */
  private final AtomicInteger reserveOwed = new AtomicInteger();
  private final Map<String, TopicLog> topics = new ConcurrentHashMap<>();
  private final Map<String, GroupConsumer> consumers = new ConcurrentHashMap<>();
  /** Temporary groups forgotten whose dispatchers may not have ended yet. */
  private final List<GroupConsumer> retired = new CopyOnWriteArrayList<>();
  // Publishers hold the read lock while appending; close takes the write lock to stop them.
  private final ReentrantReadWriteLock closeLock = new ReentrantReadWriteLock();
  private volatile boolean closed;
  private volatile boolean stopped;
  /** What this bus's handler scopes name as owner: not the bus, which a thread keeping the mark would keep alive. */
  private final Object handlerOwner = new Object();
  /** Measures messages as JSON, the size a broker-backed bus limits. */
  private final MessageCodec sizer = MessageCodec.create();
  /** Messages appended so far, dead letters included: the drain's sign that handlers published. */
  private final AtomicLong appended = new AtomicLong();
  private final GroupConsumer.Bus dispatcherView = new DispatcherView();
  /** How often a publish waiting for room looks again for what groups without a subscriber hold. */
  private static final long RELEASE_RETRY_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

  private InMemoryMessageBus(InMemoryMessageBusConfig config) {
    this.config = config;
    // how long a close() waits for one begun elsewhere: the drain, then 5 s for each group's
    // dispatchers, in turn
    this.closing = new CloseOnce(config.shutdownTimeout().plusSeconds(30));
    this.capacity = new Semaphore(config.capacity());
    this.handlerReserve = new Semaphore(handlerReserveOf(config.capacity()));
  }

  /** A bus with {@link InMemoryMessageBusConfig#defaults()}. */
  public static InMemoryMessageBus create() {
    return create(InMemoryMessageBusConfig.defaults());
  }

  public static InMemoryMessageBus create(InMemoryMessageBusConfig config) {
    return new InMemoryMessageBus(Objects.requireNonNull(config, "config"));
  }

  @Override
  public String name() {
    return "embedded";
  }

  /** Room left in the handlers' reserve (for tests). */
  int handlerReserveLeft() {
    return handlerReserve.availablePermits();
  }

  /** Accepted messages not yet delivered to every group (dead letters excluded). */
  public int pending() {
    return config.capacity() - capacity.availablePermits()
        + handlerReserveOf(config.capacity()) - handlerReserve.availablePermits();
  }

  static int handlerReserveOf(int capacity) {
    return Math.max(1, capacity / 10);
  }

  @Override
  public PublishReceipt publish(NisMessage message, Map<String, String> headers) {
    Objects.requireNonNull(message, "message");
    Map<String, String> copiedHeaders = Utf8Text.requireUtf8Headers(Map.copyOf(headers));
    if (refusesPublish()) {
      throw closedError();
    }
    int bytes = sizer.encode(message).length;
    if (bytes > config.maxMessageBytes()) {
      throw MessageTooLargeException.of(message.messageId(), bytes, config.maxMessageBytes());
    }
    boolean acquired;
    try {
      acquired = capacity.tryAcquire() || tryHandlerReserve();
      // Full: what only groups without a subscriber hold is released, again while this waits (a
      // consumer moving on frees nothing such a group still holds).
      long deadline = System.nanoTime() + config.publishTimeout().toNanos();
      while (!acquired) {
        releaseHeldForAbsentGroups();
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          acquired = capacity.tryAcquire() || tryHandlerReserve(); // what the release just freed, at least
          break;
        }
        acquired = capacity.tryAcquire(Math.min(left, RELEASE_RETRY_NANOS), TimeUnit.NANOSECONDS)
            || tryHandlerReserve();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new MessageBusFullException("interrupted while waiting for room in the message bus");
    }
    if (!acquired) {
      throw new MessageBusFullException(
          "message bus is full: "
              + (HandlerScope.isWithin(handlerOwner)
                  ? config.capacity() + " accepted messages and the handlers' reserve of "
                      + handlerReserveOf(config.capacity()) + " more"
                  : config.capacity() + " accepted messages")
              + " are not yet delivered and none was delivered in "
              + config.publishTimeout()
              + "; consumers are slow or missing. Retry later, add consumers, or raise the"
              + " capacity");
    }
    closeLock.readLock().lock();
    try {
      if (refusesPublish()) {
        releaseRoom(1);
        throw closedError();
      }
      append(message.topic(), message, copiedHeaders, true);
    } finally {
      closeLock.readLock().unlock();
    }
    return new PublishReceipt(message.messageId(), message.topic(), PublishReceipt.Status.SENT);
  }

  @Override
  public Subscription subscribe(SubscriptionSpec spec, MessageHandler handler) {
    Objects.requireNonNull(handler, "handler");
    spec.validated();
    requireOpen();
    GroupConsumer.Member member = new GroupConsumer.Member(spec, handler);
    List<GroupConsumer> joined = new ArrayList<>();
    for (String topicName : spec.effectiveTopics()) {
      TopicLog topic = topic(topicName);
      // Members join and leave under the map's lock of their group: a temporary group's last
      // member leaving (which removes the group) and a new one joining it do not cross.
      GroupConsumer consumer =
          consumers.compute(
              consumerKey(spec.group(), topicName),
              (key, existing) -> {
                GroupConsumer group = existing;
                if (group == null) {
                  group = new GroupConsumer(spec.group(), topic, dispatcherView, spec.startsAtEnd());
                  topic.consumers.add(group);
                }
                group.addMember(member);
                return group;
              });
      // Started once in the map: a handler that closes the bus must find its dispatcher there.
      consumer.start();
      joined.add(consumer);
    }
    return new MemberSubscription(spec, member, joined);
  }

  /** Room from the reserve, for a handler's publish only (see the class comment). */
  private boolean tryHandlerReserve() {
    if (!HandlerScope.isWithin(handlerOwner) || !handlerReserve.tryAcquire()) {
      return false;
    }
    reserveOwed.incrementAndGet();
    return true;
  }

  /** Gives back room: to the reserve as far as it is owed, the rest to the capacity. */
  private void releaseRoom(int permits) {
    if (permits <= 0) {
      return;
    }
    int owed;
    int repaid;
    do {
      owed = reserveOwed.get();
      repaid = Math.min(owed, permits);
    } while (repaid > 0 && !reserveOwed.compareAndSet(owed, owed - repaid));
    if (repaid > 0) {
      handlerReserve.release(repaid);
    }
    if (permits > repaid) {
      capacity.release(permits - repaid);
    }
  }

  /** Offsets the group has moved past in the topic, over its partitions (for tests). */
  long taken(String group, String topic) {
    GroupConsumer consumer = consumers.get(consumerKey(group, topic));
    if (consumer == null) {
      return 0;
    }
    long taken = 0;
    for (PartitionLog partition : consumer.topic.partitions) {
      partition.lock.lock();
      try {
        taken += consumer.cursor(partition.index);
      } finally {
        partition.lock.unlock();
      }
    }
    return taken;
  }

  private static String consumerKey(String group, String topic) {
    return group + '\u0000' + topic;
  }

  /**
   * Takes a closed subscription's member out of a group; a temporary group whose last member this
   * was is forgotten, cursors and dispatchers with it, and what only it held is freed.
   */
  private void leave(GroupConsumer consumer, GroupConsumer.Member member, boolean temporary) {
    consumers.compute(
        consumerKey(consumer.group, consumer.topic.name),
        (key, current) -> {
          consumer.removeMember(member);
          if (current == consumer && temporary && !consumer.hasMembers()) {
            consumer.topic.consumers.remove(consumer);
            consumer.retire();
            retired.removeIf(GroupConsumer::dispatchersEnded);
            retired.add(consumer); // close() still waits for a handler it may be running
            freeInEachPartition(consumer.topic, consumer.topic::trim);
            return null;
          }
          return current;
        });
  }

  /** Runs a trimming step on each partition of the topic, under its lock, and gives back the room it freed. */
  private void freeInEachPartition(TopicLog topic, ToIntFunction<PartitionLog> trimming) {
    for (PartitionLog partition : topic.partitions) {
      int freed;
      partition.lock.lock();
      try {
        freed = trimming.applyAsInt(partition);
      } finally {
        partition.lock.unlock();
      }
      dispatcherView.releasePermits(freed);
    }
  }

  /** When the bus is full: frees what only groups without a subscription hold (see the class comment). */
  private void releaseHeldForAbsentGroups() {
    for (TopicLog topic : List.copyOf(topics.values())) {
      freeInEachPartition(topic, topic::release);
    }
  }

  /**
   * Stops accepting messages, waits up to the shutdown timeout for every group to consume what was
   * accepted, then stops the dispatchers. The waiting runs on a thread of its own, so an interrupt
   * of the caller does not cut it short (the caller keeps the interrupt). Called from a handler
   * (whose return the wait needs), it returns once no more messages are accepted; a later call from
   * a thread other than a dispatcher waits until closing has ended.
   */
  @Override
  public void close() {
    Thread current = Thread.currentThread();
    boolean onDispatcher = Stream.concat(consumers.values().stream(), retired.stream())
        .anyMatch(consumer -> consumer.dispatchesOn(current));
    closing.close(onDispatcher, this::stopIntake, () -> closeSteps(System.nanoTime() + config.shutdownTimeout().toNanos()));
  }

  private void stopIntake() {
    closeLock.writeLock().lock();
    try {
      closed = true;
    } finally {
      closeLock.writeLock().unlock();
    }
  }

  private void closeSteps(long deadline) {
    try {
      // Forgotten groups' dispatchers end once the handler they may be running returns; first,
      // so that the drain, which stops the bus, sees what such a handler publishes.
      for (GroupConsumer consumer : retired) {
        consumer.joinDispatchers(Duration.ofNanos(Math.max(0, deadline - System.nanoTime())));
      }
      drain(deadline);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    stopIfNothingAppendedSince(-1);
    List<GroupConsumer> all = new ArrayList<>(consumers.values());
    all.addAll(retired);
    all.forEach(GroupConsumer::interruptDispatchers);
    for (GroupConsumer consumer : all) {
      try {
        consumer.joinDispatchers(Duration.ofSeconds(5));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
  }

  /**
   * Waits until no active group has anything left to deliver, or the deadline passes, and stops the
   * bus when done. Handlers may publish meanwhile, to partitions already looked at: a pass counts
   * as clean only if nothing was appended during it.
   */
  private void drain(long deadline) throws InterruptedException {
    boolean backlog = true;
    while (backlog) {
      long appendedBefore = appended.get();
      backlog = false;
      for (TopicLog topic : List.copyOf(topics.values())) {
        for (PartitionLog partition : topic.partitions) {
          partition.lock.lock();
          try {
            while (hasBacklog(topic, partition)) {
              backlog = true;
              long left = deadline - System.nanoTime();
              if (left <= 0) {
                log.warn(
                    "message bus closed with undelivered messages on {} after the shutdown"
                        + " timeout {}",
                    topic.name,
                    config.shutdownTimeout());
                return;
              }
              partition.await(Math.min(left, TimeUnit.MILLISECONDS.toNanos(100)));
            }
          } finally {
            partition.lock.unlock();
          }
        }
      }
      backlog = backlog || !stopIfNothingAppendedSince(appendedBefore);
    }
  }

  /**
   * Stops the bus (from now on even handlers may not publish) unless a message was appended since
   * the count was taken (any count: -1). Under the write lock, which publishes hold to append: a
   * handler's publish is either in the log, and seen here, or refused.
   */
  private boolean stopIfNothingAppendedSince(long count) {
    closeLock.writeLock().lock();
    try {
      if (count >= 0 && appended.get() != count) {
        return false;
      }
      stopped = true;
      return true;
    } finally {
      closeLock.writeLock().unlock();
    }
  }

  private static boolean hasBacklog(TopicLog topic, PartitionLog partition) {
    for (GroupConsumer consumer : topic.consumers) {
      if (consumer.hasBacklog(partition)) {
        return true;
      }
    }
    return false;
  }

  private TopicLog topic(String name) {
    return topics.computeIfAbsent(name, n -> new TopicLog(n, config.partitions()));
  }

  /** Appends to the message's partition of the topic, and returns that partition. */
  private PartitionLog append(
      String topicName, NisMessage message, Map<String, String> headers, boolean holdsPermit) {
    PartitionLog partition = topic(topicName).partitionFor(message.orderingKey());
    partition.append(message, headers, holdsPermit);
    appended.incrementAndGet();
    return partition;
  }

  /**
   * Whether a publish is refused: once close() has begun, except from a handler (or a thread it
   * started) while close() still delivers: a handler that answers what it handles must be able to
   * finish.
   */
  private boolean refusesPublish() {
    if (!closed) {
      return false;
    }
    return stopped || !HandlerScope.isWithin(handlerOwner);
  }

  private void requireOpen() {
    if (closed) {
      throw closedError();
    }
  }

  private static ClosedException closedError() {
    return new ClosedException("the message bus is closed; no more messages are accepted");
  }

  private final class DispatcherView implements GroupConsumer.Bus {
    @Override
    public Object handlerOwner() {
      return handlerOwner;
    }

    @Override
    public RetryPolicy retryPolicy() {
      return config.retryPolicy();
    }

    @Override
    public boolean stopped() {
      return stopped;
    }

    @Override
    public void releasePermits(int permits) {
      releaseRoom(permits);
    }

    @Override
    public void deadLetter(
        PartitionLog.Entry entry,
        String topic,
        int partition,
        String group,
        Throwable error,
        int attempts) {
      Map<String, String> headers = new HashMap<>(entry.headers());
      headers.put(DeadLetterHeaders.ERROR, describe(error));
      headers.put(DeadLetterHeaders.ATTEMPTS, Integer.toString(attempts));
      headers.put(DeadLetterHeaders.ORIGINAL_TOPIC, topic);
      headers.put(DeadLetterHeaders.ORIGINAL_PARTITION, Integer.toString(partition));
      headers.put(DeadLetterHeaders.ORIGINAL_OFFSET, Long.toString(entry.offset()));
      headers.put(DeadLetterHeaders.GROUP, group);
      String deadLetterTopic = StreamingTopics.deadLetterTopicOf(topic);
      log.warn(
          "group {} gave up on message {} from {} after {} attempts; moved to {}: {}",
          group,
          entry.message().messageId(),
          topic,
          attempts,
          deadLetterTopic,
          headers.get(DeadLetterHeaders.ERROR));
      keepNewestDeadLetters(append(deadLetterTopic, entry.message(), Map.copyOf(headers), false));
    }

    /** Drops a dead-letter partition's oldest letters beyond the capacity, saying so. */
    private void keepNewestDeadLetters(PartitionLog partition) {
      partition.lock.lock();
      try {
        long excess = partition.endOffset() - partition.baseOffset() - config.capacity();
        if (excess > 0) {
          log.warn("{} dead letter(s) dropped from partition {} of a dead-letter topic: it keeps the newest {}"
              + " (nobody took the older ones)", excess, partition.index, config.capacity());
          // Dead letters hold no room in the bus (nothing else is published to a dead-letter topic).
          partition.trimBelow(partition.baseOffset() + excess);
        }
      } finally {
        partition.lock.unlock();
      }
    }
  }

  static String describe(Throwable error) {
    String text = error.getClass().getName() + ": " + error.getMessage();
    return text.length() <= 1000 ? text : text.substring(0, 1000);
  }

  private final class MemberSubscription implements Subscription {
    private final SubscriptionSpec spec;
    private final GroupConsumer.Member member;
    private final List<GroupConsumer> joined;
    private final AtomicBoolean closedOnce = new AtomicBoolean();

    MemberSubscription(
        SubscriptionSpec spec, GroupConsumer.Member member, List<GroupConsumer> joined) {
      this.spec = spec;
      this.member = member;
      this.joined = joined;
    }

    @Override
    public SubscriptionSpec spec() {
      return spec;
    }

    @Override
    public void close() {
      if (closedOnce.compareAndSet(false, true)) {
        member.closed = true;
        joined.forEach(consumer -> leave(consumer, member, spec.temporaryGroup()));
      }
    }
  }
}
