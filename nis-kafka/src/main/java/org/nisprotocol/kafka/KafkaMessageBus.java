package org.nisprotocol.kafka;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.config.SslConfigs;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownMemberIdException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.Utils;
import org.nisprotocol.core.BackendRefusedException;
import org.nisprotocol.core.CircuitBreaker;
import org.nisprotocol.core.CloseOnce;
import org.nisprotocol.core.ClosedException;
import org.nisprotocol.core.DeadLetterHeaders;
import org.nisprotocol.core.ErrorText;
import org.nisprotocol.core.HandlerScope;
import org.nisprotocol.core.HealthCheck;
import org.nisprotocol.core.HealthStatus;
import org.nisprotocol.core.InvalidMessageException;
import org.nisprotocol.core.MessageBus;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.MessageHandler;
import org.nisprotocol.core.MessagePriority;
import org.nisprotocol.core.MessageTooLargeException;
import org.nisprotocol.core.NisException;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.PublishReceipt;
import org.nisprotocol.core.RetriableException;
import org.nisprotocol.core.StreamingTopics;
import org.nisprotocol.core.Subscription;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.core.Utf8Text;
import org.nisprotocol.core.ValidationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The message bus on Apache Kafka.
 *
 * <h2>Wire</h2>
 *
 * Each record's value is the message in the JSON wire format (UTF-8) and its key the message's
 * ordering key, so any Kafka client can read and write the topics. Transport headers (such as a
 * W3C {@code traceparent}) travel as Kafka headers.
 *
 * <h2>Publishing</h2>
 *
 * Idempotent, acks=all, batched and compressed. A publish is accepted when the broker has
 * acknowledged it ({@code sent}) or when it is safely in the local disk spool ({@code spooled}): a
 * circuit breaker guards the broker, and while it is open, or while the spool still holds older
 * messages (to keep their order), new messages go to the spool. A drainer sends the spool to Kafka
 * in order as soon as the breaker lets a probe through. The spool survives a kill -9; a full spool
 * refuses with {@link DiskSpool.SpoolFullException} (retriable).
 *
 * <p>A send that fails in a way that may pass (a timeout) stops its producers at once: what they
 * had not settled is spooled in the order it was sent, behind the failed one, and new producers
 * take over. Left running, Kafka's producer would send the later ones again without the failed
 * one, which could then land after them (see {@link ProducerPair}).
 *
 * <h2>Priority lanes</h2>
 *
 * With two or more partitions, the last partition of each topic is the urgent lane: high and
 * critical messages go there, the others are spread by key over the rest. Consumers fetch every
 * partition on its own, and stop fetching a partition whose handler is behind (pause/resume), so
 * an urgent message never waits behind a backlog of ordinary ones. Order is kept per key within a
 * lane. Urgent records have a producer of their own that sends without lingering (no wait to fill a
 * batch); every record of a partition goes through the same producer, so per-partition order holds.
 *
 * <h2>Consuming</h2>
 *
 * See {@link KafkaSubscription}: one consumer per subscription, a virtual-thread worker per
 * partition, offsets committed after the handler returned, retries with backoff without blocking
 * the poll loop, dead letters to {@code <topic>.dlt} with headers.
 *
 * <p>Thread-safe.
 */
public final class KafkaMessageBus implements MessageBus {
  private static final Logger log = LoggerFactory.getLogger(KafkaMessageBus.class);
  // Draining the spool: records and bytes of a batch, and batches sent ahead of acknowledgement.
  private static final int SPOOL_BATCH = 5_000;
  private static final long DRAIN_BATCH_BYTES = 4L * 1024 * 1024;
  private static final int DRAIN_BATCHES_ON_THE_WAY = 4;
  private static final Duration ADMIN_TIMEOUT = Duration.ofSeconds(10);

  private final KafkaBusConfig config;
  private final InstantSource clock;
  private final MessageCodec codec;
  // The producers sends go through; a new pair replaces them after a send failed in a way that
  // may pass (see ProducerPair). Replacing and closing them hold the lock.
  private volatile ProducerPair producers;
  private final ReentrantLock producersLock = new ReentrantLock();
  private final Admin admin;
  private final HandlingJournal journal;
  private final DiskSpool spool;
  private final CircuitBreaker breaker;
  private final KafkaBusMetrics metrics;
  private final Map<String, Integer> partitionCounts = new ConcurrentHashMap<>();
  private final Set<String> readyTopics = ConcurrentHashMap.newKeySet();
  private final List<KafkaSubscription> subscriptions = new CopyOnWriteArrayList<>();
  /** What the handler scopes of this bus's subscriptions name as owner (not the bus, which a thread keeping the mark would keep alive). */
  private final Object handlerOwner = new Object();
  /** Set by close() once the subscriptions are closed: from then on handlers may not publish either. */
  private volatile boolean subscriptionsClosed;
  /** Held to add a subscription and to list those close() closes. */
  private final ReentrantLock subscriptionsLock = new ReentrantLock();
  private final AtomicInteger subscriptionCount = new AtomicInteger();
  // Bytes of direct sends whose outcome is not settled yet: publishers wait for room
  // (backpressure), and spooling waits until none are left, so that a message spooled after a
  // send failed goes behind the failed one.
  private final java.util.concurrent.Semaphore inFlightBytes;
  // When Kafka last acknowledged a message: failures while acks still flow are overload, not an
  // outage, and do not count against the breaker.
  private volatile long lastAckNanos = System.nanoTime();
  private final ReentrantLock spoolLock = new ReentrantLock();
  /** Held while a line is appended to {@value #REFUSED_FILE} (by the drainer or a worker). */
  private final ReentrantLock refusedFileLock = new ReentrantLock();
  private final Condition spoolChanged = spoolLock.newCondition();
  private final Condition spoolDrained = spoolLock.newCondition();
  private final Thread drainer;
  private final Thread provisioner;
  private final CloseOnce closing;
  private volatile boolean stopDraining;
  private volatile Thread handOffThread;
  private final ExecutorService handOff =
      Executors.newSingleThreadExecutor(task -> {
        Thread thread = Thread.ofVirtual().name("nis-publish-handoff").unstarted(task);
        handOffThread = thread;
        return thread;
      });
  // Orders direct sends, so that those a retired pair of producers cut off are spooled in the
  // order they were made.
  private final AtomicLong sendSequence = new AtomicLong();
  /** The workers of each group's partitions on this bus, while their threads run (see {@link #registerWorker}). */
  private final ConcurrentHashMap<String, List<Thread>> partitionWorkers = new ConcurrentHashMap<>();
  // Marks the producers' I/O threads, as met in send callbacks. Code chained on the receipt of a
  // send Kafka settled runs there, and must not wait there for sends only that thread settles.
  private final ThreadLocal<Boolean> producerIoThread = new ThreadLocal<>();
  // Marks the threads that replace a retired pair of producers: the receipts of what it cut off
  // complete there, and a close() called from code chained on them returns at once.
  private final ThreadLocal<Boolean> replacerThread = new ThreadLocal<>();

  private KafkaMessageBus(KafkaBusConfig config, MeterRegistry registry, InstantSource clock) {
    this.config = config;
    this.closing = new CloseOnce(config.shutdownTimeout().plusSeconds(60)); // closing itself is bounded
    this.clock = clock;
    this.codec = MessageCodec.create(clock);
    try { // first: it locks the spool directory
      this.journal = HandlingJournal.open(config.spoolDirectory(), clock);
    } catch (HandlingJournal.DirectoryInUseException e) {
      throw new ValidationException(e.getMessage()); // a configuration to change, not a passing fault
    } catch (IOException e) {
      throw new NisException("cannot open the handling journal in " + config.spoolDirectory() + ": " + e, e);
    }
    try {
      this.spool = DiskSpool.open(config.spoolDirectory(), config.spoolMaxBytes(), config.spoolFsync());
    } catch (RuntimeException e) {
      closeEach(this::closeJournal);
      throw e;
    }
    this.breaker = CircuitBreaker.create("kafka-publish", config.circuitBreaker(), clock);
    this.breaker.addListener(
        t -> log.warn("Kafka publish circuit breaker {} -> {}", t.from().wireName(), t.to().wireName()));
    this.metrics = new KafkaBusMetrics(registry, spool::size, spool::sizeBytes);
    this.inFlightBytes = new java.util.concurrent.Semaphore((int) config.maxInFlightBytes());
    try {
      this.producers = newProducers();
    } catch (RuntimeException e) {
      closeEach(spool::close, this::closeJournal);
      throw e;
    }
    try {
      this.admin = Admin.create(adminProperties());
    } catch (RuntimeException e) {
      closeEach(producers::stopAndAwait, spool::close, this::closeJournal);
      throw e;
    }
    this.drainer = Thread.ofVirtual().name("nis-spool-drainer").start(this::drainSpool);
    this.provisioner = Thread.ofVirtual().name("nis-topic-provisioner").start(this::provisionTopics);
  }

  /** A bus with its meters in a private registry. */
  public static KafkaMessageBus create(KafkaBusConfig config) {
    return create(config, new SimpleMeterRegistry(), InstantSource.system());
  }

  public static KafkaMessageBus create(KafkaBusConfig config, MeterRegistry registry, InstantSource clock) {
    return new KafkaMessageBus(
        Objects.requireNonNull(config, "config"),
        Objects.requireNonNull(registry, "registry"),
        Objects.requireNonNull(clock, "clock"));
  }

  @Override
  public String name() {
    return "kafka";
  }

  /**
   * Healthy when the cluster answers a metadata request within the timeout and nothing waits in
   * the spool; degraded when it answers but the breaker is not closed or the spool holds messages;
   * unhealthy when it does not answer.
   */
  @Override
  public HealthCheck checkHealth(Duration timeout) {
    long start = System.nanoTime();
    try {
      int nodes = admin.describeCluster().nodes().get(timeout.toMillis(), TimeUnit.MILLISECONDS).size();
      Duration latency = Duration.ofNanos(System.nanoTime() - start);
      if (nodes == 0) {
        return HealthCheck.of(HealthStatus.UNHEALTHY, latency, "the cluster reports no brokers");
      }
      CircuitBreaker.State state = breaker.state();
      if (state != CircuitBreaker.State.CLOSED || !spool.isEmpty()) {
        return HealthCheck.of(
            HealthStatus.DEGRADED,
            latency,
            "publish circuit " + state.wireName() + ", " + spool.size() + " messages in the spool");
      }
      return HealthCheck.healthy(latency);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return HealthCheck.of(HealthStatus.UNKNOWN, Duration.ofNanos(System.nanoTime() - start), "interrupted");
    } catch (ExecutionException | TimeoutException e) {
      return HealthCheck.of(
          HealthStatus.UNHEALTHY,
          Duration.ofNanos(System.nanoTime() - start),
          "Kafka did not answer in " + timeout + ": " + (e.getCause() == null ? e : e.getCause()));
    }
  }

