package org.nisprotocol.bench;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.MessagePriority;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.PublishReceipt;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.kafka.KafkaBusConfig;
import org.nisprotocol.kafka.KafkaMessageBus;
import org.nisprotocol.testkit.KafkaBroker;

/**
 * Kafka bus against a raw {@link KafkaProducer} / {@link KafkaConsumer} with the same settings, on
 * one broker of its own, in one run: publish throughput (1 KiB messages), end-to-end latency at a
 * fixed 5,000 msg/s, and how long a critical message takes to reach its handler behind a backlog
 * of 100,000 low ones. Prints a table with the baselines and the ratios.
 *
 * <p>Run with {@code bin/nis bench kafka [messages]}; {@code -Dnis.bench.parts=e2e,priority} (through
 * {@code NIS_JAVA_OPTS}) runs only some of throughput, e2e and priority.
 */
public final class KafkaBenchmark {
  private static final int PAYLOAD_BYTES = 1024;
  private static final String FILLER = "x".repeat(PAYLOAD_BYTES - 60);

  private KafkaBenchmark() {}

  public static void main(String[] args) throws Exception {
    int messages = args.length > 0 ? Integer.parseInt(args[0]) : 200_000;
    Path spool = Files.createTempDirectory("nis-bench-spool");
    try (KafkaBroker broker = KafkaBroker.builder().name("bench-kafka").maxHeap("1g").forLoad().build()) {
      broker.start();
      String servers = broker.bootstrapServers();
      KafkaBusConfig config =
          KafkaBusConfig.builder(servers).spoolDirectory(spool).topicPartitions(6).build();
      admin = org.apache.kafka.clients.admin.Admin.create(Map.of("bootstrap.servers", servers));
      partitions = config.topicPartitions();
      List<String[]> rows = new ArrayList<>();
      java.util.Set<String> parts =
          java.util.Set.of(System.getProperty("nis.bench.parts", "throughput,e2e,priority").split(","));
      try (KafkaMessageBus bus = KafkaMessageBus.create(config);
          KafkaProducer<byte[], byte[]> raw = rawProducer(servers, config)) {
        if (parts.contains("throughput")) {
          rows.add(throughputRow(bus, raw, messages));
        }
        if (parts.contains("e2e")) {
          double[] rawLatency = rawEndToEnd(raw, servers, 5_000, Duration.ofSeconds(10));
          double[] nisLatency = nisEndToEnd(bus, 5_000, Duration.ofSeconds(10));
          rows.add(row("end-to-end p50 at 5,000 msg/s (ms)", rawLatency[0], nisLatency[0], nisLatency[0] / rawLatency[0], "report"));
          rows.add(row("end-to-end p99 at 5,000 msg/s (ms)", rawLatency[1], nisLatency[1], nisLatency[1] / rawLatency[1], "report"));
        }
      }
      if (parts.contains("priority")) {
        double[] singleLane = criticalBehindBacklog(servers, spool.resolve("one-lane"), 1, 5);
        double[] lanes = criticalBehindBacklog(servers, spool.resolve("lanes"), 6, 100);
        rows.add(row("critical behind 100k low, p50 (ms)", singleLane[0], lanes[0], lanes[0] / singleLane[0], "report"));
        rows.add(row("critical behind 100k low, p99 (ms)", singleLane[1], lanes[1], lanes[1] / singleLane[1], "NIS < 100 ms"));
      }
      print(rows);
      admin.close();
    }
  }

  /** Rounds of the throughput comparison after one warm-up round (default 7). */
  private static final int ROUNDS = Integer.getInteger("nis.bench.rounds", 7);

