package org.nisprotocol.kafka;

import io.micrometer.core.instrument.Counter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongSupplier;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.FencedInstanceIdException;
import org.apache.kafka.common.errors.InterruptException;
import org.apache.kafka.common.errors.InvalidGroupIdException;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.nisprotocol.core.CloseOnce;
import org.nisprotocol.core.DeadLetterHeaders;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.HandlerScope;
import org.nisprotocol.core.InvalidMessageException;
import org.nisprotocol.core.MessageHandler;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.Subscription;
import org.nisprotocol.core.SubscriptionSpec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One member of a consumer group on Kafka.
 *
 * <h2>Design</h2>
 *
 * A platform thread owns the {@link KafkaConsumer} (which is not thread-safe) and only polls,
 * hands records to workers, pauses and resumes partitions, and commits. Each assigned partition
 * has a worker on a virtual thread that handles its records one at a time, in order, retrying a
 * failing handler with backoff; retries never block the poll loop, so heartbeats and the other
 * partitions go on. A partition whose worker has {@code partitionQueueLimit} records waiting is
 * paused, so memory stays bounded and the urgent lane is fetched at once.
 *
 * <p>A worker moves its partition's committed offset only past records that were handled, skipped
 * for their type, or dead-lettered (at-least-once). On revocation the worker finishes the record
 * in hand and the offsets are committed before the partitions move. Bytes that are not a message
 * are dead-lettered at once, and so is a record damaged on the broker (without a value).
 *
 * <p>While a record's handler fails, the commit of its partition stays at that record and carries
 * the attempts made so far in its metadata ({@code nis.attempts=N}): the member the partition
 * moves to (a rebalance, a restart) goes on counting from there, so the retry budget holds
 * across members.
 */
final class KafkaSubscription implements Subscription {
  private static final Logger log = LoggerFactory.getLogger(KafkaSubscription.class);

  private final KafkaMessageBus bus;
  private final SubscriptionSpec spec;
  private final MessageHandler handler;
  private final KafkaConsumer<byte[], byte[]> consumer;
  private final Map<TopicPartition, PartitionWorker> workers = new HashMap<>(); // poll thread only
  private final Set<Thread> workerThreads = ConcurrentHashMap.newKeySet(); // the live ones
  private final Map<TopicPartition, OffsetAndMetadata> committed = new HashMap<>(); // poll thread only
  private final AtomicInteger handlersGivenUpOn = new AtomicInteger();
  private final AtomicInteger partitionsLost = new AtomicInteger();
  private final AtomicLong lag;
  /** The group's gauge of overdue handlers, which this subscription adds its own count to. */
  private final AtomicLong overdueHandlers;
  private int overdueCounted; // poll thread only: what this subscription added to overdueHandlers
  private final CountDownLatch closedLatch = new CountDownLatch(1);
  private final Counter consumerErrors;
  private volatile boolean running = true;
  private volatile boolean draining;
  private volatile boolean assigned;
  private volatile Set<TopicPartition> assignment = Set.of(); // as of the last rebalance callback
  private volatile Thread pollThread;
  private long lastCommitNanos; // poll thread only
  private static final long COMMIT_INTERVAL_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
  /** How often a worker waiting for a handler given up on says that it still waits. */
  private static final long STILL_WAITING_EVERY_NANOS = TimeUnit.SECONDS.toNanos(30);