  /** Closes the publish breaker when the cluster answers, so the spool drains at once. */
  @Override
  public void recover() {
    if (breaker.state() != CircuitBreaker.State.CLOSED
        && checkHealth(Duration.ofSeconds(5)).status() != HealthStatus.UNHEALTHY) {
      breaker.reset();
    }
  }

  /** The breaker around publishing, for health reports. */
  public CircuitBreaker.State publishCircuitState() {
    return breaker.state();
  }

  /** Messages waiting in the local spool. */
  public long spooledMessages() {
    return spool.size();
  }

  /**
   * Publishes and waits for the receipt.
   *
   * @throws IllegalStateException when called from code chained on the receipt of a send Kafka
   *     settled: that runs on the producer's thread, which would have to settle the send this call
   *     waits for (use {@link #publishAsync} there)
   */
  @Override
  public PublishReceipt publish(NisMessage message, Map<String, String> headers) {
    if (onProducerIoThread()) {
      throw new IllegalStateException(
          "publish() was called on a Kafka producer's thread (code chained on a receipt), which it would wait for"
              + " forever; use publishAsync() there, or chain with an executor (thenComposeAsync)");
    }
    try {
      return publishAsync(message, headers).get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RetriableException("interrupted while publishing " + message.messageId(), e);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException runtime) {
        throw runtime;
      }
      throw new NisException("publishing " + message.messageId() + " failed", e.getCause());
    }
  }

  @Override
  public CompletableFuture<PublishReceipt> publishAsync(NisMessage message, Map<String, String> headers) {
    Objects.requireNonNull(message, "message");
    if (refusesPublish()) {
      return CompletableFuture.failedFuture(closedError());
    }
    byte[] value;
    try {
      Utf8Text.requireUtf8Headers(headers);
      value = codec.encode(message);
    } catch (InvalidMessageException e) {
      metrics.failed.increment();
      return CompletableFuture.failedFuture(e);
    }
    if (value.length > config.maxContentBytes()) {
      metrics.failed.increment();
      return CompletableFuture.failedFuture(
          MessageTooLargeException.of(message.messageId(), value.length, config.maxContentBytes()));
    }
    boolean urgent = isUrgent(message.priority());
    SpooledRecord record = new SpooledRecord(message.topic(), message.orderingKey(), value, transportHeaders(headers), urgent);
    if (onProducerIoThread()) {
      return handOff(record, message.messageId());
    }
    return publishRecord(record, message.messageId());
  }

  /**
   * The caller's headers without those the bus itself sets on dead letters and their replays
   * ({@code nis.dlt.*}, {@code nis.replayed.for}): a handler that forwards a delivery's headers
   * must not make the other groups skip its new message.
   */
  private static Map<String, String> transportHeaders(Map<String, String> headers) {
    if (headers.isEmpty()) {
      return Map.of(); // most messages: no iterator to make
    }
    for (String name : headers.keySet()) {
      if (DeadLetterHeaders.isSetByTheBus(name)) {
        Map<String, String> kept = new LinkedHashMap<>(headers);
        kept.keySet().removeIf(DeadLetterHeaders::isSetByTheBus);
        return Map.copyOf(kept);
      }
    }
    return Map.copyOf(headers); // as good as free for an immutable map
  }

  /**
   * Publishes from a producer's own thread (code chained on a receipt) on the hand-off thread:
   * waiting there for room, or for sends to settle before spooling, would wait for the very thread
   * that settles them. One thread, so that such publishes keep their order.
   */
  private CompletableFuture<PublishReceipt> handOff(SpooledRecord record, String messageId) {
    try {
      return CompletableFuture.supplyAsync(() -> publishRecord(record, messageId), handOff).thenCompose(r -> r);
    } catch (RejectedExecutionException e) {
      return CompletableFuture.failedFuture(closedError()); // close() has begun
    }
  }

  private CompletableFuture<PublishReceipt> publishRecord(SpooledRecord record, String messageId) {
    byte[] value = record.value();
    String topic = record.topic();
    ProducerPair via = producers;
    if (!spool.isEmpty() || via.retired() || !breaker.tryAcquire()) {
      return spoolAfterInFlight(record, messageId);
    }
    int taken = Math.min(value.length, (int) config.maxInFlightBytes());
    if (!acquireInFlightBytes(taken)) {
      // Nothing in flight was settled for a send timeout: this message goes behind it.
      recordTransientFailure();
      return spoolAfterInFlight(record, messageId);
    }
    if (!spool.isEmpty() || via.retired()) {
      // A send failed while this one waited for room: it goes behind it.
      inFlightBytes.release(taken);
      breaker.release();
      return spoolAfterInFlight(record, messageId);
    }
    // The bytes go back once the outcome is settled: after a failed send is in the spool
    // (spooling waits until all are back, so what is spooled later goes behind it), and before
    // the caller hears it (code chained on the receipt may publish again at once).
    CompletableFuture<PublishReceipt> result = new CompletableFuture<>();
    long sequence = sendSequence.getAndIncrement();
    long start = System.nanoTime();
    Thread caller = Thread.currentThread();
    try {
      ProducerPair.Stoppable sender = via.of(urgentLane(record.topic(), record.urgent()));
      sender.client().send(
          toProducerRecord(record),
          (metadata, error) -> {
            // send() calls back on its caller when it refuses at once, before the record is in
            boolean onItsThread = Thread.currentThread() != caller;
            if (onItsThread && producerIoThread.get() == null) {
              producerIoThread.set(Boolean.TRUE);
            }
            if (error != null && isCutOff(via, sender, error, onItsThread)) {
              cutOff(via, new CutOff(sequence, record, messageId, result, taken));
              return;
            }
            settle(result, taken, () -> error == null
                ? acknowledged(messageId, topic, start)
                : settleFailure(record, messageId, error));
          });
    } catch (RuntimeException e) {
      if (via.retired()) { // the pair stopped while this send went in
        breaker.release();
        cutOff(via, new CutOff(sequence, record, messageId, result, taken));
        return result;
      }
      // The producer refused before sending: no metadata in time, or closed (this publish
      // started before close() and lost the race).
      settle(result, taken, () -> {
        if (closing.begun()) {
          metrics.failed.increment();
          throw closedError();
        }
        return settleFailure(record, messageId, e);
      });
    }
    return result;
  }

  /**
   * Whether a publish is refused: once close() has begun, except from a handler (or a thread it
   * started) while close() still lets the subscriptions finish: a handler that answers what it
   * handles must be able to.
   */
  private boolean refusesPublish() {
    if (!closing.begun()) {
      return false;
    }
    return subscriptionsClosed || !HandlerScope.isWithin(handlerOwner);
  }

  Object handlerOwner() {
    return handlerOwner;
  }

  private boolean onProducerIoThread() {
    return producerIoThread.get() != null;
  }

  /**
   * A send a retired pair of producers cut off: the producers fail what they hold in no particular
   * order, so such sends wait in the pair until both producers have stopped, and are then spooled
   * in the order they were made.
   */
  record CutOff(
      long sequence, SpooledRecord record, String messageId, CompletableFuture<PublishReceipt> result, int taken) {}

  /**
   * Whether a failed send is cut off by the retirement of its pair of producers. A failure that
   * may pass, met on the producer's own thread, retires the pair (see {@link ProducerPair}); once
   * it is retired, the failures its stopping causes (a plain {@link KafkaException}) are cut-offs
   * too. A refusal (too large, not authorized) is not: the caller hears it.
   */
  private boolean isCutOff(ProducerPair via, ProducerPair.Stoppable sender, Throwable error, boolean onItsThread) {
    if (onItsThread && isTransient(error)) {
      if (error instanceof org.apache.kafka.common.errors.OutOfOrderSequenceException) {
        log.warn("Kafka reports a broken idempotent sequence ({}): a broker may have lost records it had"
            + " acknowledged (e.g. after an unclean leader election). This message is spooled and new producers take over",
            error.toString());
      }
      recordTransientFailure();
      retireAfterFailure(via, sender);
      return true;
    }
    if (via.retired() && (error.getClass() == KafkaException.class || isTransient(error))) {
      breaker.release(); // says nothing of the broker's health
      return true;
    }
    return false;
  }

  /**
   * After a send failed on its producer's own thread for a reason that may pass: stops that
   * producer before its next round, and retires the pair (once), which a new one replaces.
   */
  private void retireAfterFailure(ProducerPair via, ProducerPair.Stoppable sender) {
    // Retired first: a send that finds the producer closed then finds the pair retired too.
    boolean first = via.retire();
    sender.stopFromItsThread();
    if (first) {
      Thread.ofVirtual().name("nis-producer-replacer").start(() -> replace(via));
    }
  }

  /** Keeps a cut-off send for the spooling of its pair's cut-offs, or spools it now when that has run. */
  private void cutOff(ProducerPair via, CutOff cutOff) {
    if (via.park(cutOff)) {
      return;
    }
    settle(cutOff.result(), cutOff.taken(), () -> {
      try {
        appendToSpool(cutOff.record());
      } catch (RuntimeException e) {
        metrics.failed.increment();
        if (closing.begun()) {
          throw new ClosedException("the message bus closed before Kafka settled message "
              + cutOff.messageId() + "; it was not accepted");
        }
        throw e;
      }
      return new PublishReceipt(cutOff.messageId(), cutOff.record().topic(), PublishReceipt.Status.SPOOLED);
    });
  }

  /**
   * Replaces a retired pair: stops it, spools what it cut off, then makes a new pair (trying
   * again each second while that fails), unless the bus is closing.
   */
  private void replace(ProducerPair retired) {
    replacerThread.set(Boolean.TRUE);
    log.warn("a send to Kafka failed: its producers stop, what they had not settled goes to the spool in the"
        + " order it was sent, and new producers take over");
    Runnable completeReceipts = holdingProducersLock(() -> stopAndSpoolCutOffs(retired));
    // The new pair before the receipts: code chained on them may publish and wait for room.
    boolean replaced = holdingProducersLock(() -> tryToReplace(retired));
    completeReceipts.run();
    while (!replaced) {
      sleepQuietly(Duration.ofSeconds(1));
      replaced = holdingProducersLock(() -> tryToReplace(retired));
    }
  }

  private <T> T holdingProducersLock(Supplier<T> action) {
    producersLock.lock();
    try {
      return action.get();
    } finally {
      producersLock.unlock();
    }
  }

  /** Stops a retired pair and spools what it cut off; returns what completes their receipts. */
  private Runnable stopAndSpoolCutOffs(ProducerPair retired) {
    retired.stopAndAwait(); // never throws
    return spoolCutOffs(retired);
  }

  /** Installs a new pair in place of a retired one; true when done or no longer needed (closing). */
  private boolean tryToReplace(ProducerPair retired) {
    if (closing.begun() || producers != retired) {
      return true;
    }
    try {
      producers = newProducers();
      return true;
    } catch (RuntimeException e) {
      log.warn("cannot create Kafka producers yet ({}); trying again in a second", e.toString());
      return false;
    }
  }

  /**
   * Spools the sends a retired pair cut off, in the order they were made, with one flush to the
   * device for all; from the first that does not fit on, they fail (a later message of a key must
   * not be spooled ahead of an earlier one the caller will send again). Gives back their in-flight
   * bytes; returns what completes their receipts, to be run without the producers' lock (code
   * chained on a receipt may publish, or close the bus).
   */
  private Runnable spoolCutOffs(ProducerPair pair) {
    List<CutOff> parked = pair.takeCutOffs();
    if (parked.isEmpty()) {
      return () -> {};
    }
    parked.sort(Comparator.comparingLong(CutOff::sequence));
    log.warn("{} sends Kafka did not settle go to the spool", parked.size());
    int written = 0;
    RuntimeException failure = null;
    try {
      for (CutOff cutOff : parked) {
        spool.appendUnforced(cutOff.record().toBytes());
        written++;
      }
    } catch (RuntimeException e) {
      failure = e;
    }
    try {
      spool.force();
    } catch (RuntimeException e) {
      failure = e;
      written = 0; // not durable as configured: none counts as accepted
    }
    metrics.spooled.increment(written);
    signalSpoolChanged();
    parked.forEach(cutOff -> inFlightBytes.release(cutOff.taken()));
    int durable = written;
    RuntimeException error = failure;
    return () -> {
      for (int i = 0; i < parked.size(); i++) {
        CutOff cutOff = parked.get(i);
        if (i < durable) {
          cutOff.result().complete(
              new PublishReceipt(cutOff.messageId(), cutOff.record().topic(), PublishReceipt.Status.SPOOLED));
        } else {
          metrics.failed.increment();
          cutOff.result().completeExceptionally(error);
        }
      }
    };
  }

  /** A new pair of producers: the urgent lane's without lingering, or the same one when lingering is off. */
  private ProducerPair newProducers() {
    Properties properties = producerProperties();
    KafkaProducer<byte[], byte[]> normal = new KafkaProducer<>(properties, new ByteArraySerializer(), new ByteArraySerializer());
    if ("0".equals(String.valueOf(properties.get(ProducerConfig.LINGER_MS_CONFIG)).trim())) {
      return new ProducerPair(normal, normal);
    }
    try {
      return new ProducerPair(
          normal, new KafkaProducer<>(urgentProducerProperties(), new ByteArraySerializer(), new ByteArraySerializer()));
    } catch (RuntimeException e) {
      normal.close(Duration.ZERO);
      throw e;
    }
  }

  /** Takes the outcome, gives back the send's in-flight bytes, then completes the caller's receipt. */
  private void settle(CompletableFuture<PublishReceipt> result, int taken, Supplier<PublishReceipt> outcome) {
    PublishReceipt receipt = null;
    RuntimeException failure = null;
    try {
      receipt = outcome.get();
    } catch (RuntimeException e) {
      failure = e;
    } finally {
      inFlightBytes.release(taken);
    }
    if (failure != null) {
      result.completeExceptionally(failure);
    } else {
      result.complete(receipt);
    }
  }

  private PublishReceipt acknowledged(String messageId, String topic, long startNanos) {
    long now = System.nanoTime();
    lastAckNanos = now;
    breaker.onSuccess();
    metrics.sent.increment();
    metrics.sendLatency.record(now - startNanos, TimeUnit.NANOSECONDS);
    return new PublishReceipt(messageId, topic, PublishReceipt.Status.SENT);
  }

  private boolean acquireInFlightBytes(int permits) {
    try {
      return inFlightBytes.tryAcquire(permits, config.sendTimeout().toNanos(), TimeUnit.NANOSECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  /**
   * A transient send failure counts against the breaker only when Kafka has acknowledged nothing
   * for a send timeout: failures while acknowledgements still flow are overload, not an outage.
   */
  private void recordTransientFailure() {
    if (System.nanoTime() - lastAckNanos > config.sendTimeout().toNanos()) {
      breaker.onFailure();
    } else {
      breaker.release();
    }
  }

  /**
   * Settles a failed send: a transient failure puts the message in the spool and returns its
   * receipt; any other failure is thrown as the error the caller hears.
   */
  private PublishReceipt settleFailure(SpooledRecord record, String messageId, Throwable error) {
    if (isTransient(error)) {
      recordTransientFailure();
      log.debug("send to {} failed ({}); spooling", record.topic(), error.toString());
      try {
        appendToSpool(record);
      } catch (RuntimeException e) {
        metrics.failed.increment();
        throw e;
      }
      return new PublishReceipt(messageId, record.topic(), PublishReceipt.Status.SPOOLED);
    }
    breaker.onSuccess(); // the broker answered: it is reachable
    metrics.failed.increment();
    if (error instanceof RecordTooLargeException) {
      throw new MessageTooLargeException("Kafka refused the message as too large: " + error.getMessage());
    }
    if (error instanceof BackendRefusedException refused) {
      throw refused; // the bus's own words already (a topic Kafka refuses to create)
    }
    if (error instanceof org.apache.kafka.common.errors.ApiException) { // an answer of Kafka's
      throw new BackendRefusedException("Kafka refused the message: " + error, error);
    }
    throw new NisException("publishing to Kafka failed: " + error, error);
  }

  /**
   * Whether a send failure may pass, so that the message is spooled rather than refused. Besides
   * Kafka's retriable errors, a broken idempotent sequence (out of order, unknown producer id, an
   * invalid epoch): the record was not written, and new producers (a retired pair) start clean.
   */
  static boolean isTransient(Throwable error) {
    return error instanceof org.apache.kafka.common.errors.RetriableException
        || error instanceof org.apache.kafka.common.errors.OutOfOrderSequenceException
        || error instanceof org.apache.kafka.common.errors.InvalidProducerEpochException
        || error instanceof org.apache.kafka.common.errors.TimeoutException
        || error instanceof org.apache.kafka.common.errors.InterruptException
        || error instanceof RetriableException
        || (error instanceof KafkaException && error.getCause() instanceof java.io.IOException);
  }

  private CompletableFuture<PublishReceipt> spoolAfterInFlight(SpooledRecord record, String messageId) {
    try {
      awaitNoInFlight(config.sendTimeout().plusSeconds(5));
      awaitSpoolRoom();
      appendToSpool(record);
      return CompletableFuture.completedFuture(
          new PublishReceipt(messageId, record.topic(), PublishReceipt.Status.SPOOLED));
    } catch (RuntimeException e) {
      metrics.failed.increment();
      return CompletableFuture.failedFuture(e);
    }
  }

  private void appendToSpool(SpooledRecord record) {
    spool.append(record.toBytes());
    metrics.spooled.increment();
    signalSpoolChanged();
  }

  private void signalSpoolChanged() {
    spoolLock.lock();
    try {
      spoolChanged.signalAll();
    } finally {
      spoolLock.unlock();
    }
  }

  private ProducerRecord<byte[], byte[]> toProducerRecord(SpooledRecord record) {
    byte[] key = record.key().getBytes(StandardCharsets.UTF_8);
    return new ProducerRecord<>(
        record.topic(), partitionOf(record.topic(), key, record.urgent()), key, record.value(), kafkaHeaders(record));
  }

  /** A spooled record's headers as Kafka's (UTF-8 values). */
  private static RecordHeaders kafkaHeaders(SpooledRecord record) {
    RecordHeaders headers = new RecordHeaders();
    record.headers().forEach((name, value) -> addText(headers, name, value));
    return headers;
  }

  /**
   * The partition of a record: the last one (the urgent lane) for high and critical messages, one
   * of the others by the key's hash for the rest (a record without a key: any of them).
   */
  private int partitionOf(String topic, byte[] key, boolean urgent) {
    return laneAwarePartition(partitionCount(topic), key, urgent);
  }

  /** The rule of {@link #partitionOf} for a topic of {@code partitions} partitions. */
  static int laneAwarePartition(int partitions, byte[] key, boolean urgent) {
    if (partitions < 2) {
      return 0;
    }
    if (urgent) {
      return partitions - 1;
    }
    return key == null
        ? ThreadLocalRandom.current().nextInt(partitions - 1)
        : Utils.toPositive(Utils.murmur2(key)) % (partitions - 1);
  }

  /** Whether a record goes on the urgent lane (the last partition), which has a producer of its own. */
  private boolean urgentLane(String topic, boolean urgent) {
    return urgent && partitionCount(topic) >= 2;
  }

  /** Whether a record's value is a high or critical message (bytes that are not a message are not). */
  private boolean isUrgent(byte[] value) {
    try {
      return isUrgent(codec.decode(value).priority());
    } catch (RuntimeException notAMessage) {
      return false;
    }
  }

  /** High and critical messages take the urgent lane. */
  private static boolean isUrgent(MessagePriority priority) {
    return priority == MessagePriority.HIGH || priority == MessagePriority.CRITICAL;
  }

  /** The topic's partition count; the first call for a topic creates it if needed. */
  private int partitionCount(String topic) {
    Integer known = partitionCounts.get(topic);
    if (known != null) {
      return known;
    }
    ensureTopic(topic);
    ProducerPair via = producers;
    int count;
    try {
      count = via.of(false).client().partitionsFor(topic).size();
      if (count >= 2 && via.of(true) != via.of(false)) {
        via.of(true).client().partitionsFor(topic); // its first urgent send does not wait for metadata
      }
    } catch (IllegalStateException closed) {
      throw new RetriableException("the Kafka producers are being replaced after a failed send; try again", closed);
    }
    partitionCounts.put(topic, count);
    return count;
  }

  /**
   * Creates the topic if it does not exist yet and waits for its leaders; once per topic per bus
   * (again only if Kafka did not answer).
   */
  void ensureTopic(String topic) {
    if (readyTopics.contains(topic)) {
      return;
    }
    NewTopic newTopic = new NewTopic(topic, config.topicPartitions(), config.replicationFactor());
    config.minInsyncReplicas().ifPresent(
        min -> newTopic.configs(Map.of("min.insync.replicas", Integer.toString(min))));
    try {
      try {
        admin.createTopics(List.of(newTopic)).all().get(ADMIN_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
      } catch (ExecutionException e) {
        Throwable cause = e.getCause();
        // A topic created beforehand where the service may not create topics (ACLs) is refused
        // as not authorized even though it exists; another thread or instance may have created
        // it a moment ago (its leaders may not serve yet).
        if (cause instanceof org.apache.kafka.common.errors.RetriableException) {
          throw new RetriableException("cannot create topic " + topic + " yet: " + cause, cause);
        }
        if (!(cause instanceof TopicExistsException) && !exists(topic)) {
          throw new TopicRefusedException("Kafka refused to create topic " + topic + ": " + cause.getMessage()
              + (cause instanceof org.apache.kafka.common.errors.TopicAuthorizationException
                  || cause instanceof org.apache.kafka.common.errors.ClusterAuthorizationException
                      ? " (let the service create topics, or create this one beforehand)" : ""),
              cause);
        }
      }
      awaitLeaders(topic);
      readyTopics.add(topic);
    } catch (TimeoutException e) {
      throw new RetriableException("Kafka did not answer in " + ADMIN_TIMEOUT + " when creating topic " + topic, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RetriableException("interrupted while creating topic " + topic, e);
    }
  }

  /**
   * Whether the topic exists; false also when the service may not describe it (then it cannot
   * tell).
   */
  private boolean exists(String topic) throws InterruptedException, TimeoutException {
    try {
      admin.describeTopics(List.of(topic)).allTopicNames().get(ADMIN_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
      return true;
    } catch (ExecutionException e) {
      if (e.getCause() instanceof org.apache.kafka.common.errors.UnknownTopicOrPartitionException
          || e.getCause() instanceof org.apache.kafka.common.errors.TopicAuthorizationException) {
        return false;
      }
      throw new RetriableException("cannot tell whether topic " + topic + " exists: " + e.getCause(), e.getCause());
    }
  }

  /**
   * Kafka refuses to create a topic, in a way that trying again does not mend (not authorized, a
   * replication factor above the brokers there are, a topic policy): messages for it are refused,
   * not spooled.
   */
  static final class TopicRefusedException extends BackendRefusedException {
    private static final long serialVersionUID = 1L;

    TopicRefusedException(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /**
   * Waits (within the admin timeout) until every partition of a topic that may be new has a
   * leader that serves it: described with a leader, then answering a request for its end offset
   * (a leader named in the metadata may not have taken the partition over yet). The first sends
   * to it then find their partitions ready instead of failing and retrying, which with an
   * idempotent producer can hold a partition's sends up to the delivery timeout. Best effort:
   * when the time is up, sends retry as they would have.
   */
  private void awaitLeaders(String topic) throws InterruptedException {
    long deadline = System.nanoTime() + ADMIN_TIMEOUT.toNanos();
    TopicDescription described = null;
    while (described == null && System.nanoTime() < deadline) {
      try {
        TopicDescription description =
            admin.describeTopics(List.of(topic)).allTopicNames()
                .get(Math.max(1, remaining(deadline).toMillis()), TimeUnit.MILLISECONDS)
                .get(topic);
        if (description.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty())) {
          described = description;
        }
      } catch (ExecutionException | TimeoutException e) {
        log.debug("topic {} not described yet: {}", topic, e.toString());
      }
      if (described == null) {
        Thread.sleep(50);
      }
    }
    if (described == null) {
      log.debug("partitions of {} still without a leader after {}; sends will retry", topic, ADMIN_TIMEOUT);
      return;
    }
    Map<TopicPartition, OffsetSpec> ends = new HashMap<>();
    described.partitions().forEach(p -> ends.put(new TopicPartition(topic, p.partition()), OffsetSpec.latest()));
    try {
      admin.listOffsets(ends).all().get(Math.max(1, remaining(deadline).toMillis()), TimeUnit.MILLISECONDS);
    } catch (ExecutionException | TimeoutException e) {
      log.debug("leaders of {} not serving yet: {}; sends will retry", topic, e.toString());
    }
  }

  private void provisionTopics() {
    List<String> missing = new ArrayList<>(StreamingTopics.all());
    while (!missing.isEmpty() && !closing.begun()) {
      for (String topic : List.copyOf(missing)) {
        try {
          partitionCount(topic);
          missing.remove(topic);
        } catch (RuntimeException e) {
          log.debug("topic {} not provisioned yet: {}", topic, e.toString());
        }
      }
      if (!missing.isEmpty()) {
        sleepQuietly(Duration.ofSeconds(2));
      }
    }
  }

  // ---- the spool drainer ----

  /** Spooled records sent to Kafka together, and their acknowledgements. */
  private record SpoolBatch(
      List<DiskSpool.Entry> entries, List<CompletableFuture<RecordMetadata>> acks, ProducerPair via) {
    DiskSpool.Entry last() {
      return entries.getLast();
    }
  }

  /**
   * Sends the spool to Kafka in order. Several batches are on their way at once (the next is read
   * and sent while Kafka acknowledges the ones before), so that a spool filled during an outage
   * drains at about the producer's own speed; each is removed from the spool once it and every
   * batch before it are acknowledged. When a batch fails, the ones behind it are waited out and the
   * spool is resent from its oldest record (at-least-once: some may reach Kafka twice).
   */
  private void drainSpool() {
    Deque<SpoolBatch> onTheWay = new ArrayDeque<>();
    while (!stopDraining) {
      try {
        sendMoreFromSpool(onTheWay);
        SpoolBatch oldest = onTheWay.poll();
        if (oldest == null) {
          awaitSpoolChange(Duration.ofMillis(spool.isEmpty() ? 200 : 100));
          continue;
        }
        // The batch's records are done with, from its start, while Kafka took them or refused
        // them for good (those are set aside); the first that failed otherwise stops it.
        List<Throwable> outcomes = awaitOutcomes(oldest);
        int done = 0;
        int delivered = 0;
        boolean stopped = false;
        for (; done < outcomes.size(); done++) {
          Throwable outcome = outcomes.get(done);
          if (outcome == null) {
            delivered++;
          } else if (!(isRefusedForGood(outcome) && setAside(oldest.entries().get(done), outcome))) {
            stopped = true;
            break;
          }
        }
        if (done > 0) {
          if (delivered > 0) {
            lastAckNanos = System.nanoTime();
          }
          spool.acknowledge(oldest.entries().subList(0, done));
          metrics.sent.increment(delivered);
          signalSpoolDrained();
        }
        if (!stopped) {
          breaker.onSuccess(); // Kafka answered each
          if (done < oldest.entries().size()) {
            // Records left unsent (one before them was refused before sending): batches sent
            // behind them are waited out, and all is sent again from the spool.
            abandon(onTheWay);
          }
        } else {
          recordTransientFailure();
          abandon(onTheWay);
          sleepQuietly(Duration.ofMillis(200));
        }
      } catch (RuntimeException e) {
        log.warn("spool drainer: {}", e.toString());
        recordTransientFailure();
        abandon(onTheWay);
        sleepQuietly(Duration.ofMillis(500));
      }
    }
    abandon(onTheWay);
  }

  /** Reads and sends spooled batches until enough are on their way, the spool has no more, or the breaker says wait. */
  private void sendMoreFromSpool(Deque<SpoolBatch> onTheWay) {
    long batchBytes = Math.max(64 * 1024, Math.min(DRAIN_BATCH_BYTES, config.maxInFlightBytes() / DRAIN_BATCHES_ON_THE_WAY));
    ProducerPair via = producers;
    if (via.retired() || (!onTheWay.isEmpty() && onTheWay.peekLast().via() != via)) {
      // What a retired pair cut off is being spooled, or batches sent through it are still to be
      // waited out (one of them failed): a batch behind them must not go ahead of their resending.
      return;
    }
    while (onTheWay.size() < DRAIN_BATCHES_ON_THE_WAY && !spool.isEmpty()) {
      List<DiskSpool.Entry> entries =
          onTheWay.isEmpty()
              ? spool.peek(SPOOL_BATCH, batchBytes)
              : spool.peekAfter(onTheWay.peekLast().last(), SPOOL_BATCH, batchBytes);
      if (entries.isEmpty() || !breaker.tryAcquire()) {
        return;
      }
      SpoolBatch batch = new SpoolBatch(entries, send(via, entries), via);
      onTheWay.add(batch);
      if (batch.acks().getLast().isCompletedExceptionally()) {
        return; // refused before sending (no topic, no metadata): the rest would be too
      }
    }
  }

  /** Sends spooled records in order; stops at the first refused before sending (the rest would be too). */
  private List<CompletableFuture<RecordMetadata>> send(ProducerPair via, List<DiskSpool.Entry> entries) {
    List<CompletableFuture<RecordMetadata>> acks = new ArrayList<>(entries.size());
    for (DiskSpool.Entry entry : entries) {
      CompletableFuture<RecordMetadata> ack;
      try {
        SpooledRecord record = SpooledRecord.fromBytes(entry.payload());
        ack = send(via, urgentLane(record.topic(), record.urgent()), toProducerRecord(record));
      } catch (RuntimeException e) {
        ack = CompletableFuture.failedFuture(e);
      }
      acks.add(ack);
      if (ack.isCompletedExceptionally()) {
        break;
      }
    }
    return acks;
  }

  /**
   * Sends a record through a pair of producers; a failure that may pass, met on the producer's
   * own thread, retires the pair (see {@link ProducerPair}).
   */
  private CompletableFuture<RecordMetadata> send(ProducerPair via, boolean urgentLane, ProducerRecord<byte[], byte[]> record) {
    ProducerPair.Stoppable sender = via.of(urgentLane);
    CompletableFuture<RecordMetadata> ack = new CompletableFuture<>();
    Thread caller = Thread.currentThread();
    try {
      sender.client().send(record, (metadata, error) -> {
        if (error == null) {
          ack.complete(metadata);
          return;
        }
        if (Thread.currentThread() != caller && isTransient(error)) {
          retireAfterFailure(via, sender);
        }
        ack.completeExceptionally(error);
      });
    } catch (RuntimeException e) {
      ack.completeExceptionally(e);
    }
    return ack;
  }

  /**
   * Waits for the outcome of each record of the batch that was sent (within a send timeout and a
   * margin): null where Kafka acknowledged it, else why it failed (a wait that ran out, or an
   * interrupt, as a TimeoutException).
   */
  private List<Throwable> awaitOutcomes(SpoolBatch batch) {
    long deadline = System.nanoTime() + config.sendTimeout().plusSeconds(5).toNanos();
    List<Throwable> outcomes = new ArrayList<>(batch.acks().size());
    boolean logged = false;
    for (CompletableFuture<RecordMetadata> ack : batch.acks()) {
      Throwable outcome = null;
      try {
        ack.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) { // the next ones' outcome: theirs if settled, else this
        Thread.currentThread().interrupt();
        outcome = new TimeoutException("interrupted before the outcome came");
      } catch (ExecutionException e) {
        outcome = e.getCause();
      } catch (TimeoutException e) {
        outcome = e;
      }
      if (outcome != null && !logged) {
        log.debug("spooled message not delivered yet: {}", outcome.toString());
        logged = true;
      }
      outcomes.add(outcome);
    }
    return outcomes;
  }

  /**
   * Whether Kafka refuses a record for good, so that sending it again would fail again: too large
   * for its topic, a topic the service may not write or create, a record the topic does not take
   * (a compacted topic and no key).
   */
  static boolean isRefusedForGood(Throwable error) {
    // A replication factor above the brokers there are may be a broker restarting (a rolling
    // restart): the spooled message waits for it, as for an outage.
    return (error instanceof TopicRefusedException
            && !(error.getCause() instanceof org.apache.kafka.common.errors.InvalidReplicationFactorException))
        || error instanceof RecordTooLargeException
        || error instanceof org.apache.kafka.common.errors.RecordBatchTooLargeException
        || error instanceof org.apache.kafka.common.errors.InvalidTopicException
        || error instanceof org.apache.kafka.common.InvalidRecordException
        || error instanceof org.apache.kafka.common.errors.TopicAuthorizationException
        || error instanceof SpooledRecord.UnreadableException; // not Kafka's refusal, but as final
  }

  /**
   * The headers every dead letter carries, added to {@code headers}: the error (its first 1000
   * characters), the attempts made and the original topic.
   */
  private static RecordHeaders deadLetterHeaders(RecordHeaders headers, String error, int attempts, String originalTopic) {
    addText(headers, DeadLetterHeaders.ERROR, error.length() <= 1000 ? error : error.substring(0, 1000));
    addText(headers, DeadLetterHeaders.ATTEMPTS, Integer.toString(attempts));
    addText(headers, DeadLetterHeaders.ORIGINAL_TOPIC, originalTopic);
    return headers;
  }

  private static void addText(RecordHeaders headers, String name, String value) {
    headers.add(name, value.getBytes(StandardCharsets.UTF_8));
  }

  /**
   * Sends a record on the lane and partition the bus gives it, and waits until Kafka has it
   * (within a send timeout and a margin).
   */
  private void sendAndWait(String topic, byte[] key, byte[] value, RecordHeaders headers, boolean urgent)
      throws InterruptedException, ExecutionException, TimeoutException {
    send(producers, urgentLane(topic, urgent), new ProducerRecord<>(topic, partitionOf(topic, key, urgent), key, value, headers))
        .get(config.sendTimeout().toMillis() + 5_000, TimeUnit.MILLISECONDS);
  }

  /** Where spooled messages go that Kafka refused for good, and their dead-letter topics too. */
  static final String REFUSED_FILE = "refused-messages.jsonl";

  /**
   * Takes a spooled message Kafka refuses for good out of the way of the rest: to its topic's
   * dead-letter topic, with headers naming the error and its topic; where that is refused for
   * good too, to the file {@value #REFUSED_FILE} in the spool directory, one JSON object a line.
   * True once it is in either; false when the dead-letter write failed in a way that may pass, or
   * the file could not be written (the message stays in the spool and is tried again).
   */
  private boolean setAside(DiskSpool.Entry entry, Throwable refusal) {
    if (refusal instanceof SpooledRecord.UnreadableException unreadable) {
      // No topic to send it to: its bytes go to the file, for whoever can read them.
      var line = MessageCodec.mapper().createObjectNode()
          .put("refused_at", clock.instant().toString())
          .put("error", "the spool holds a record this version cannot read: " + unreadable.getMessage())
          .put("record_base64", Base64.getEncoder().encodeToString(entry.payload()));
      return writeRefused(line, "a spooled record this version cannot read (" + unreadable.getMessage() + ")");
    }
    SpooledRecord record = SpooledRecord.fromBytes(entry.payload());
    String error = "Kafka refused the spooled message: " + refusal;
    String deadLetterTopic = StreamingTopics.deadLetterTopicOf(record.topic());
    RecordHeaders headers = deadLetterHeaders(kafkaHeaders(record), error, 1, record.topic());
    Throwable refusedToo;
    try {
      sendAndWait(deadLetterTopic, record.key().getBytes(StandardCharsets.UTF_8), record.value(), headers, false);
      metrics.failed.increment();
      metrics.deadLettered.increment();
      log.error("{}; it is in {}", error, deadLetterTopic);
      return true;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    } catch (ExecutionException e) {
      refusedToo = e.getCause();
    } catch (TimeoutException | RuntimeException e) {
      refusedToo = e; // a topic Kafka refuses to create, among others
    }
    if (!isRefusedForGood(refusedToo)) {
      log.warn("{}; writing it to {} failed, tried again: {}", error, deadLetterTopic, refusedToo.toString());
      return false;
    }
    var line = MessageCodec.mapper().createObjectNode()
        .put("refused_at", clock.instant().toString())
        .put("topic", record.topic())
        .put("key", record.key())
        .put("error", error + "; its dead-letter topic " + deadLetterTopic + " refused it too: " + refusedToo);
    line.putPOJO("headers", record.headers());
    line.put("message", new String(record.value(), StandardCharsets.UTF_8));
    return writeRefused(line, error + "; its dead-letter topic " + deadLetterTopic + " refused it too (" + refusedToo + ")");
  }

  /**
   * Appends a line to {@value #REFUSED_FILE}; false, logged, when it cannot (the record stays in the
   * spool, or its partition waits). One line at a time: the drainer and the workers share the file.
   */
  private boolean writeRefused(ObjectNode line, String what) {
    Path file = config.spoolDirectory().resolve(REFUSED_FILE);
    refusedFileLock.lock();
    try (FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
      out.write(ByteBuffer.wrap((MessageCodec.mapper().writeValueAsString(line) + "\n").getBytes(StandardCharsets.UTF_8)));
      out.force(true);
    } catch (IOException e) {
      log.error("{}; the file {} did not take it ({}); it is tried again", what, file, e.toString());
      return false;
    } finally {
      refusedFileLock.unlock();
    }
    metrics.failed.increment();
    log.error("{}; it is in {}", what, file);
    return true;
  }

  /**
   * Batches sent behind one that failed: waits for their outcome, so that none lands after the
   * spool resends them, and gives back their breaker permits.
   */
  private void abandon(Deque<SpoolBatch> onTheWay) {
    for (SpoolBatch batch : onTheWay) {
      awaitOutcomes(batch);
      breaker.release();
    }
    onTheWay.clear();
  }

  /**
   * While Kafka may be reachable (the breaker is not open) and the drainer is catching up,
   * publishers keep to its pace, as they keep to the broker's when sending directly: they wait
   * (at most a send timeout) while the spool holds more than the in-flight budget. Otherwise
   * the spool would only grow until full under steady load. While the breaker is open, Kafka is
   * down and the spool takes everything up to its bound.
   */
  private void awaitSpoolRoom() {
    long deadline = System.nanoTime() + config.sendTimeout().toNanos();
    spoolLock.lock();
    try {
      while (spool.sizeBytes() >= config.maxInFlightBytes()
          && breaker.state() != CircuitBreaker.State.OPEN
          && !stopDraining) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return;
        }
        spoolDrained.await(Math.min(left, TimeUnit.MILLISECONDS.toNanos(100)), TimeUnit.NANOSECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      spoolLock.unlock();
    }
  }

  private void signalSpoolDrained() {
    spoolLock.lock();
    try {
      spoolDrained.signalAll();
    } finally {
      spoolLock.unlock();
    }
  }

  private void awaitSpoolChange(Duration atMost) {
    spoolLock.lock();
    try {
      spoolChanged.await(atMost.toNanos(), TimeUnit.NANOSECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      spoolLock.unlock();
    }
  }

  /** Waits (rarely: only on the way into the spool) until no direct send is unsettled. */
  private void awaitNoInFlight(Duration atMost) {
    long deadline = System.nanoTime() + atMost.toNanos();
    while (inFlightBytes.availablePermits() < config.maxInFlightBytes() && System.nanoTime() < deadline) {
      sleepQuietly(Duration.ofMillis(1));
      if (Thread.currentThread().isInterrupted()) {
        return;
      }
    }
  }

  // ---- consuming ----

  /**
   * Commits, for a group with no position on some partitions of the spec's topics, the partitions'
   * end offsets: the group then starts with what is published from now on, even before its member
   * is assigned them. True when the group has its positions now; false when Kafka did not answer
   * or refused, or the group has members (Kafka moves no positions then), whose consumer then
   * starts at the end of a partition with no position.
   */
  private boolean startAtEndIfNew(SubscriptionSpec spec) {
    String group = spec.group();
    long deadline = System.nanoTime() + ADMIN_TIMEOUT.toNanos();
    try {
      Map<TopicPartition, OffsetAndMetadata> committed =
          admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(adminWait(deadline), TimeUnit.NANOSECONDS);
      Map<TopicPartition, OffsetSpec> unpositioned = new HashMap<>();
      admin.describeTopics(spec.effectiveTopics()).allTopicNames().get(adminWait(deadline), TimeUnit.NANOSECONDS)
          .forEach((topic, description) -> description.partitions().forEach(p -> {
            TopicPartition partition = new TopicPartition(topic, p.partition());
            if (committed.get(partition) == null) {
              unpositioned.put(partition, OffsetSpec.latest());
            }
          }));
      if (unpositioned.isEmpty()) {
        return true;
      }
      Map<TopicPartition, OffsetAndMetadata> ends = new HashMap<>();
      admin.listOffsets(unpositioned).all().get(adminWait(deadline), TimeUnit.NANOSECONDS)
          .forEach((partition, end) -> ends.put(partition, new OffsetAndMetadata(end.offset())));
      admin.alterConsumerGroupOffsets(group, ends).all().get(adminWait(deadline), TimeUnit.NANOSECONDS);
      return true;
    } catch (ExecutionException e) {
      if (e.getCause() instanceof GroupNotEmptyException || e.getCause() instanceof UnknownMemberIdException) {
        log.debug("group {} has members: a partition without a position is read from its end once assigned", group);
        return false;
      }
      log.warn("group {} starts at the end of its partitions once assigned, not now: {}", group, e.getCause().toString());
    } catch (TimeoutException e) {
      log.warn("group {} starts at the end of its partitions once assigned: Kafka did not answer in {}", group, ADMIN_TIMEOUT);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      log.warn("group {} starts at the end of its partitions once assigned: interrupted", group);
    }
    return false;
  }

  @Override
  public Subscription subscribe(SubscriptionSpec spec, MessageHandler handler) {
    Objects.requireNonNull(handler, "handler");
    spec.validated();
    if (closing.begun()) {
      throw closedError();
    }
    for (String topic : spec.effectiveTopics()) {
      try {
        ensureTopic(topic);
      } catch (RetriableException e) {
        log.warn("subscribing to {} before it could be created: {}", topic, e.getMessage());
      }
    }
    useGroup(spec.group());
    KafkaSubscription subscription;
    try {
      boolean positioned = !spec.startsAtEnd() || startAtEndIfNew(spec);
      subscription = new KafkaSubscription(this, spec, handler, subscriptionProperties(spec, positioned));
    } catch (RuntimeException | Error e) {
      releaseGroup(spec);
      throw e;
    }
    // Either close() sees the subscription among those it closes, or the subscription sees close().
    subscriptionsLock.lock();
    try {
      if (!closing.begun()) {
        subscriptions.add(subscription);
        try {
          subscription.start();
        } catch (RuntimeException | Error e) { // no thread to be had: close() must not wait for it
          subscriptions.remove(subscription);
          discard(subscription);
          throw e;
        }
        return subscription;
      }
    } finally {
      subscriptionsLock.unlock();
    }
    discard(subscription);
    throw closedError();
  }

  /** Closes the consumer of a subscription that was never started, and gives back its use of the group. */
  private void discard(KafkaSubscription subscription) {
    try {
      subscription.discard();
    } finally {
      releaseGroup(subscription.spec());
    }
  }

  /**
   * A group's subscriptions on this bus, counted from before a new one is positioned until its
   * consumer has closed, and the deletion under way of a temporary group whose count went to 0: a
   * new subscription of the group waits for that deletion, which would otherwise undo its position.
   */
  private record GroupUse(int subscriptions, CompletableFuture<Void> deletion) {}

  private final Map<String, GroupUse> groupUses = new HashMap<>(); // guarded by groupUsesLock
  private final ReentrantLock groupUsesLock = new ReentrantLock();

  private void useGroup(String group) {
    while (true) {
      CompletableFuture<Void> deletion;
      groupUsesLock.lock();
      try {
        GroupUse use = groupUses.get(group);
        if (use == null || use.deletion() == null) {
          groupUses.put(group, new GroupUse(use == null ? 1 : use.subscriptions() + 1, null));
          return;
        }
        deletion = use.deletion();
      } finally {
        groupUsesLock.unlock();
      }
      try {
        deletion.get(ADMIN_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
      } catch (TimeoutException e) {
        throw new RetriableException("group " + group + " is still being deleted after " + ADMIN_TIMEOUT + "; subscribe again later");
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new RetriableException("interrupted while group " + group + " was being deleted", e);
      } catch (ExecutionException e) {
        // ended (it never fails): its entry is gone, look again
      }
    }
  }

  /**
   * A subscription of the group has closed (or was never started). When it was the group's last
   * one here and the group is temporary, its meters go and the group is deleted on the broker,
   * in the background: unless members elsewhere hold it, or Kafka does not answer (it then
   * expires with its offsets, which the log says).
   */
  void releaseGroup(SubscriptionSpec spec) {
    String group = spec.group();
    CompletableFuture<Void> deletion = null;
    groupUsesLock.lock();
    try {
      GroupUse use = groupUses.get(group);
      if (use == null) {
        return;
      }
      if (use.subscriptions() > 1) {
        groupUses.put(group, new GroupUse(use.subscriptions() - 1, null));
      } else if (spec.temporaryGroup()) {
        deletion = new CompletableFuture<>();
        groupUses.put(group, new GroupUse(0, deletion));
      } else {
        groupUses.remove(group);
      }
    } finally {
      groupUsesLock.unlock();
    }
    if (deletion != null) {
      metrics.forgetGroup(group);
      deleteGroup(group, deletion);
    }
  }

  private void deleteGroup(String group, CompletableFuture<Void> deletion) {
    Runnable ended = () -> {
      groupUsesLock.lock();
      try {
        groupUses.remove(group);
      } finally {
        groupUsesLock.unlock();
      }
      deletion.complete(null);
    };
    try {
      admin.deleteConsumerGroups(List.of(group)).all().whenComplete((done, error) -> {
        Throwable cause = error;
        while ((cause instanceof ExecutionException || cause instanceof CompletionException) && cause.getCause() != null) {
          cause = cause.getCause();
        }
        if (cause == null || cause instanceof GroupIdNotFoundException) {
          log.debug("temporary group {} deleted", group);
        } else if (cause instanceof GroupNotEmptyException) {
          log.debug("temporary group {} still has members elsewhere; the last to leave deletes it", group);
        } else {
          log.info("temporary group {} not deleted ({}); the broker drops it when its offsets expire", group, cause.toString());
        }
        ended.run();
      });
    } catch (RuntimeException e) { // the admin client is closed: the bus is past its window
      log.info("temporary group {} not deleted ({}); the broker drops it when its offsets expire", group, e.toString());
      ended.run();
    }
  }

  KafkaBusConfig config() {
    return config;
  }

  MessageCodec codec() {
    return codec;
  }

  KafkaBusMetrics metrics() {
    return metrics;
  }

  InstantSource clock() {
    return clock;
  }

  /**
   * Registers a new worker of a group's partition on this bus and returns the earlier ones still
   * registered, which it waits for before handling anything: a subscription may let go of a worker
   * still in its handler (a revoke that outlasted its wait, a lost partition, a close), and the
   * partition's next worker here, of any subscription of the group, must not run alongside it. A
   * worker is registered until its thread ends ({@link #unregisterWorker}).
   */
  List<Thread> registerWorker(String group, TopicPartition partition, Thread worker) {
    List<Thread> earlier = new ArrayList<>();
    partitionWorkers.compute(partitionWorkerKey(group, partition), (key, threads) -> {
      if (threads != null) {
        earlier.addAll(threads);
      }
      return Stream.concat(earlier.stream(), Stream.of(worker)).toList();
    });
    return earlier;
  }

  void unregisterWorker(String group, TopicPartition partition, Thread worker) {
    partitionWorkers.computeIfPresent(partitionWorkerKey(group, partition), (key, threads) -> {
      List<Thread> rest = threads.stream().filter(thread -> thread != worker).toList();
      return rest.isEmpty() ? null : rest;
    });
  }

  private static String partitionWorkerKey(String group, TopicPartition partition) {
    return group.length() + ":" + group + ":" + partition;
  }

  /** Which records the handlers have in hand, kept where a process that dies leaves it. */
  HandlingJournal journal() {
    return journal;
  }

  private void closeJournal() {
    try {
      journal.close();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  void forget(KafkaSubscription subscription) {
    subscriptions.remove(subscription);
  }

  /**
   * Publishes a record that could not be handled to {@code <topic>.dlt} with headers naming the
   * error, attempts and origin; retries until Kafka acknowledges it or {@code stop} is counted
   * down (the worker was stopped: the record is left to the partition's next owner, and the wait
   * between tries ends at once, so that a rebalance or a close does not wait it out).
   *
   * @return whether it was written (when false the record must not be committed)
   */
  boolean deadLetter(
      ConsumerRecord<byte[], byte[]> record, String group, String error, int attempts, CountDownLatch stop) {
    String topic = StreamingTopics.deadLetterTopicOf(record.topic());
    byte[] value = record.value();
    String letterError = error;
    for (int retry = 1; ; retry++) {
      try {
        ensureTopic(topic);
        // Off the dead-letter topic's last partition, like any non-urgent record: that partition
        // is written only by the urgent lane's producer.
        sendAndWait(topic, record.key(), value, deadLetterHeaders(record, group, letterError, attempts), false);
        metrics.deadLettered.increment();
        log.warn(
            "group {} moved {}-{}@{} to {} after {} attempts: {}",
            group, record.topic(), record.partition(), record.offset(), topic, attempts, letterError);
        return true;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      } catch (ExecutionException | TimeoutException | RuntimeException e) {
        metrics.deadLetterFailures.increment();
        Throwable refusal = e instanceof ExecutionException ? e.getCause() : e;
        if (isRefusedForGood(refusal)) {
          // No retry mends it, and the partition waits behind this record: a value too large for
          // the dead-letter topic is left out of the letter (the record stays at its offset for
          // the topic's retention); a letter refused anyway goes to the refused file.
          if (value != null && isTooLarge(refusal)) {
            letterError = error + "; the value (" + value.length + " bytes) is left out of this letter, as " + topic
                + " refused it as too large (" + refusal + "): the record is at its original offset";
            value = null;
            log.warn("dead letter of {}-{}@{} refused by {} as too large ({}); sent again without its value",
                record.topic(), record.partition(), record.offset(), topic, refusal.toString());
            continue;
          }
          if (setAsideDeadLetter(record, group, letterError, topic, refusal)) {
            return true;
          }
        }
        log.warn("dead-letter publish to {} failed (try {}), retrying: {}", topic, retry, e.toString());
        Duration wait = config.retryPolicy().delayBefore(Math.min(retry, 10), ThreadLocalRandom.current().nextDouble());
        try {
          if (stop.await(wait.toNanos(), TimeUnit.NANOSECONDS)) {
            return false;
          }
        } catch (InterruptedException interrupted) {
          Thread.currentThread().interrupt();
          return false;
        }
      }
    }
  }

  /**
   * Moves the dead letters of a topic back to it: each {@code <topic>.dlt} record present when the
   * replay starts is published again to its original topic (its dead-letter headers removed), on
   * the partition the bus gives it (high and critical ones on the urgent lane, the others by key), and
   * then committed in the replay group {@code nis-dlt-replay}, so the next replay starts after it.
   * Each goes back for the group that dead-lettered it only (header {@link
   * DeadLetterHeaders#REPLAYED_FOR}): subscriptions of the topic's other groups skip it.
   * Letters that fail again and come back during the replay wait for the next one.
   *
   * <p>A letter whose group no longer reads the topic (no committed offsets on it and no member
   * assigned one of its partitions: deleted, or expired after its last member left) stops the
   * replay there, with what came before it replayed: sent back for that group only, it would be
   * handled by no one. {@link #replayDeadLetters(String, String, String, Duration)} sends that
   * group's letters to another.
   *
   * @return how many were replayed
   * @throws NisException naming a letter whose group no longer reads the topic, or when Kafka
   *     refuses to describe the group (not authorized: the replay needs Describe on it)
   * @throws RetriableException when Kafka could not take a letter or answer in time (what came
   *     before it is replayed)
   */
  public long replayDeadLetters(String topic, Duration timeout) {
    return replay(topic, Map.of(), timeout);
  }

  /**
   * Replays the dead letters of a topic as {@link #replayDeadLetters(String, Duration)} does,
   * except that those {@code fromGroup} gave up on go back for {@code toGroup}: for a group that
   * was renamed or retired. The other letters go back for their own groups, and the topic's other
   * groups skip them all. {@code toGroup} must read the topic (commits or assigned members), or the
   * replay stops at the first such letter.
   *
   * @return how many were replayed
   */
  public long replayDeadLetters(String topic, String fromGroup, String toGroup, Duration timeout) {
    requireGroupName("fromGroup", fromGroup);
    requireGroupName("toGroup", toGroup);
    return replay(topic, Map.of(fromGroup, toGroup), timeout);
  }

  private static void requireGroupName(String name, String group) {
    if (group == null || group.isBlank()) {
      throw new ValidationException(name + " must name a consumer group, got " + ErrorText.quoted(group));
    }
  }

  private static final Duration LONGEST_REPLAY = Duration.ofDays(36_500);

  /** Replays the topic's dead letters, each for its own group or the one {@code groupFor} gives instead. */
  private long replay(String topic, Map<String, String> groupFor, Duration timeout) {
    if (timeout == null || timeout.isNegative() || timeout.isZero()) {
      throw new ValidationException("a replay's timeout must be positive, got " + timeout);
    }
    String deadLetterTopic = StreamingTopics.deadLetterTopicOf(topic);
    ensureTopic(deadLetterTopic);
    long replayed = 0;
    // At most a century, which the nanosecond clock holds (compared by difference below).
    long deadline = System.nanoTime() + (timeout.compareTo(LONGEST_REPLAY) > 0 ? LONGEST_REPLAY : timeout).toNanos();
    try (KafkaConsumer<byte[], byte[]> consumer =
        new KafkaConsumer<>(consumerProperties("nis-dlt-replay", 0), new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      consumer.subscribe(List.of(deadLetterTopic));
      Map<TopicPartition, Long> ends = null;
      Map<String, Boolean> groupsReading = new HashMap<>();
      while (deadline - System.nanoTime() > 0) {
        var records = consumer.poll(Duration.ofMillis(200));
        if (ends == null) {
          if (consumer.assignment().isEmpty()) {
            continue;
          }
          ends = consumer.endOffsets(consumer.assignment(), ADMIN_TIMEOUT);
        }
        Map<TopicPartition, OffsetAndMetadata> done = new HashMap<>();
        try {
          for (ConsumerRecord<byte[], byte[]> record : records) {
            TopicPartition partition = new TopicPartition(record.topic(), record.partition());
            if (record.offset() >= ends.getOrDefault(partition, 0L)) {
              continue; // arrived during this replay
            }
            if (replayLetter(record, partition, topic, groupFor, groupsReading, deadline)) {
              replayed++;
            }
            done.put(partition, new OffsetAndMetadata(record.offset() + 1));
          }
        } catch (RuntimeException e) {
          if (!Thread.currentThread().isInterrupted()) {
            consumer.commitSync(done); // what was replayed is not replayed again next time
          }
          throw e;
        }
        consumer.commitSync(done);
        if (reachedEnds(consumer, ends)) {
          break;
        }
      }
    }
    return replayed;
  }

  /**
   * Sends one dead letter back to its original topic, for the group that gave up on it (or the one
   * {@code groupFor} names instead), and waits until Kafka has it. A letter without a value (a
   * record that was corrupt on the broker, or another client's empty record) has nothing to send
   * back, and one Kafka refuses for good (too large for its topic) would stop every replay: each
   * is passed over, logged, and false returned.
   *
   * @throws NisException when that group does not read the topic
   * @throws RetriableException when Kafka could not take the letter or answer in time
   */
  private boolean replayLetter(
      ConsumerRecord<byte[], byte[]> record, TopicPartition partition, String topic, Map<String, String> groupFor,
      Map<String, Boolean> groupsReading, long deadline) {
    if (record.value() == null) {
      log.warn("dead letter at offset {} of {} has no value ({}): nothing to replay, passed over",
          record.offset(), partition, Optional.ofNullable(headerText(record, DeadLetterHeaders.ERROR)).orElse("no error named"));
      return false;
    }
    String target = Optional.ofNullable(headerText(record, DeadLetterHeaders.ORIGINAL_TOPIC)).orElse(topic);
    RecordHeaders headers = withoutBusHeaders(record);
    String gaveUp = headerText(record, DeadLetterHeaders.GROUP);
    if (gaveUp != null) {
      String group = groupFor.getOrDefault(gaveUp, gaveUp);
      if (!readsTopic(group, target, groupsReading, deadline)) {
        throw new NisException("the replay of the dead letters of " + topic + " stopped at offset "
            + record.offset() + " of " + partition + ": " + (group.equals(gaveUp)
                ? "group " + ErrorText.quoted(group) + ", which gave up on it, no longer reads " + target
                : "group " + ErrorText.quoted(group) + ", asked to take the letters of group " + ErrorText.quoted(gaveUp)
                    + ", does not read " + target)
            + " (no committed offsets there, no member assigned to it), so no one would handle it."
            + " replayDeadLetters(topic, fromGroup, toGroup, timeout) sends a group's letters to another");
      }
      addText(headers, DeadLetterHeaders.REPLAYED_FOR, group); // for that group only
    }
    try {
      // The lane and partition the bus gives the message, as when it was first published.
      sendAndWait(target, record.key(), record.value(), headers, isUrgent(record.value()));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RetriableException("interrupted while replaying dead letters of " + topic, e);
    } catch (ExecutionException | TimeoutException | RuntimeException e) {
      Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
      if (isRefusedForGood(cause)) {
        // Sent again, it would be refused again (a spooled message too large for its topic,
        // say): passed over, or every replay would stop here.
        log.warn("dead letter at offset {} of {} is refused by {} for good ({}): not replayed, passed over",
            record.offset(), partition, target, cause.toString());
        return false;
      }
      throw new RetriableException("replay of dead letters of " + topic + " stopped: " + e, e);
    }
    return true;
  }

  /** A header's value as text; null when the record has no such header, or one without a value. */
  static String headerText(ConsumerRecord<byte[], byte[]> record, String name) {
    Header header = record.headers().lastHeader(name);
    return header == null || header.value() == null ? null : new String(header.value(), StandardCharsets.UTF_8);
  }

  /**
   * Whether a consumer group reads a topic: has committed offsets on it, or a member assigned one
   * of its partitions (a group that just dead-lettered its first record of the topic may not have
   * committed yet). A group that dead-lettered a record has neither only once deleted, or once its
   * offsets expired after its last member left. Answers are kept for the rest of a replay.
   */
  private boolean readsTopic(String group, String topic, Map<String, Boolean> known, long deadline) {
    String key = group + '\n' + topic;
    Boolean reads = known.get(key);
    if (reads == null) {
      try {
        reads = committedOn(group, topic, deadline) || hasMemberOn(group, topic, deadline);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new RetriableException("interrupted while looking up consumer group " + group, e);
      } catch (TimeoutException e) {
        throw new RetriableException("Kafka did not describe consumer group " + group + " in time", e);
      } catch (ExecutionException e) {
        Throwable cause = e.getCause();
        if (cause instanceof org.apache.kafka.common.errors.RetriableException
            || cause instanceof org.apache.kafka.common.errors.TimeoutException) {
          throw new RetriableException("could not look up consumer group " + group + ": " + cause, cause);
        }
        // Not authorized (the replay needs Describe on the group), or not a consumer group.
        throw new BackendRefusedException("Kafka refused to describe consumer group " + group + ": " + cause, cause);
      }
      known.put(key, reads);
    }
    return reads;
  }

  private boolean committedOn(String group, String topic, long deadline)
      throws InterruptedException, ExecutionException, TimeoutException {
    return admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()
        .get(adminWait(deadline), TimeUnit.NANOSECONDS)
        .entrySet().stream()
        .anyMatch(e -> e.getKey().topic().equals(topic) && e.getValue() != null);
  }

  private boolean hasMemberOn(String group, String topic, long deadline)
      throws InterruptedException, ExecutionException, TimeoutException {
    try {
      return admin.describeConsumerGroups(List.of(group)).describedGroups().get(group)
          .get(adminWait(deadline), TimeUnit.NANOSECONDS)
          .members().stream()
          .anyMatch(m -> m.assignment().topicPartitions().stream().anyMatch(p -> p.topic().equals(topic)));
    } catch (ExecutionException e) {
      if (e.getCause() instanceof GroupIdNotFoundException) {
        return false;
      }
      throw e;
    }
  }

  /** An admin call's wait: its usual timeout, or what is left of the deadline when that is less. */
  private static long adminWait(long deadline) {
    return Math.max(0, Math.min(ADMIN_TIMEOUT.toNanos(), deadline - System.nanoTime()));
  }

  /** The headers of a consumed record's dead letter: its own (less the bus's), the error, attempts and where it was. */
  private static RecordHeaders deadLetterHeaders(
      ConsumerRecord<byte[], byte[]> record, String group, String error, int attempts) {
    RecordHeaders headers = deadLetterHeaders(withoutBusHeaders(record), error, attempts, record.topic());
    addText(headers, DeadLetterHeaders.ORIGINAL_PARTITION, Integer.toString(record.partition()));
    addText(headers, DeadLetterHeaders.ORIGINAL_OFFSET, Long.toString(record.offset()));
    addText(headers, DeadLetterHeaders.GROUP, group);
    return headers;
  }

  /** The bytes as text, or null when they are not UTF-8. */
  private static String utf8OrNull(byte[] bytes) {
    try {
      return StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
          .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(bytes))
          .toString();
    } catch (java.nio.charset.CharacterCodingException e) {
      return null;
    }
  }

  private static boolean isTooLarge(Throwable refusal) {
    return refusal instanceof RecordTooLargeException
        || refusal instanceof org.apache.kafka.common.errors.RecordBatchTooLargeException;
  }

  /**
   * Writes the dead letter of a consumed record that its dead-letter topic refuses for good (the
   * bus may not write or create it) to {@value #REFUSED_FILE}, so the partition goes on; false
   * when the file could not take it.
   */
  private boolean setAsideDeadLetter(
      ConsumerRecord<byte[], byte[]> record, String group, String error, String deadLetterTopic, Throwable refusal) {
    var line = MessageCodec.mapper().createObjectNode()
        .put("refused_at", clock.instant().toString())
        .put("topic", record.topic())
        .put("partition", record.partition())
        .put("offset", record.offset())
        .put("group", group)
        .put("key", record.key() == null ? null : new String(record.key(), StandardCharsets.UTF_8))
        .put("error", error + "; its dead-letter topic " + deadLetterTopic + " refused it: " + refusal);
    var headers = line.putObject("headers");
    for (Header header : withoutBusHeaders(record)) {
      headers.put(header.key(), header.value() == null ? null : new String(header.value(), StandardCharsets.UTF_8));
    }
    String text = record.value() == null ? null : utf8OrNull(record.value());
    if (record.value() == null || text != null) {
      line.put("message", text);
    } else {
      line.put("message_base64", Base64.getEncoder().encodeToString(record.value())); // bytes that are not text
    }
    return writeRefused(line, "group " + group + " gave up on " + record.topic() + "-" + record.partition() + "@"
        + record.offset() + " (" + error + "); its dead-letter topic " + deadLetterTopic + " refused it (" + refusal + ")");
  }

  /**
   * The record's headers but those the bus sets itself ({@code nis.dlt.*}, {@code
   * nis.replayed.for}): a dead letter and a replay each set their own.
   */
  private static RecordHeaders withoutBusHeaders(ConsumerRecord<byte[], byte[]> record) {
    RecordHeaders headers = new RecordHeaders();
    for (Header header : record.headers()) {
      if (!DeadLetterHeaders.isSetByTheBus(header.key())) {
        headers.add(header);
      }
    }
    return headers;
  }

  private static boolean reachedEnds(KafkaConsumer<byte[], byte[]> consumer, Map<TopicPartition, Long> ends) {
    for (Map.Entry<TopicPartition, Long> end : ends.entrySet()) {
      if (consumer.assignment().contains(end.getKey()) && consumer.position(end.getKey()) < end.getValue()) {
        return false;
      }
    }
    return true;
  }

  // ---- lifecycle ----

  /**
   * Stops accepting, sends what waits in the spool while Kafka answers, lets every subscription
   * consume what is on its partitions and commit, then closes the clients. Until the subscriptions
   * are closed their handlers may still publish (sent, or spooled for the next start). Returns within the
   * shutdown timeout: the producers get its last second (a tenth of what is left, when shorter)
   * to settle what was published, and subscriptions whose handlers are still busy 5 s before that
   * (a fifth of the time left, when shorter) are stopped together and get those seconds to finish
   * their handlers and commit; up to 30 s more only when code chained on a receipt blocks a
   * producer's thread.
   * Sends Kafka has not settled by then are cut off and spooled in the order they were sent; one
   * of them may already be in Kafka too, so the next start can deliver it twice.
   *
   * <p>The closing runs on a thread of its own, which the caller waits for: an interrupt of the
   * caller does not cut it short (the caller keeps the interrupt). Called from a handler, or from
   * code chained on a receipt (which runs on a producer's own thread, the one that settles the
   * sends close() waits for, on the thread that spools what a timed-out send's producers cut off,
   * or on the bus's hand-off thread), it stops accepting and returns at once, as {@code
   * KafkaProducer.close} does when called from its callbacks. A later call from another thread
   * waits until closing has ended (at most the shutdown timeout and a minute more).
   */
  @Override
  public void close() {
    // The steps run on a thread of their own: an interrupt of the caller would cut every wait
    // short and close the spool's file under its writes (a FileChannel closes when its writer is
    // interrupted).
    closing.close(onBusThread(), () -> {}, () -> closeWithin(System.nanoTime() + config.shutdownTimeout().toNanos()));
  }

  /** Whether close() has run to its end (on its own thread, which a close() from the bus's threads does not wait for). */
  boolean closeFinished() {
    return closing.ended();
  }

  /** A thread the bus runs its callers' code on: a handler's, a receipt's or a hand-off's. */
  private boolean onBusThread() {
    Thread current = Thread.currentThread();
    return onProducerIoThread()
        || replacerThread.get() != null
        || current == handOffThread
        || subscriptions.stream().anyMatch(s -> s.runsHandlerOn(current));
  }

  private void closeWithin(long deadline) {
    handOff.shutdown(); // what was handed off before is still published
    try {
      handOff.awaitTermination(remaining(deadline).toNanos(), TimeUnit.NANOSECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    awaitNoInFlight(remaining(deadline));
    List<KafkaSubscription> open;
    subscriptionsLock.lock();
    try {
      open = List.copyOf(subscriptions);
    } finally {
      subscriptionsLock.unlock();
    }
    // The subscriptions drain while the drainer sends the spool: neither waits for the other, so
    // a spool slow to empty does not take the subscriptions' time to finish their handlers and commit.
    open.forEach(KafkaSubscription::beginDrainAndClose);
    // The producers get the window's last second (a tenth of what is left, when shorter) to
    // settle what the handlers published.
    long producersTime = Math.min(TimeUnit.SECONDS.toNanos(1), remaining(deadline).toNanos() / 10);
    KafkaSubscription.awaitClosing(open, deadline - producersTime);
    subscriptionsClosed = true; // handlers still busy now publish no more: the producers close next
    while (!spool.isEmpty() && System.nanoTime() < deadline - producersTime
        && breaker.state() != CircuitBreaker.State.OPEN) {
      sleepQuietly(Duration.ofMillis(50));
    }
    stopDraining = true;
    joinQuietly(drainer, remaining(deadline - producersTime));
    provisioner.interrupt();
    closeEach(
        () -> closeProducers(deadline),
        () -> admin.close(min(Duration.ofSeconds(1), remaining(deadline))),
        spool::close,
        this::closeJournal);
    if (!spool.isEmpty()) {
      log.warn("{} messages stay in the spool {} until the next start", spool.size(), config.spoolDirectory());
    }
  }

  /**
   * Closes the producers for good once direct sends are settled or the deadline has passed: sends
   * still unsettled are cut off and spooled in the order they were made. A replacement under way
   * ends without a new pair.
   */
  private void closeProducers(long deadline) {
    awaitNoInFlight(remaining(deadline));
    Runnable completeReceipts = holdingProducersLock(() -> {
      ProducerPair last = producers;
      last.retire();
      return stopAndSpoolCutOffs(last);
    });
    completeReceipts.run();
  }

  /** Runs every step, even when one before it failed (each failure is logged). */
  private static void closeEach(Runnable... steps) {
    for (Runnable step : steps) {
      try {
        step.run();
      } catch (RuntimeException e) {
        log.warn("closing the Kafka bus: {}", e.toString());
      }
    }
  }

  static Duration remaining(long deadline) {
    return Duration.ofNanos(Math.max(0, deadline - System.nanoTime()));
  }

  private static Duration min(Duration a, Duration b) {
    return a.compareTo(b) <= 0 ? a : b;
  }

  private static void joinQuietly(Thread thread, Duration timeout) {
    try {
      thread.join(timeout);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  static void sleepQuietly(Duration duration) {
    try {
      Thread.sleep(duration);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static ClosedException closedError() {
    return new ClosedException("the message bus is closed; no more messages are accepted");
  }

  // ---- client properties ----

  private Properties commonProperties() {
    Properties props = new Properties();
    props.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, config.bootstrapServers());
    props.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, config.securityProtocol());
    config.saslMechanism().ifPresent(m -> props.put(SaslConfigs.SASL_MECHANISM, m));
    if (config.saslUsername().isPresent() && config.saslMechanism().isPresent()) {
      props.put(SaslConfigs.SASL_JAAS_CONFIG, jaasConfig(
          config.saslMechanism().get(), config.saslUsername().get(), config.saslPassword().orElse("")));
    }
    config.sslTruststoreLocation().ifPresent(path -> {
      props.put(SslConfigs.SSL_TRUSTSTORE_LOCATION_CONFIG, path.toString());
      if (isPem(path)) {
        props.put(SslConfigs.SSL_TRUSTSTORE_TYPE_CONFIG, "PEM");
      }
    });
    config.sslTruststorePassword().ifPresent(p -> props.put(SslConfigs.SSL_TRUSTSTORE_PASSWORD_CONFIG, p));
    props.put(CommonClientConfigs.RECONNECT_BACKOFF_MAX_MS_CONFIG, "2000");
    // A client that started while Kafka was down, or lost every broker, bootstraps again after
    // 10 s without metadata instead of the default 5 minutes (topic creation waits on it).
    props.put(CommonClientConfigs.METADATA_RECOVERY_REBOOTSTRAP_TRIGGER_MS_CONFIG, "10000");
    return props;
  }

  /** The login of a SASL mechanism, its username and password quoted (a quote or backslash in them escaped). */
  static String jaasConfig(String mechanism, String username, String password) {
    String module = mechanism.startsWith("SCRAM")
        ? "org.apache.kafka.common.security.scram.ScramLoginModule"
        : "org.apache.kafka.common.security.plain.PlainLoginModule";
    return module + " required username=" + jaasQuoted(username) + " password=" + jaasQuoted(password) + ";";
  }

  private static String jaasQuoted(String text) {
    return '"' + text.replace("\\", "\\\\").replace("\"", "\\\"") + '"';
  }

  /** Whether a truststore is PEM (certificates as text), by its content whatever its name; else it is taken for JKS/PKCS12. */
  static boolean isPem(Path truststore) {
    try (var in = Files.newInputStream(truststore)) {
      return new String(in.readNBytes(4096), StandardCharsets.US_ASCII).contains("-----BEGIN");
    } catch (IOException | RuntimeException e) {
      return truststore.toString().endsWith(".pem") || truststore.toString().endsWith(".crt"); // Kafka reports it
    }
  }

  private Properties producerProperties() {
    Properties props = commonProperties();
    props.put(ProducerConfig.CLIENT_ID_CONFIG, config.clientId() + "-producer");
    props.put(ProducerConfig.ACKS_CONFIG, config.acks());
    props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, Boolean.toString(config.idempotence()));
    props.put(ProducerConfig.LINGER_MS_CONFIG, Integer.toString(config.lingerMs()));
    props.put(ProducerConfig.BATCH_SIZE_CONFIG, Integer.toString(config.batchSize()));
    props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, config.compressionType());
    props.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "5");
    // A request may take the whole send timeout: cutting it shorter under load only resends.
    long deliveryTimeout = config.sendTimeout().toMillis();
    long requestTimeout = Math.max(500, deliveryTimeout - config.lingerMs() - 100);
    props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, Long.toString(requestTimeout));
    props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, Long.toString(requestTimeout + config.lingerMs() + 100));
    props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "5000");
    // Twice the in-flight budget: the producer's buffer never fills, so send() never blocks on it.
    props.put(ProducerConfig.BUFFER_MEMORY_CONFIG, Long.toString(2 * config.maxInFlightBytes()));
    props.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(Math.max(1_048_576, config.maxContentBytes() + 64 * 1024)));
    props.putAll(config.clientProperties());
    return props;
  }

  /** The urgent lane's producer: the same settings, but no lingering to fill a batch. */
  private Properties urgentProducerProperties() {
    Properties props = producerProperties();
    props.put(ProducerConfig.CLIENT_ID_CONFIG, config.clientId() + "-urgent-producer");
    props.put(ProducerConfig.LINGER_MS_CONFIG, "0");
    return props;
  }

  private Properties adminProperties() {
    Properties props = commonProperties();
    props.put(AdminClientConfig.CLIENT_ID_CONFIG, config.clientId() + "-admin");
    props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Long.toString(ADMIN_TIMEOUT.toMillis()));
    return props;
  }

  /**
   * A consumer outside any group that reads a record again for a subscription of {@code group}
   * (one record a poll).
   */
  Properties rereadingConsumerProperties(String group) {
    Properties props = consumerProperties(group, 0);
    props.remove(ConsumerConfig.GROUP_ID_CONFIG);
    props.put(ConsumerConfig.CLIENT_ID_CONFIG, config.clientId() + "-" + group + "-reread");
    props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "1");
    // An offset no longer there (retention passed it meanwhile) is an error, not a jump to the
    // end, which would hand over a record far ahead and skip those between.
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
    return props;
  }

  /**
   * The consumer's settings. A group to start at the end that could not be positioned starts at
   * the end of its partitions once they are assigned: what is published before is missed. Once
   * positioned, a partition added later is read from its start, all of it published since.
   */
  private Properties subscriptionProperties(SubscriptionSpec spec, boolean positioned) {
    Properties props = consumerProperties(spec.group(), subscriptionCount.incrementAndGet());
    if (!positioned) {
      props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest");
    }
    return props;
  }

  Properties consumerProperties(String group, int index) {
    Properties props = commonProperties();
    props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    props.put(ConsumerConfig.CLIENT_ID_CONFIG, config.clientId() + "-" + group + "-" + index);
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, Integer.toString(config.maxPollRecords()));
    props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, Long.toString(config.sessionTimeout().toMillis()));
    props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
    props.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "100");
    // A revoke waits up to the shutdown window for the partitions' handlers, on the poll thread:
    // the poll interval (Kafka's default 5 minutes) must outlast it, or the member is put out of
    // the group in the middle of its revoke.
    props.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG,
        Long.toString(Math.min(Integer.MAX_VALUE, Math.max(300_000L, config.shutdownTimeout().plusMinutes(1).toMillis()))));
    props.putAll(config.clientProperties());
    return props;
  }
}