  /**
   * Raw and NIS publish the same number of messages back to back, in alternating order, round
   * after round; each round gives a ratio of the two. The row shows the medians: a machine whose
   * load drifts (other processes, a virtual machine's stolen time) moves both sides of a round
   * alike, and one disturbed round does not decide the result.
   */
  private static String[] throughputRow(KafkaMessageBus bus, KafkaProducer<byte[], byte[]> raw, int messages)
      throws Exception {
    // One topic a side for every round: a new partition's first seconds can stall an idempotent
    // producer (a first request retried behind a later one that succeeded), which would land
    // on one side of one round at random. The warm-up round takes those seconds.
    String rawTopic = "bench-raw-" + UUID.randomUUID();
    String nisTopic = "bench-nis-" + UUID.randomUUID();
    createTopic(rawTopic);
    rawThroughput(raw, rawTopic, messages);
    nisThroughput(bus, nisTopic, messages);
    for (int i = 0; i < 600 && bus.spooledMessages() > 0; i++) {
      Thread.sleep(100); // whatever the warm-up left in the spool is sent before the rounds
    }
    double[] rawRates = new double[ROUNDS];
    double[] nisRates = new double[ROUNDS];
    double[] ratios = new double[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
      if (round % 2 == 0) {
        rawRates[round] = rawThroughput(raw, rawTopic, messages);
        nisRates[round] = nisThroughput(bus, nisTopic, messages);
      } else {
        nisRates[round] = nisThroughput(bus, nisTopic, messages);
        rawRates[round] = rawThroughput(raw, rawTopic, messages);
      }
      ratios[round] = nisRates[round] / rawRates[round];
    }
    StringBuilder each = new StringBuilder();
    for (int round = 0; round < ROUNDS; round++) {
      each.append(String.format(Locale.ROOT, " %.2f (%,.0f / %,.0f)", ratios[round], nisRates[round], rawRates[round]));
    }
    System.out.println("throughput ratio per round (NIS / raw msg/s):" + each);
    return row(
        "publish throughput, 1 KiB, " + PUBLISHERS + " threads (msg/s)",
        median(rawRates), median(nisRates), median(ratios), "≥ 0.90");
  }

  private static double median(double[] values) {
    double[] sorted = values.clone();
    java.util.Arrays.sort(sorted);
    int middle = sorted.length / 2;
    return sorted.length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  }

  /** Distinct messages the raw producer cycles through. */
  private static final int RAW_DISTINCT_MESSAGES = 65_536;

  /** Ordering keys (target agents) the messages are spread over. */
  private static final int KEYS = 64;

  /** Where raw topics are created: the same partitions as the bus's (no broker default). */
  private static org.apache.kafka.clients.admin.Admin admin;
  private static int partitions;