  KafkaSubscription(KafkaMessageBus bus, SubscriptionSpec spec, MessageHandler handler, Properties properties) {
    this.bus = bus;
    this.spec = spec;
    this.handler = handler;
    this.consumer = new KafkaConsumer<>(properties, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    this.lag = bus.metrics().lagOf(spec.group());
    this.overdueHandlers = bus.metrics().overdueHandlersOf(spec.group());
    this.consumerErrors = bus.metrics().consumerErrorsOf(spec.group());
  }

  void start() {
    pollThread = Thread.ofPlatform().name("nis-consumer-" + spec.group()).start(this::pollLoop);
  }

  /** Closes the consumer of a subscription that was never started (the bus closed meanwhile). */
  void discard() {
    consumer.close(CloseOptions.timeout(Duration.ZERO));
    closedLatch.countDown();
  }

  @Override
  public SubscriptionSpec spec() {
    return spec;
  }

  /** Whether the thread is one of the workers that run this subscription's handler. */
  boolean runsHandlerOn(Thread thread) {
    return workerThreads.contains(thread);
  }

  /** Whether partitions have been assigned to this member (it receives what is published now). */
  boolean isAssigned() {
    return assigned;
  }

  /** How many busy handlers a wait for them gave up on (a revoke's, a close's), so far (for tests). */
  int handlersGivenUpOn() {
    return handlersGivenUpOn.get();
  }

  /** How often this member found its partitions lost (its membership had expired), so far (for tests). */
  int partitionsLost() {
    return partitionsLost.get();
  }

  /** The partitions this member has workers for, as of the last rebalance (for tests). */
  Set<TopicPartition> assignment() {
    return assignment;
  }

  /** Stops at once: the record in hand is finished and committed, the rest is left for others. */
  @Override
  public void close() {
    running = false;
    consumer.wakeup();
    LockSupport.unpark(pollThread); // from a wait after an error
    // From its own handler, the delivery in progress is the caller's: it finishes after this returns.
    if (!runsHandlerOn(Thread.currentThread())) {
      awaitClosing(List.of(this), System.nanoTime() + bus.config().shutdownTimeout().toNanos());
    }
  }

  /** Consumes what is on the assigned partitions, commits, then closes. */
  void beginDrainAndClose() {
    draining = true;
    LockSupport.unpark(pollThread); // from a wait after an error
  }

  /**
   * Waits for the subscriptions to close by {@code deadlineNanos}: those still open a grace before
   * it ({@link #STOP_GRACE}, or a fifth of the time there is when that is shorter) are stopped
   * together and share the grace to finish their handlers, commit and close, so that closing ends
   * by the deadline.
   */
  static void awaitClosing(Collection<KafkaSubscription> subscriptions, long deadlineNanos) {
    long grace = Math.min(STOP_GRACE.toNanos(), KafkaMessageBus.remaining(deadlineNanos).toNanos() / 5);
    long stopAt = deadlineNanos - grace;
    for (KafkaSubscription subscription : subscriptions) {
      subscription.awaitClosedFor(KafkaMessageBus.remaining(stopAt));
    }
    subscriptions.forEach(subscription -> subscription.stopNow(deadlineNanos));
    for (KafkaSubscription subscription : subscriptions) {
      subscription.awaitClosedFor(KafkaMessageBus.remaining(deadlineNanos));
    }
  }

  /** How long before the end of the shutdown timeout a subscription still open is stopped (at most). */
  private static final Duration STOP_GRACE = Duration.ofSeconds(5);

  /**
   * Whether the subscription has closed, waiting at most {@code timeout} for it, through
   * interrupts (kept for the caller): an interrupted close() would otherwise stop busy handlers
   * early and leave their messages to be delivered again.
   */
  private boolean awaitClosedFor(Duration timeout) {
    return CloseOnce.awaitThroughInterrupts(closedLatch, timeout.toNanos());
  }

  /**
   * Ends the poll loop at its next step, drained or not (nothing if it has ended); it then waits
   * for busy handlers, commits and closes the consumer by the deadline.
   */
  private void stopNow(long deadlineNanos) {
    if (closedLatch.getCount() > 0) {
      stopDeadline = deadlineNanos;
      running = false;
      consumer.wakeup();
      LockSupport.unpark(pollThread);
    }
  }

  /** Whether the poll loop has ended and the consumer is closed. */
  boolean isClosed() {
    return closedLatch.getCount() == 0;
  }

  /** When a stopped subscription must be closed by: handlers are waited for until 2 s before. */
  private volatile long stopDeadline = Long.MAX_VALUE;

  /** The time left for a step of closing that must end {@code reserve} before the stop deadline. */
  private Duration beforeStopDeadline(Duration atMost, Duration reserve) {
    long deadline = stopDeadline;
    if (deadline == Long.MAX_VALUE) {
      return atMost;
    }
    long left = deadline - reserve.toNanos() - System.nanoTime();
    return Duration.ofNanos(Math.max(0, Math.min(atMost.toNanos(), left)));
  }

  private void pollLoop() {
    try {
      consumer.subscribe(List.copyOf(spec.effectiveTopics()), new Rebalance());
      ConsumerErrorStreak errors = new ConsumerErrorStreak(spec.group(), System::nanoTime);
      while (running) {
        try {
          if (pollOnce()) {
            break;
          }
          errors.pollSucceeded(() -> !consumer.assignment().isEmpty());
        } catch (WakeupException e) {
          // Only a close or a stop wakes the consumer, and they end the loop.
        } catch (InterruptException | InvalidGroupIdException | UnsupportedVersionException | FencedInstanceIdException e) {
          throw e; // an interrupt, or a configuration no retry mends: the subscription ends
        } catch (KafkaException e) {
          if (passedUnreadableRecord(e)) {
            continue;
          }
          // The group refused the member (full, not authorized), a commit of a drain failed, a
          // request was refused: the consumer stays usable, and the cause may pass. Tried again.
          consumerErrors.increment();
          Duration wait = errors.failed(e);
          if ((draining && workers.isEmpty()) || stoppedDuring(wait)) {
            break; // a drain with nothing of this member's own to finish, or a stop
          }
        }
      }
    } catch (InterruptException e) {
      log.warn("consumer of group {} stopped: its thread was interrupted", spec.group());
    } catch (RuntimeException e) {
      log.error("consumer of group {} stopped: {}", spec.group(), e.toString(), e);
    } finally {
      countOverdue(0); // what still runs is a given-up handler now, which the partition's next worker watches
      try {
        stopWorkers(workers.keySet());
        commitAllProgress();
      } catch (RuntimeException e) {
        log.warn("final commit of group {} failed: {}", spec.group(), e.toString());
      }
      try {
        consumer.close(CloseOptions.timeout(beforeStopDeadline(Duration.ofSeconds(5), Duration.ZERO)));
      } catch (RuntimeException e) {
        log.debug("closing consumer: {}", e.toString());
      }
      try {
        bus.forget(this);
        bus.releaseGroup(spec);
      } finally {
        closedLatch.countDown();
      }
    }
  }

  // How Kafka's consumer words the error for a record whose batch fails its checks (checksum,
  // size), under one for any record it cannot hand out (which a failed decompression also gives);
  // it names the partition only in these texts. KafkaFaultIT damages a record on disk and fails
  // should they change.
  private static final String UNREADABLE_RECORD = "Received exception when fetching the next record from ";
  private static final Pattern INVALID_RECORD =
      Pattern.compile("Record (batch )?for partition (.+) at offset \\d+ is invalid, cause: .*", Pattern.DOTALL);

  /**
   * After poll() failed because Kafka could not hand out a partition's next record (its batch
   * fails its checksum): reads that record again with a consumer of its own, since a fetch damaged
   * on its way reads right the second time. Read right, the record goes to the partition's worker;
   * damaged on the broker too, the worker dead-letters its offset, without a value (the bytes cannot
   * be trusted). Either way fetching goes on after it. False when the error is not such a record or
   * the second read told nothing in time: the error then counts as any other, and is met again on
   * the next try.
   */
  private boolean passedUnreadableRecord(KafkaException error) {
    TopicPartition partition = workers.keySet().stream()
        .filter(p -> isUnreadableRecordOf(error, p)).findFirst().orElse(null);
    if (partition == null) {
      return false;
    }
    try {
      long offset = consumer.position(partition);
      PartitionWorker worker = workers.get(partition);
      ConsumerRecord<byte[], byte[]> record;
      try {
        record = readAgain(partition, offset);
      } catch (KafkaException again) {
        if (!isUnreadableRecordOf(again, partition)) {
          throw again;
        }
        String damage = again.getCause().getMessage(); // there is one: isUnreadableRecordOf checked it
        log.error("record {} of {} is damaged on the broker ({}); group {} dead-letters it and goes on after it",
            offset, partition, damage, spec.group());
        record = new ConsumerRecord<>(partition.topic(), partition.partition(), offset, null, null);
        worker.damaged.put(offset, damage);
      }
      if (record == null) {
        return false;
      }
      worker.enqueue(List.of(record));
      consumer.seek(partition, record.offset() + 1);
      return true;
    } catch (WakeupException | InterruptException e) {
      throw e;
    } catch (RuntimeException e) {
      log.warn("group {} could not read {} again past a record Kafka could not hand out: {}", spec.group(), partition, e.toString());
      return false;
    }
  }

  /**
   * Whether the error is Kafka's for a record of the partition whose batch fails its checks
   * (damaged bytes), not any other reason it could not hand the record out (a codec that failed,
   * say, which reading again would meet as well, though the record is sound).
   */
  static boolean isUnreadableRecordOf(KafkaException error, TopicPartition partition) {
    if (error.getMessage() == null || !error.getMessage().startsWith(UNREADABLE_RECORD + partition + ". ")
        || error.getCause() == null || error.getCause().getMessage() == null) {
      return false;
    }
    var invalid = INVALID_RECORD.matcher(error.getCause().getMessage());
    return invalid.matches() && invalid.group(2).equals(partition.toString());
  }

  /**
   * The partition's record at the offset (or the first after it, if that one is gone), read by a
   * consumer of its own, outside the group; null when none came within 10 s.
   */
  private ConsumerRecord<byte[], byte[]> readAgain(TopicPartition partition, long offset) {
    try (KafkaConsumer<byte[], byte[]> reader = new KafkaConsumer<>(
        bus.rereadingConsumerProperties(spec.group()), new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      reader.assign(List.of(partition));
      reader.seek(partition, offset);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (running && System.nanoTime() < deadline) {
        List<ConsumerRecord<byte[], byte[]>> records = reader.poll(Duration.ofMillis(200)).records(partition);
        if (!records.isEmpty()) {
          return records.getFirst();
        }
      }
      return null;
    }
  }

  /**
   * Waits before the next try after an error; true when the subscription was stopped meanwhile. A
   * drain that begins during the wait ends it: the next try may be what the drain needs.
   */
  private boolean stoppedDuring(Duration wait) {
    long end = System.nanoTime() + wait.toNanos();
    boolean drainingBefore = draining;
    for (long left = wait.toNanos(); left > 0 && running && draining == drainingBefore; left = end - System.nanoTime()) {
      LockSupport.parkNanos(this, left); // close(), a stop and a drain unpark this thread
      if (Thread.currentThread().isInterrupted()) {
        throw new InterruptException("interrupted while waiting to try again");
      }
    }
    return !running;
  }

  /**
   * One round of the loop: fetches, hands records to the workers, balances fetching, commits now
   * and then. True when a drain is done and the loop ends.
   */
  private boolean pollOnce() {
    ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(50));
    for (TopicPartition partition : records.partitions()) {
      PartitionWorker worker = workers.get(partition);
      if (worker != null) {
        worker.enqueue(records.records(partition));
      }
    }
    balanceFetching();
    if (System.nanoTime() - lastCommitNanos > COMMIT_INTERVAL_NANOS) {
      commitProgress(false);
      updateLag();
      watchLongHandlers();
      lastCommitNanos = System.nanoTime();
    }
    return draining && drained();
  }

  private void balanceFetching() {
    Set<TopicPartition> paused = consumer.paused();
    int limit = bus.config().partitionQueueLimit();
    for (Map.Entry<TopicPartition, PartitionWorker> entry : workers.entrySet()) {
      int queued = entry.getValue().pending.get();
      boolean isPaused = paused.contains(entry.getKey());
      if (!isPaused && queued >= limit) {
        consumer.pause(List.of(entry.getKey()));
      } else if (isPaused && queued <= limit / 2) {
        consumer.resume(List.of(entry.getKey()));
      }
    }
  }

  /**
   * Commits the workers' progress: asynchronously only what changed since the last commit, and
   * synchronously (before partitions move or the consumer closes) all of it, since an
   * asynchronous commit still on its way may yet fail.
   */
  private void commitProgress(boolean sync) {
    Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
    for (Map.Entry<TopicPartition, PartitionWorker> entry : workers.entrySet()) {
      OffsetAndMetadata progress = entry.getValue().progress();
      if (progress != null && (sync || !progress.equals(committed.get(entry.getKey())))) {
        offsets.put(entry.getKey(), progress);
      }
    }
    if (offsets.isEmpty()) {
      return;
    }
    if (sync) {
      // Once stopped, by the stop deadline (half a second before, for the consumer's close).
      consumer.commitSync(offsets, beforeStopDeadline(Duration.ofSeconds(10), Duration.ofMillis(500)));
      committed.putAll(offsets);
    } else {
      // The callback runs on this thread, in a later poll. A failed commit is forgotten, so that
      // the next commit (at the latest the one when the partition is revoked or the subscription
      // closes) sends its offset again, even if the partition has no more progress.
      consumer.commitAsync(
          offsets,
          (done, error) -> {
            if (error != null) {
              log.debug("commit of group {} failed; it is sent again: {}", spec.group(), error.toString());
              offsets.forEach((partition, offset) -> committed.remove(partition, offset));
            }
          });
      committed.putAll(offsets);
    }
  }

  /**
   * Names each handler that has run past the long-handler warning in a warning (once more after
   * each further such time), and counts them in the group's gauge.
   */
  private void watchLongHandlers() {
    long now = System.nanoTime();
    long warnAfter = bus.config().longHandlerWarning().toNanos();
    int overdue = 0;
    for (PartitionWorker worker : workers.values()) {
      InHandler current = worker.inHandler;
      if (current == null || now - current.sinceNanos() < warnAfter) {
        continue;
      }
      overdue++;
      if (worker.warnedOf != current || now - worker.nextWarningNanos >= 0) {
        worker.warnedOf = current;
        worker.nextWarningNanos = now + warnAfter;
        log.warn("the handler of {} in group {} has run for {} s on offset {} (attempt {}); the partition's later"
                + " records wait for it, and a handler that never returns holds the partition",
            worker.partition, spec.group(), seconds(now - current.sinceNanos()),
            current.offset(), current.attempt());
      }
    }
    countOverdue(overdue);
  }

  private void countOverdue(int overdue) {
    overdueHandlers.addAndGet(overdue - overdueCounted);
    overdueCounted = overdue;
  }

  /** A time in seconds with one decimal, for the log. */
  private static String seconds(long nanos) {
    return String.format(Locale.ROOT, "%.1f", nanos / 1e9);
  }

  /** A record in its handler's hands: its offset, the attempt, and since when (System.nanoTime). */
  private record InHandler(long offset, int attempt, long sinceNanos) {}

  /**
   * Commits all the workers' progress, synchronously. A close's or a stop's wakeup that came
   * outside poll() (while a rebalance or the loop's end waited for a handler) ends the first try
   * only: what the handler finished is committed all the same.
   */
  private void commitAllProgress() {
    try {
      commitProgress(true);
    } catch (WakeupException e) {
      commitProgress(true);
    }
  }

  private void updateLag() {
    long total = 0;
    for (TopicPartition partition : workers.keySet()) {
      total += consumer.currentLag(partition).orElse(0) + workers.get(partition).pending.get();
    }
    lag.set(total);
  }

  /**
   * Everything on the assigned partitions handled, then committed. A broker too slow to answer
   * means not yet: the drain goes on until close() runs out of time and stops it.
   */
  private boolean drained() {
    if (workers.isEmpty()) {
      return !assigned || consumer.assignment().isEmpty();
    }
    try {
      Map<TopicPartition, Long> ends = consumer.endOffsets(workers.keySet(), Duration.ofSeconds(5));
      for (Map.Entry<TopicPartition, PartitionWorker> entry : workers.entrySet()) {
        if (entry.getValue().pending.get() > 0
            || consumer.position(entry.getKey(), Duration.ofSeconds(5)) < ends.getOrDefault(entry.getKey(), 0L)) {
          return false;
        }
      }
      commitProgress(true);
      return true;
    } catch (org.apache.kafka.common.errors.TimeoutException e) {
      log.debug("group {} drains on: the broker did not answer in time ({})", spec.group(), e.toString());
      return false;
    }
  }

  /**
   * Stops the partitions' workers and waits for their handlers: up to the shutdown timeout, or
   * until 2 s before the stop deadline once the subscription was stopped. A worker already waited
   * for in vain is not waited for again (consumer.close() revokes the partitions once more).
   */
  private void stopWorkers(Collection<TopicPartition> partitions) {
    List<PartitionWorker> stopping =
        partitions.stream().map(workers::get).filter(w -> w != null && !w.givenUp).toList();
    stopping.forEach(PartitionWorker::stop);
    long deadline =
        System.nanoTime() + beforeStopDeadline(bus.config().shutdownTimeout(), Duration.ofSeconds(2)).toNanos();
    // Looked at again as it waits: a stop that comes meanwhile (close() running out of time)
    // shortens the wait, so that committing and closing still end by the stop's deadline.
    LongSupplier waitUntil = () -> Math.min(deadline,
        System.nanoTime() + beforeStopDeadline(bus.config().shutdownTimeout(), Duration.ofSeconds(2)).toNanos());
    for (PartitionWorker worker : stopping) {
      worker.join(waitUntil);
    }
  }

  /**
   * Forgets a partition's worker and commit once the partition is gone. A worker that may still be
   * in a handler stays registered with the bus until its thread ends: the partition's next worker
   * in the group on this bus waits for it.
   */
  private void forgetWorker(TopicPartition partition) {
    committed.remove(partition);
    workers.remove(partition);
  }

  private final class Rebalance implements ConsumerRebalanceListener {
    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
      stopWorkers(partitions);
      try {
        commitAllProgress();
      } catch (RuntimeException e) {
        log.warn("commit on revocation failed for group {}: {}", spec.group(), e.toString());
      }
      partitions.forEach(KafkaSubscription.this::forgetWorker);
      assignment = Set.copyOf(workers.keySet());
    }

    @Override
    public void onPartitionsLost(Collection<TopicPartition> partitions) {
      List<PartitionWorker> lost = partitions.stream().map(workers::get).filter(w -> w != null).toList();
      lost.forEach(worker -> {
        worker.givenUp = true;
        worker.stop();
      });
      partitions.forEach(KafkaSubscription.this::forgetWorker);
      assignment = Set.copyOf(workers.keySet());
      partitionsLost.incrementAndGet();
    }

    @Override
    public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
      Map<TopicPartition, OffsetAndMetadata> commits = commitsOf(partitions);
      for (TopicPartition partition : partitions) {
        workers.computeIfAbsent(partition, p -> new PartitionWorker(p, FailingRecord.of(commits.get(p))));
      }
      Set<TopicPartition> all = new HashSet<>(consumer.assignment());
      assigned = !all.isEmpty();
      assignment = Set.copyOf(workers.keySet());
    }
  }

  /**
   * The group's commits on newly assigned partitions, for the attempts of failing records they
   * carry. It asks the group coordinator, on the poll thread, for up to 5 s; when that fails, the
   * counts start again.
   */
  private Map<TopicPartition, OffsetAndMetadata> commitsOf(Collection<TopicPartition> partitions) {
    if (partitions.isEmpty()) {
      return Map.of();
    }
    try {
      return consumer.committed(Set.copyOf(partitions), Duration.ofSeconds(5));
    } catch (WakeupException | InterruptException e) {
      throw e; // a close or an interrupt: the poll loop handles them
    } catch (KafkaException e) {
      log.warn("group {} could not read the attempt counts of its partitions' failing records; they start"
          + " again at 1: {}", spec.group(), e.toString());
      return Map.of();
    }
  }

  /** A record whose handler failed {@code attempts} times so far, as written to and read from a commit's metadata. */
  private record FailingRecord(long offset, int attempts) {
    private static final String PREFIX = "nis.attempts=";

    /** The failing record a commit names, or null when its metadata names none. */
    static FailingRecord of(OffsetAndMetadata commit) {
      if (commit == null || commit.metadata() == null || !commit.metadata().startsWith(PREFIX)) {
        return null;
      }
      try {
        int attempts = Integer.parseInt(commit.metadata().substring(PREFIX.length()));
        return attempts > 0 ? new FailingRecord(commit.offset(), attempts) : null;
      } catch (NumberFormatException e) {
        return null;
      }
    }

    OffsetAndMetadata toCommit() {
      return new OffsetAndMetadata(offset, PREFIX + attempts);
    }
  }

  /** Handles one partition's records in order on a virtual thread. */
  private final class PartitionWorker {
    final TopicPartition partition;
    final LinkedBlockingQueue<ConsumerRecord<byte[], byte[]>> queue = new LinkedBlockingQueue<>();
    final CountDownLatch stopSignal = new CountDownLatch(1);
    final Thread thread;
    final AtomicInteger pending = new AtomicInteger();
    volatile long completedOffset = -1;
    /** What damaged each record Kafka could not hand out, by offset: queued without a value, dead-lettered so. */
    final Map<Long, String> damaged = new ConcurrentHashMap<>();
    /** The record whose handler failed and waits to be tried again; null when there is none. */
    volatile FailingRecord failing;
    /** Attempts made by the partition's previous members on the record at its commit; or null. */
    private final FailingRecord carriedOver;
    volatile boolean stopped;
    /** Its handler outlasted a wait at shutdown, or its partition was lost: another owner has the record. */
    volatile boolean givenUp;

    /** The journal of records in hand, the key of this partition's records in it, and this worker's slot. */
    private final HandlingJournal journal = bus.journal();
    private final long journalKey;
    private final int journalSlot;
    /** Its handler ran out of memory: the slot stays marked, counted should the process end. */
    private boolean leaveMarked; // worker thread only
    /** Earlier workers of the partition in this group on this bus: this one waits for them (then forgets them). */
    private List<Thread> predecessors;
    /** The record its handler has in hand now; null between handlers. */
    volatile InHandler inHandler;
    /** The handler call the last long-handler warning named (poll thread writes, worker reads). */
    volatile InHandler warnedOf;
    /** When the long-handler warning names the same call again. */
    long nextWarningNanos; // poll thread only

    PartitionWorker(TopicPartition partition, FailingRecord carriedOver) {
      this.partition = partition;
      this.carriedOver = carriedOver;
      this.journalKey = HandlingJournal.partitionKey(spec.group(), partition.topic(), partition.partition());
      this.journalSlot = journal.claimSlot();
      this.thread =
          Thread.ofVirtual()
              .name("nis-worker-" + spec.group() + "-" + partition)
              .unstarted(this::run);
      this.predecessors = bus.registerWorker(spec.group(), partition, thread);
      workerThreads.add(thread);
      thread.start();
    }

    /**
     * What to commit: the failing record with its attempts while one is retried, else the offset
     * after the last record done with; null when nothing was done yet.
     */
    OffsetAndMetadata progress() {
      FailingRecord now = failing;
      long done = completedOffset;
      if (now != null && now.offset() >= done) {
        return now.toCommit();
      }
      return done >= 0 ? new OffsetAndMetadata(done) : null;
    }

    /** Hands records to the worker, counted as pending until it is done with each. */
    void enqueue(List<ConsumerRecord<byte[], byte[]>> records) {
      pending.addAndGet(records.size());
      queue.addAll(records);
    }

    void stop() {
      stopped = true;
      stopSignal.countDown();
    }

    /** Waits for the worker until the deadline the supplier gives (asked again every 100 ms at most). */
    void join(LongSupplier deadlineNanos) {
      try {
        while (thread.isAlive()) {
          long left = deadlineNanos.getAsLong() - System.nanoTime();
          if (left <= 0) {
            givenUp = true;
            handlersGivenUpOn.incrementAndGet();
            log.warn("handler of {} in group {} still busy at shutdown", partition, spec.group());
            return;
          }
          thread.join(Duration.ofNanos(Math.min(left, TimeUnit.MILLISECONDS.toNanos(100))));
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }

    private void run() {
      try {
        awaitPredecessors();
        while (!toStop()) {
          ConsumerRecord<byte[], byte[]> record = queue.poll(50, TimeUnit.MILLISECONDS);
          if (record == null) {
            continue;
          }
          if (toStop()) {
            return; // closed while this worker waited: the record is left for the next owner
          }
          if (!process(record)) {
            return; // stopped before it was done: left for the next owner
          }
          completedOffset = record.offset() + 1;
          failing = null; // cleared after the offset moved: progress() sees one or the other
          pending.decrementAndGet();
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      } catch (RuntimeException | Error e) {
        // Logged here, not thrown on: the thread ends either way, and the message says what follows.
        log.error("the handler thread of {} in group {} failed; the partition waits for the next rebalance",
            partition, spec.group(), e);
      } finally {
        if (!leaveMarked) {
          journal.releaseSlot(journalSlot);
        }
        workerThreads.remove(Thread.currentThread());
        bus.unregisterWorker(spec.group(), partition, Thread.currentThread());
      }
    }

    /**
     * Waits, before handling anything, for the earlier workers of the partition in this group on
     * this bus, which a rebalance, a lost partition or a close let go of while in a handler: a
     * record of theirs must not be handled again, nor a later record of the partition, while they
     * still run.
     */
    private void awaitPredecessors() throws InterruptedException {
      long waitingSince = System.nanoTime();
      // Said after a first short wait (a worker stopped while idle ends within it), then every 30 s.
      long sayAfter = TimeUnit.MILLISECONDS.toNanos(200);
      for (Thread predecessor : predecessors) {
        while (predecessor.isAlive() && !toStop()) {
          predecessor.join(Duration.ofMillis(100));
          long waited = System.nanoTime() - waitingSince;
          if (predecessor.isAlive() && waited >= sayAfter) {
            sayAfter = waited + STILL_WAITING_EVERY_NANOS;
            log.warn("{} in group {} has waited {} s for a handler of the partition left running (a rebalance or"
                    + " a close gave up on it); the partition goes on once it returns",
                partition, spec.group(), TimeUnit.NANOSECONDS.toSeconds(waited));
          }
        }
      }
      predecessors = List.of(); // not kept alive by this worker
    }

    /** Ends the handler call in hand; says so when a long-handler warning named it. */
    private void handlerReturned() {
      InHandler returned = inHandler;
      inHandler = null;
      if (returned != null && warnedOf == returned) {
        log.info("the handler of {} in group {} ended after {} s on offset {} (attempt {})", partition,
            spec.group(), seconds(System.nanoTime() - returned.sinceNanos()),
            returned.offset(), returned.attempt());
      }
    }

    /**
     * Clears an interrupt the handler left on this thread: nothing else interrupts a worker (it
     * is stopped by its flag and signal), so the interrupt was the handler's own and must not end
     * the worker's waits.
     */
    private void clearHandlersInterrupt() {
      if (Thread.interrupted()) {
        log.debug("handler of {} in group {} left its thread interrupted; cleared", partition, spec.group());
      }
    }

    /** A dead letter replayed for another group, which this one handled when it first came. */
    private boolean replayedForAnotherGroup(ConsumerRecord<byte[], byte[]> record) {
      // Another client may write the header without a value: that counts as none.
      String group = KafkaMessageBus.headerText(record, DeadLetterHeaders.REPLAYED_FOR);
      if (group == null || group.equals(spec.group())) {
        return false;
      }
      log.debug("group {} skips {}-{}@{}, a dead letter replayed for group {}",
          spec.group(), record.topic(), record.partition(), record.offset(), group);
      return true;
    }

    /** Stopped, or past a close (the poll loop stops the workers only once it has seen it). */
    private boolean toStop() {
      return stopped || !running;
    }

    /** True when the record is done with; false when stopped before that. */
    private boolean process(ConsumerRecord<byte[], byte[]> record) {
      String damage = record.value() == null ? damaged.remove(record.offset()) : null;
      if (damage != null) {
        return bus.deadLetter(record, spec.group(), "record corrupt on the broker: " + damage, 1, stopSignal);
      }
      if (replayedForAnotherGroup(record)) {
        return true;
      }
      NisMessage message;
      try {
        message = bus.codec().decode(record.value());
      } catch (InvalidMessageException e) {
        return bus.deadLetter(record, spec.group(), "undecodable message: " + e.getMessage(), 1, stopSignal);
      } catch (RuntimeException e) {
        return bus.deadLetter(record, spec.group(), "undecodable message: " + e, 1, stopSignal);
      }
      if (!spec.accepts(message.messageType())) {
        return true;
      }
      var retryPolicy = bus.config().retryPolicy();
      long recordKey = HandlingJournal.recordKey(journalKey, record.timestamp());
      HandlingJournal.Spent spent = journal.spentOn(recordKey, record.offset());
      boolean done;
      if (spent.spend(retryPolicy.maxAttempts())) {
        int attempts = Math.max(spent.attempts(), carriedOver != null && carriedOver.offset() == record.offset()
            ? carriedOver.attempts() : 0);
        done = bus.deadLetter(record, spec.group(), endsOfTheProcess(spent), attempts, stopSignal);
      } else {
        done = handle(record, message, recordKey, spent);
      }
      if (done && spent.ends() > 0) {
        journal.settled(recordKey, record.offset());
      }
      return done;
    }

    /** The error a dead letter names when the last attempts ended the process. */
    private static String endsOfTheProcess(HandlingJournal.Spent spent) {
      String failed = spent.attempts() == spent.ends() ? ""
          : "; its handler threw in the other " + (spent.attempts() - spent.ends()) + " attempt(s)";
      return "the process ended " + (spent.ends() == 1 ? "once" : spent.ends() + " times")
          + " while its handler had this message in hand (killed, or crashed: out of memory, System.exit, a native"
          + " fault)" + failed;
    }

    /**
     * Runs the handler until it succeeds or the retry budget is spent (then dead-letters); the
     * attempts the process ended during count as attempts. True when done with the record, false
     * when stopped before that.
     */
    private boolean handle(
        ConsumerRecord<byte[], byte[]> record, NisMessage message, long recordKey, HandlingJournal.Spent spent) {
      Map<String, String> headers = headersOf(record);
      var retryPolicy = bus.config().retryPolicy();
      int firstAttempt = 1;
      if (carriedOver != null && carriedOver.offset() == record.offset()) {
        // Its last attempt left to the handler, at least: the previous member may have stopped
        // before it could dead-letter the record, and a dead letter names the handler's error.
        firstAttempt = Math.min(carriedOver.attempts(), retryPolicy.maxAttempts() - 1) + 1;
      }
      firstAttempt = Math.max(firstAttempt, spent.attempts() + 1);
      for (int attempt = firstAttempt; ; attempt++) {
        try {
          bus.metrics().endToEndLatency.record(sinceSent(message, bus.clock().instant()));
          HandlerScope scope = HandlerScope.enter(bus.handlerOwner());
          try {
            journal.handling(
                journalSlot, recordKey, record.offset(), new HandlingJournal.Spent(attempt - 1, spent.ends()));
            inHandler = new InHandler(record.offset(), attempt, System.nanoTime());
            handler.handle(
                new Delivery(message, record.topic(), record.partition(), record.offset(), attempt, headers));
          } catch (OutOfMemoryError e) {
            leaveMarked = true; // the process may not last, and its end then counts; the worker stops
            throw e;
          } finally {
            if (!leaveMarked) {
              journal.handled(journalSlot);
            }
            scope.close();
            handlerReturned();
          }
          clearHandlersInterrupt();
          bus.metrics().received.increment();
          return true;
        } catch (OutOfMemoryError e) {
          throw e; // marked above: the worker stops
        } catch (Exception | Error e) {
          // Any other Error too (ServiceConfigurationError, InternalError...): a failed attempt,
          // not a worker gone and its partition stalled.
          clearHandlersInterrupt();
          bus.metrics().failed.increment();
          failing = new FailingRecord(record.offset(), attempt);
          if (attempt >= retryPolicy.maxAttempts()) {
            if (givenUp) {
              // The stop stopped waiting for it, or the partition was lost: the next owner, which
              // has the attempts in the group's commits, makes the last attempt and dead-letters.
              return false;
            }
            return bus.deadLetter(
                record, spec.group(), e.getClass().getName() + ": " + e.getMessage(), attempt, stopSignal);
          }
          bus.metrics().retried.increment();
          Duration wait = retryPolicy.delayBefore(attempt, ThreadLocalRandom.current().nextDouble());
          try {
            if (stopSignal.await(wait.toNanos(), TimeUnit.NANOSECONDS)) {
              return false;
            }
          } catch (InterruptedException interrupted) {
            Thread.currentThread().interrupt();
            return false;
          }
        }
      }
    }
  }

  /** The longest time from sending to handling that is recorded as it is: about 292 years, what a timer holds in nanoseconds. */
  private static final Duration LONGEST_RECORDED = Duration.ofNanos(Long.MAX_VALUE);

  /**
   * The time from the message's timestamp to now, as a timer takes it: a timestamp set centuries
   * away by its sender (any instant is valid) is recorded as the longest time instead of failing
   * every attempt at the message.
   */
  static Duration sinceSent(NisMessage message, Instant now) {
    Duration since = Duration.between(message.timestamp(), now).abs();
    return since.compareTo(LONGEST_RECORDED) > 0 ? LONGEST_RECORDED : since;
  }

  private static Map<String, String> headersOf(ConsumerRecord<byte[], byte[]> record) {
    Map<String, String> headers = new LinkedHashMap<>();
    for (Header header : record.headers()) {
      if (header.value() != null) {
        headers.put(header.key(), new String(header.value(), StandardCharsets.UTF_8));
      }
    }
    return headers;
  }
}