  /** Creates a topic for the raw clients as the bus creates its own, and waits for its partitions' leaders. */
  private static void createTopic(String topic) throws Exception {
    admin.createTopics(List.of(new org.apache.kafka.clients.admin.NewTopic(topic, partitions, (short) 1))).all().get();
    for (int i = 0; i < 200; i++) {
      try {
        var description = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
        if (description.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty())) {
          return;
        }
      } catch (java.util.concurrent.ExecutionException e) {
        // not known to the broker's metadata yet
      }
      Thread.sleep(50);
    }
  }

  private static String[] row(String what, double baseline, double nis, double ratio, String target) {
    return new String[] {
      what, String.format(Locale.ROOT, "%,.1f", baseline), String.format(Locale.ROOT, "%,.1f", nis),
      String.format(Locale.ROOT, "%.2f", ratio), target
    };
  }

  private static void print(List<String[]> rows) {
    String format = "%-46s %16s %16s %8s %14s%n";
    System.out.printf(format, "measure", "baseline (raw)", "NIS", "ratio", "target");
    rows.forEach(r -> System.out.printf(format, (Object[]) r));
    System.out.println("throughput: medians over " + ROUNDS + " rounds (after a warm-up), raw and NIS back to back in each, the ratio");
    System.out.println("  the median of the rounds' ratios; -Dnis.bench.rounds=N and -Dnis.bench.publishers=N set rounds and threads;");
    System.out.println("baseline for throughput and end-to-end: raw KafkaProducer/KafkaConsumer, same settings, broker and topic");
    System.out.println("  layout; for throughput the raw producer sends the same messages, encoded before its clock starts;");
    System.out.println("baseline for the critical message: NIS with one partition (no urgent lane), 5 samples.");
  }

  private static NisMessage message(String topic, int i, MessagePriority priority, long sentNanos) {
    return NisMessage.builder(MessageType.PERFORMANCE_METRIC, "bench")
        .topic(topic)
        .priority(priority)
        .targetAgent("agent-" + (i % KEYS))
        .content(Map.of("i", i, "sent_nanos", sentNanos, "filler", FILLER))
        .build();
  }

  private static KafkaProducer<byte[], byte[]> rawProducer(String servers, KafkaBusConfig config) {
    Map<String, Object> props = new HashMap<>();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, servers);
    props.put(ProducerConfig.ACKS_CONFIG, config.acks());
    props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, config.idempotence());
    props.put(ProducerConfig.LINGER_MS_CONFIG, config.lingerMs());
    props.put(ProducerConfig.BATCH_SIZE_CONFIG, config.batchSize());
    props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, config.compressionType());
    props.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5);
    long delivery = config.sendTimeout().toMillis();
    props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) (delivery - config.lingerMs() - 100));
    props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, (int) delivery);
    props.put(ProducerConfig.BUFFER_MEMORY_CONFIG, 2 * config.maxInFlightBytes());
    return new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer());
  }

  /** Publishing threads in the throughput runs, the same for raw and NIS (default 2). */
  private static final int PUBLISHERS = Integer.getInteger("nis.bench.publishers", 2);

  private interface Publisher {
    void publish(int from, int to) throws Exception;
  }

  /** Runs the publisher on {@link #PUBLISHERS} threads over [0, count); returns messages per second. */
  private static double timed(int count, Publisher publisher) throws Exception {
    List<Thread> threads = new ArrayList<>();
    java.util.concurrent.atomic.AtomicReference<Exception> failure = new java.util.concurrent.atomic.AtomicReference<>();
    long start = System.nanoTime();
    for (int t = 0; t < PUBLISHERS; t++) {
      int from = count / PUBLISHERS * t;
      int to = t == PUBLISHERS - 1 ? count : count / PUBLISHERS * (t + 1);
      threads.add(Thread.ofPlatform().start(() -> {
        try {
          publisher.publish(from, to);
        } catch (Exception e) {
          failure.set(e);
        }
      }));
    }
    for (Thread thread : threads) {
      thread.join();
    }
    if (failure.get() != null) {
      throw failure.get();
    }
    return count / ((System.nanoTime() - start) / 1e9);
  }

  private static double rawThroughput(KafkaProducer<byte[], byte[]> raw, String topic, int count) throws Exception {
    // The same bytes the bus would send, encoded before the clock starts: distinct messages (a
    // batch of identical records would compress far better than real traffic), cycled.
    MessageCodec codec = MessageCodec.create();
    byte[][] values = new byte[Math.min(count, RAW_DISTINCT_MESSAGES)][];
    byte[][] keys = new byte[KEYS][];
    for (int i = 0; i < values.length; i++) {
      values[i] = codec.encode(message(topic, i, MessagePriority.NORMAL, 0));
    }
    for (int key = 0; key < KEYS; key++) {
      keys[key] = ("agent-" + key).getBytes(StandardCharsets.UTF_8);
    }
    List<java.util.concurrent.Future<?>> primed = new ArrayList<>();
    for (int key = 0; key < KEYS; key++) {
      primed.add(raw.send(new ProducerRecord<>(topic, keys[key], values[key])));
    }
    for (java.util.concurrent.Future<?> ack : primed) {
      ack.get(); // every partition written to once before the clock starts
    }
    return timed(count, (from, to) -> {
      CountDownLatch done = new CountDownLatch(to - from);
      for (int i = from; i < to; i++) {
        raw.send(
            new ProducerRecord<>(topic, keys[i % KEYS], values[i % values.length]),
            (metadata, error) -> done.countDown());
      }
      done.await();
    });
  }

  private static double nisThroughput(KafkaMessageBus bus, String topic, int count) throws Exception {
    List<CompletableFuture<PublishReceipt>> primed = new ArrayList<>();
    for (int key = 0; key < KEYS; key++) {
      primed.add(bus.publishAsync(message(topic, key, MessagePriority.NORMAL, 0)));
    }
    CompletableFuture.allOf(primed.toArray(CompletableFuture[]::new)).get(); // as for raw
    AtomicInteger notSent = new AtomicInteger();
    double rate = timed(count, (from, to) -> {
      List<CompletableFuture<PublishReceipt>> receipts = new ArrayList<>(to - from);
      for (int i = from; i < to; i++) {
        receipts.add(bus.publishAsync(message(topic, i, MessagePriority.NORMAL, 0)));
      }
      for (CompletableFuture<PublishReceipt> receipt : receipts) {
        if (receipt.get().status() != PublishReceipt.Status.SENT) {
          notSent.incrementAndGet();
        }
      }
    });
    if (notSent.get() > 0) {
      System.out.println("warning: " + notSent.get() + " messages were spooled during the throughput run");
    }
    return rate;
  }

  /** Publishes at a fixed rate; returns {p50, p99} in ms of publish-to-handler time. */
  private static double[] nisEndToEnd(KafkaMessageBus bus, int rate, Duration duration) throws Exception {
    String topic = "bench-e2e-nis-" + UUID.randomUUID();
    int total = (int) (rate * duration.toSeconds());
    ConcurrentLinkedQueue<Long> latencies = new ConcurrentLinkedQueue<>();
    AtomicInteger seen = new AtomicInteger();
    AtomicInteger warmUps = new AtomicInteger();
    bus.subscribe(
        SubscriptionSpec.group("bench-e2e").withTopics(topic),
        d -> {
          long sent = ((Number) d.message().content().get("sent_nanos")).longValue();
          if (sent == 0) {
            warmUps.incrementAndGet();
            return;
          }
          latencies.add(System.nanoTime() - sent);
          seen.incrementAndGet();
        });
    // Measure from the moment the group receives: until then messages wait for the group to form.
    for (int i = 0; warmUps.get() == 0 && i < 600; i++) {
      bus.publish(message(topic, i, MessagePriority.NORMAL, 0));
      Thread.sleep(100);
    }
    paced(rate, total, i -> bus.publishAsync(message(topic, i, MessagePriority.NORMAL, System.nanoTime())));
    awaitCount(seen, total, Duration.ofSeconds(60));
    return percentiles(latencies);
  }

  private static double[] rawEndToEnd(KafkaProducer<byte[], byte[]> raw, String servers, int rate, Duration duration) throws Exception {
    String topic = "bench-e2e-raw-" + UUID.randomUUID();
    int total = (int) (rate * duration.toSeconds());
    ConcurrentLinkedQueue<Long> latencies = new ConcurrentLinkedQueue<>();
    AtomicInteger seen = new AtomicInteger();
    java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
    AtomicInteger warmUps = new AtomicInteger();
    createTopic(topic);
    Thread consumer =
        Thread.ofPlatform().start(() -> {
          Map<String, Object> props = new HashMap<>();
          props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, servers);
          props.put(ConsumerConfig.GROUP_ID_CONFIG, "bench-raw-e2e");
          props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
          props.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100);
          try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            c.subscribe(List.of(topic));
            while (seen.get() < total && !stop.get()) {
              c.poll(Duration.ofMillis(50)).forEach(r -> {
                if (r.value().length == 1) {
                  warmUps.incrementAndGet();
                } else if (r.value().length == 8) {
                  latencies.add(System.nanoTime() - java.nio.ByteBuffer.wrap(r.value()).getLong());
                  seen.incrementAndGet();
                }
              });
              c.commitAsync();
            }
          }
        });
    for (int i = 0; warmUps.get() == 0 && i < 600; i++) {
      raw.send(new ProducerRecord<>(topic, new byte[1])).get();
      Thread.sleep(100);
    }
    paced(rate, total, i -> raw.send(new ProducerRecord<>(topic,
        java.nio.ByteBuffer.allocate(8).putLong(System.nanoTime()).array())));
    awaitCount(seen, total, Duration.ofSeconds(60));
    stop.set(true);
    consumer.join();
    return percentiles(latencies);
  }

  /**
   * Backlogs 100,000 low messages behind a slow handler (1 ms each), then sends critical ones
   * every 50 ms; returns {p50, p99} in ms of their send-to-handler time.
   */
  private static double[] criticalBehindBacklog(String servers, Path spool, int partitions, int criticals) throws Exception {
    String topic = "bench-priority-" + partitions + "-" + UUID.randomUUID();
    KafkaBusConfig config =
        KafkaBusConfig.builder(servers).spoolDirectory(spool).topicPartitions(partitions).shutdownTimeout(Duration.ofSeconds(5)).build();
    ConcurrentLinkedQueue<Long> latencies = new ConcurrentLinkedQueue<>();
    AtomicInteger criticalSeen = new AtomicInteger();
    long[] sentAt = new long[criticals];
    java.util.Set<Integer> arrived = java.util.concurrent.ConcurrentHashMap.newKeySet();
    try (KafkaMessageBus bus = KafkaMessageBus.create(config)) {
      List<CompletableFuture<PublishReceipt>> backlog = new ArrayList<>();
      for (int i = 0; i < 100_000; i++) {
        backlog.add(bus.publishAsync(message(topic, i, MessagePriority.LOW, 0)));
      }
      CompletableFuture.allOf(backlog.toArray(CompletableFuture[]::new)).get();
      bus.subscribe(
          SubscriptionSpec.group("bench-priority").withTopics(topic),
          d -> {
            if (d.message().priority() == MessagePriority.CRITICAL) {
              latencies.add(System.nanoTime() - ((Number) d.message().content().get("sent_nanos")).longValue());
              arrived.add(((Number) d.message().content().get("i")).intValue());
              criticalSeen.incrementAndGet();
            } else {
              Thread.sleep(1);
            }
          });
      Thread.sleep(5_000); // the group forms and the handler is busy with the backlog
      for (int i = 0; i < criticals; i++) {
        sentAt[i] = System.nanoTime();
        bus.publish(message(topic, i, MessagePriority.CRITICAL, sentAt[i]));
        Thread.sleep(50);
      }
      awaitCount(criticalSeen, criticals, Duration.ofSeconds(partitions == 1 ? 20 : 60));
      // Still behind the backlog when the wait ends: count each as waiting until now (a lower bound).
      long now = System.nanoTime();
      for (int i = 0; i < criticals; i++) {
        if (!arrived.contains(i)) {
          latencies.add(now - sentAt[i]);
        }
      }
    }
    return percentiles(latencies);
  }

  private interface Sender {
    void send(int i) throws Exception;
  }

  private static void paced(int rate, int total, Sender sender) throws Exception {
    long interval = TimeUnit.SECONDS.toNanos(1) / rate;
    long next = System.nanoTime();
    for (int i = 0; i < total; i++) {
      long wait = next - System.nanoTime();
      if (wait > 0) {
        LockSupport.parkNanos(wait);
      }
      sender.send(i);
      next += interval;
    }
  }

  private static void awaitCount(AtomicInteger count, int expected, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (count.get() < expected && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
  }

  private static double[] percentiles(ConcurrentLinkedQueue<Long> nanos) {
    long[] sorted = nanos.stream().mapToLong(Long::longValue).sorted().toArray();
    if (sorted.length == 0) {
      return new double[] {Double.NaN, Double.NaN};
    }
    return new double[] {at(sorted, 0.50) / 1e6, at(sorted, 0.99) / 1e6};
  }

  private static long at(long[] sorted, double quantile) {
    int index = (int) Math.ceil(quantile * sorted.length) - 1;
    return sorted[Math.max(0, Math.min(sorted.length - 1, index))];
  }
}
