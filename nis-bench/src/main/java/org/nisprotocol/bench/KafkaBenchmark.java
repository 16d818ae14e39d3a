package org.nisprotocol.bench;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntFunction;
import java.util.function.ToDoubleFunction;
import javax.management.JMException;
import javax.management.ObjectName;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.Utils;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.MessagePriority;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.PublishReceipt;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.kafka.KafkaBusConfig;
import org.nisprotocol.kafka.KafkaMessageBus;
import org.nisprotocol.testkit.KafkaBroker;
import org.nisprotocol.testkit.TemporaryDirectory;

/**
 * Kafka bus against a raw {@link KafkaProducer} / {@link KafkaConsumer} with the same settings, on
 * one broker of its own, in one run: publish throughput (1 KiB messages), end-to-end latency at a
 * fixed 5,000 msg/s, and how long a critical message takes to reach its handler behind a backlog
 * of 100,000 low ones. Prints a table with the baselines and the ratios.
 *
 * <p>Run with {@code bin/nis bench kafka [messages]} (messages a side sends per throughput round,
 * default 40,000); {@code -Dnis.bench.parts=e2e,priority} (through {@code NIS_JAVA_OPTS}) runs only
 * some of throughput, e2e and priority; {@code -Dnis.bench.payload=letter} fills messages with one
 * letter instead of words.
 */
public final class KafkaBenchmark {
  private static final int PAYLOAD_BYTES = 1024;
  /**
   * Message text: distinct in every message of a batch, of words that repeat as they do in real
   * messages, so batches compress about as real traffic does (a run of one letter, the same in
   * every message, compressed to a tenth and left the broker little to do; it is still there
   * with {@code -Dnis.bench.payload=letter}). The run prints the compression rate the producers
   * reached.
   */
  private static final String[] FILLERS = "letter".equals(System.getProperty("nis.bench.payload"))
      ? new String[] {"x".repeat(PAYLOAD_BYTES - 60)}
      : fillers(1024, PAYLOAD_BYTES - 60);

  private static String[] fillers(int count, int chars) {
    String[] words = (
        "agent task result status score confidence update latency memory cache topic message priority "
        + "critical normal audit integrity scenario simulation outcome probability estimate plan step "
        + "goal context request response error retry timeout window sample value metric count total "
        + "mean median spread forecast risk reward policy action observation state reason summary "
        + "source target sensor reading temperature pressure velocity position heading battery load "
        + "queue worker shard replica leader follower offset partition consumer producer coordinator "
        + "health check ready alive degraded recovered failed pending accepted rejected completed "
        + "alpha beta gamma delta north south east west high low first second third next previous")
        .split(" ");
    String[] texts = new String[count];
    for (int i = 0; i < count; i++) {
      SplittableRandom random = new SplittableRandom(i);
      StringBuilder text = new StringBuilder(chars + 16);
      while (text.length() < chars) {
        text.append(words[random.nextInt(words.length)]);
        if (random.nextInt(8) == 0) {
          text.append(' ').append(random.nextInt(100_000));
        }
        text.append(' ');
      }
      text.setLength(chars);
      texts[i] = text.toString();
    }
    return texts;
  }

  private KafkaBenchmark() {}

  public static void main(String[] args) throws Exception {
    int messages = args.length > 0 ? Integer.parseInt(args[0]) : 40_000;
    try (TemporaryDirectory spoolDirectory = TemporaryDirectory.create("nis-bench-spool");
        KafkaBroker broker = KafkaBroker.builder()
            .name("bench-kafka")
            .maxHeap("1g")
            .forLoad()
            .brokerProperty("log.segment.delete.delay.ms", "0")
            .build()) {
      broker.start();
      Path spool = spoolDirectory.path();
      String servers = broker.bootstrapServers();
      KafkaBusConfig config =
          KafkaBusConfig.builder(servers).spoolDirectory(spool).topicPartitions(6).build();
      try (Admin admin = Admin.create(Map.of("bootstrap.servers", servers))) {
        Broker on = new Broker(admin, config.topicPartitions(), broker.processHandle());
        List<String[]> rows = new ArrayList<>();
        Set<String> parts =
            Set.of(System.getProperty("nis.bench.parts", "throughput,e2e,priority").split(","));
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (KafkaMessageBus bus = KafkaMessageBus.create(config, registry, Clock.systemUTC());
            KafkaProducer<byte[], byte[]> raw = rawProducer(servers, config)) {
          if (parts.contains("throughput")) {
            rows.addAll(throughputRows(on, bus, config.clientId() + "-producer", raw, messages));
          }
          if (parts.contains("e2e")) {
            double[] rawLatency = rawEndToEnd(on, raw, servers, 5_000, Duration.ofSeconds(10));
            double[] nisLatency = nisEndToEnd(bus, 5_000, Duration.ofSeconds(10));
            rows.add(row("end-to-end p50 at 5,000 msg/s (ms)", rawLatency[0], nisLatency[0], nisLatency[0] / rawLatency[0], "report"));
            rows.add(row("end-to-end p99 at 5,000 msg/s (ms)", rawLatency[1], nisLatency[1], nisLatency[1] / rawLatency[1], "report"));
          }
        }
        if (parts.contains("priority")) {
          double[] singleLane = criticalBehindBacklog(servers, spool.resolve("one-lane"), 1, BASELINE_CRITICALS);
          double[] lanes = criticalBehindBacklog(servers, spool.resolve("lanes"), 6, CRITICALS);
          rows.add(row("critical behind 100k low, p50 (ms)", singleLane[0], lanes[0], lanes[0] / singleLane[0], "report"));
          rows.add(row("critical behind 100k low, p99 (ms)", singleLane[1], lanes[1], lanes[1] / singleLane[1], "NIS < 100 ms"));
        }
        print(rows);
        if (parts.contains("priority")) {
          printPriorityNotes();
        }
      }
    }
  }

  /**
   * Rounds of the throughput comparison after the warm-up (default 60: each order of the sides in
   * half; with 20 the interval of the median ratio was about 0.2 wide, too wide
   * to tell 0.85 from 0.95 on this machine).
   */
  private static final int ROUNDS = Integer.getInteger("nis.bench.rounds", 60);

  /** At most this many measured rounds run again after a side could not send all its messages. */
  private static final int MAX_REPEATED_ROUNDS = 5;

  /** Waits (a minute at most) until the bus has sent what a disturbed round left in its spool. */
  private static void awaitEmptySpool(KafkaMessageBus bus) throws InterruptedException {
    for (int i = 0; i < 600 && bus.spooledMessages() > 0; i++) {
      Thread.sleep(100);
    }
    if (bus.spooledMessages() > 0) {
      throw new IllegalStateException(bus.spooledMessages() + " messages are still in the spool after a minute");
    }
  }

  /** At most this many warm-up rounds before the measured ones. */
  private static final int MAX_WARM_UP_ROUNDS = 30;

  /** The JIT is taken to be done when a warm-up round made it compile for less than this. */
  private static final Duration QUIET_JIT = Duration.ofMillis(50);

  /**
   * Raw and NIS publish the same number of messages back to back, in alternating order, round
   * after round; each round gives a ratio of the two. Rounds are short (a fraction of a second
   * each side) and many: a machine whose load drifts (other processes, a virtual machine's
   * stolen time) then moves both sides of a round alike, and the medians shown are not decided
   * by a few disturbed rounds. Each side waits for all its acknowledgements at the end of a
   * round; its rate is taken in the middle of the round (see {@link Outcomes}). A third side, for
   * the report only, is the raw producer encoding the messages to JSON as it sends them (what an
   * application on raw Kafka would do with such messages); NIS runs between the two raw sides,
   * so it is next to each in every round, and each goes before it in half of the rounds.
   */
  private static List<String[]> throughputRows(
      Broker on, KafkaMessageBus bus, String busClientId, KafkaProducer<byte[], byte[]> raw, int messages)
      throws Exception {
    // One topic a side for every round: a new partition's first seconds can stall an idempotent
    // producer (a first request retried behind a later one that succeeded), which would land
    // on one side of one round at random. The warm-up rounds take those seconds.
    String rawTopic = "bench-raw-" + UUID.randomUUID();
    String rawJsonTopic = "bench-raw-json-" + UUID.randomUUID();
    String nisTopic = "bench-nis-" + UUID.randomUUID();
    on.createTopic(rawTopic);
    on.createTopic(rawJsonTopic);
    RawInput rawInput = RawInput.of(rawTopic, on.partitions(), messages);
    NisMessage[] nisInput = nisInput(nisTopic, messages);
    MessageCodec codec = MessageCodec.create();
    Sides sides = new Sides(
        on, raw, rawInput, bus, nisInput, rawInput.onTopic(rawJsonTopic), i -> codec.encode(nisInput[i]));
    // Warm up until the JIT has compiled every side's code: its compiler threads take CPU from
    // whichever side runs meanwhile, and on a small machine that lasts tens of seconds.
    var jit = ManagementFactory.getCompilationMXBean();
    int warmUps = 0;
    long compiled;
    do {
      long before = jit.getTotalCompilationTime();
      try {
        sides.round(true);
        compiled = jit.getTotalCompilationTime() - before;
      } catch (IllegalStateException e) {
        System.out.println("warm-up round " + (warmUps + 1) + " disturbed: " + e.getMessage());
        awaitEmptySpool(bus);
        compiled = Long.MAX_VALUE; // not every side ran: the JIT may not be done
      }
      warmUps++;
    } while (compiled >= QUIET_JIT.toMillis() && warmUps < MAX_WARM_UP_ROUNDS);
    System.out.println("warm-up: " + warmUps + " rounds, the JIT "
        + (compiled == Long.MAX_VALUE ? "not known to be done" : "compiled for " + compiled + " ms in the last"));
    awaitEmptySpool(bus);
    Rate[] rawRates = new Rate[ROUNDS];
    Rate[] nisRates = new Rate[ROUNDS];
    Rate[] rawJsonRates = new Rate[ROUNDS];
    int repeated = 0;
    for (int round = 0; round < ROUNDS; round++) {
      try {
        Rate[] rates = sides.round(round % 2 == 0);
        rawRates[round] = rates[0];
        nisRates[round] = rates[1];
        rawJsonRates[round] = rates[2];
      } catch (IllegalStateException e) {
        // A side could not send (the machine stalled past a send timeout): the round says
        // nothing about the two, so it runs again, a few times at most.
        if (++repeated > MAX_REPEATED_ROUNDS) {
          throw new IllegalStateException("more than " + MAX_REPEATED_ROUNDS + " rounds were disturbed", e);
        }
        System.out.println("round " + (round + 1) + " disturbed, run again: " + e.getMessage());
        awaitEmptySpool(bus);
        round--;
      }
    }
    if (repeated > 0) {
      System.out.println(repeated + " disturbed rounds were run again");
    }
    checkSameLayout(on, rawTopic, nisTopic);
    // Deleted (the broker of the benchmark removes their files at once), the throughput part's
    // data does not weigh on the parts that follow while they measure latencies.
    on.admin().deleteTopics(List.of(rawTopic, rawJsonTopic, nisTopic)).all().get(1, TimeUnit.MINUTES);
    printRounds("throughput per round, NIS / raw (msg/s):", Rate::perSecond, "%,.0f", nisRates, rawRates);
    printRounds("throughput per round, NIS / raw encoding as it sends (msg/s):",
        Rate::perSecond, "%,.0f", nisRates, rawJsonRates);
    printRounds("CPU in the publish calls per message per round, NIS / raw (µs):",
        Rate::publishingMicrosPerMessage, "%.2f", nisRates, rawRates);
    printRounds("CPU of this JVM and the broker per message per round, NIS / raw (µs):",
        Rate::cpuMicrosPerMessage, "%.1f", nisRates, rawRates);
    printRounds("CPU of the broker per message per round, NIS / raw (µs):",
        Rate::brokerMicrosPerMessage, "%.1f", nisRates, rawRates);
    printProducerMetrics("raw (both raw sides)", RAW_CLIENT_ID);
    printProducerMetrics("NIS", busClientId);
    return List.of(
        medianRow("publish throughput, 1 KiB, " + PUBLISHERS + " threads (msg/s)",
            Rate::perSecond, rawRates, nisRates, "see interval"),
        intervalRow("  95% interval of that median ratio", Rate::perSecond, rawRates, nisRates, "low end ≥ 0.90"),
        medianRow("  vs raw encoding the messages as it sends (msg/s)",
            Rate::perSecond, rawJsonRates, nisRates, "report"),
        intervalRow("  95% interval of that median ratio", Rate::perSecond, rawJsonRates, nisRates, "report"),
        meanRow("CPU in the publish calls per message (µs)", Rate::publishingMicrosPerMessage, rawRates, nisRates),
        new String[] {"  of which NIS encoding to JSON (µs)", "-",
            String.format(Locale.ROOT, "%.1f", encodingMicros(nisInput)), "-", "report"},
        meanRow("CPU of client JVM + broker per message (µs)", Rate::cpuMicrosPerMessage, rawRates, nisRates));
  }

  private static final String RAW_CLIENT_ID = "bench-raw";

  /**
   * Checks that the bus wrote each partition the same share of the messages as the raw side, to
   * which the benchmark gives its own copy of the bus's partition rule: were the two to differ,
   * the sides would batch differently and their comparison would say nothing. (Shares, not
   * counts: a disturbed round that ran again left more messages on one side.)
   */
  private static void checkSameLayout(Broker on, String rawTopic, String nisTopic) throws Exception {
    double[] raw = partitionShares(on, rawTopic);
    double[] nis = partitionShares(on, nisTopic);
    for (int p = 0; p < raw.length; p++) {
      if (Math.abs(raw[p] - nis[p]) > 0.01) {
        throw new IllegalStateException(String.format(Locale.ROOT,
            "partition %d holds %.3f of the bus's messages but %.3f of the raw side's: the benchmark's"
                + " copy of the bus's partition rule (RawInput.of) no longer matches the bus",
            p, nis[p], raw[p]));
      }
    }
    System.out.println("topic layout: the bus and the raw side wrote the same share to each partition "
        + Arrays.toString(Arrays.stream(nis).mapToObj(x -> String.format(Locale.ROOT, "%.3f", x)).toArray()));
  }

  /** Each partition's share of the records in a topic. */
  private static double[] partitionShares(Broker on, String topic) throws Exception {
    Map<TopicPartition, OffsetSpec> ends = new HashMap<>();
    for (int p = 0; p < on.partitions(); p++) {
      ends.put(new TopicPartition(topic, p), OffsetSpec.latest());
    }
    var offsets = on.admin().listOffsets(ends).all().get(1, TimeUnit.MINUTES);
    double[] shares = new double[on.partitions()];
    long total = 0;
    for (int p = 0; p < shares.length; p++) {
      long records = offsets.get(new TopicPartition(topic, p)).offset();
      shares[p] = records;
      total += records;
    }
    for (int p = 0; p < shares.length; p++) {
      shares[p] /= Math.max(1, total);
    }
    return shares;
  }

  /** The three sides of a throughput round and what each publishes. */
  private record Sides(
      Broker on,
      KafkaProducer<byte[], byte[]> raw,
      RawInput rawInput,
      KafkaMessageBus bus,
      NisMessage[] nisInput,
      RawInput rawJsonInput,
      IntFunction<byte[]> encodedAsSent) {

    /** Runs each side once, NIS between the two raw sides: {raw, NIS, raw encoding}. */
    Rate[] round(boolean rawFirst) throws Exception {
      Rate first = raw(!rawFirst);
      Rate nis = nisThroughput(on, bus, nisInput);
      Rate last = raw(rawFirst);
      return rawFirst ? new Rate[] {first, nis, last} : new Rate[] {last, nis, first};
    }

    private Rate raw(boolean encoding) throws Exception {
      return encoding
          ? rawThroughput(on, "raw encoding", raw, rawJsonInput, encodedAsSent)
          : rawThroughput(on, raw, rawInput);
    }
  }

  /**
   * CPU per message to encode the round's messages to JSON on one thread (median of five passes),
   * the part of the bus's publish call that the raw producer, given the bytes, does not do.
   */
  private static double encodingMicros(NisMessage[] messages) {
    MessageCodec codec = MessageCodec.create();
    var threads = ManagementFactory.getThreadMXBean();
    double[] passes = new double[5];
    long bytes = 0;
    for (int pass = 0; pass < passes.length; pass++) {
      long start = threads.getCurrentThreadCpuTime();
      for (NisMessage message : messages) {
        bytes += codec.encode(message).length;
      }
      passes[pass] = (threads.getCurrentThreadCpuTime() - start) / 1e3 / messages.length;
    }
    if (bytes == 0) {
      throw new IllegalStateException("nothing was encoded");
    }
    return median(passes);
  }

  /** How a producer batched in the last rounds (Kafka's own metrics, over its last 30 s or so). */
  private static void printProducerMetrics(String side, String clientId) {
    StringBuilder line = new StringBuilder("producer metrics, " + side + ":");
    try {
      var server = ManagementFactory.getPlatformMBeanServer();
      var name = new ObjectName("kafka.producer:type=producer-metrics,client-id=" + clientId);
      for (String metric : List.of("records-per-request-avg", "batch-size-avg", "compression-rate-avg",
          "request-rate", "record-queue-time-avg", "io-ratio", "io-wait-ratio")) {
        Object value = server.getAttribute(name, metric);
        line.append(String.format(Locale.ROOT, " %s=%.3f", metric, ((Number) value).doubleValue()));
      }
    } catch (JMException e) {
      line.append(" unavailable (").append(e).append(')');
    }
    System.out.println(line);
  }

  /** A row of the medians of a figure over the rounds, with the median of the rounds' ratios. */
  private static String[] medianRow(
      String what, ToDoubleFunction<Rate> figure, Rate[] raw, Rate[] nis, String target) {
    return row(what, median(figure, raw), median(figure, nis), median(ratios(figure, raw, nis)), target);
  }

  /** Each round's NIS / raw ratio of a figure. */
  private static double[] ratios(ToDoubleFunction<Rate> figure, Rate[] raw, Rate[] nis) {
    double[] ratios = new double[raw.length];
    for (int round = 0; round < raw.length; round++) {
      ratios[round] = figure.applyAsDouble(nis[round]) / figure.applyAsDouble(raw[round]);
    }
    return ratios;
  }

  /**
   * A row of the distribution-free 95% confidence interval of the median of the rounds' ratios:
   * the k-th smallest and k-th largest ratio, k the largest with P(Binomial(n, 1/2) < k) <= 2.5%.
   * The rounds' ratios scatter widely on a shared machine; the target is verified only when the
   * interval's low end meets it.
   */
  private static String[] intervalRow(
      String what, ToDoubleFunction<Rate> figure, Rate[] raw, Rate[] nis, String target) {
    double[] ratios = ratios(figure, raw, nis);
    Arrays.sort(ratios);
    int k = medianIntervalRank(ratios.length);
    String interval = k == 0
        ? "too few rounds"
        : String.format(Locale.ROOT, "%.2f-%.2f", ratios[k - 1], ratios[ratios.length - k]);
    return new String[] {what, "-", "-", interval, target};
  }

  /** The rank k of the 95% interval of a median of n samples (0 when n is too small for one). */
  static int medianIntervalRank(int n) {
    if (n > 1_000) {
      throw new IllegalArgumentException("at most 1,000 rounds, got " + n); // 0.5^n underflows past 1,074
    }
    double below = 0; // P(X < k) for X ~ Binomial(n, 1/2)
    double term = Math.pow(0.5, n); // P(X = k)
    int k = 0;
    while (k < n / 2 && below + term <= 0.025) {
      below += term;
      term = term * (n - k) / (k + 1);
      k++;
    }
    return k;
  }

  /**
   * A row of the means of a CPU figure over the rounds (process CPU time comes in ticks of 10 ms,
   * too coarse for one round), with their ratio.
   */
  private static String[] meanRow(String what, ToDoubleFunction<Rate> figure, Rate[] raw, Rate[] nis) {
    double rawMean = Arrays.stream(raw).mapToDouble(figure).average().orElseThrow();
    double nisMean = Arrays.stream(nis).mapToDouble(figure).average().orElseThrow();
    return row(what, rawMean, nisMean, nisMean / rawMean, "report");
  }

  private static void printRounds(
      String title, ToDoubleFunction<Rate> figure, String format, Rate[] nis, Rate[] raw) {
    StringBuilder line = new StringBuilder(title);
    for (int round = 0; round < raw.length; round++) {
      double n = figure.applyAsDouble(nis[round]);
      double r = figure.applyAsDouble(raw[round]);
      line.append(String.format(Locale.ROOT, " %.2f (" + format + " / " + format + ")", n / r, n, r));
    }
    System.out.println(line);
  }

  /**
   * A side's throughput in a round, and the CPU time spent per message: by the publishing threads
   * (the publish calls themselves), by this whole JVM (with the producer's network thread, the
   * garbage collector, the JIT), and by the broker.
   */
  private record Rate(
      double perSecond, double publishingMicrosPerMessage, double clientMicrosPerMessage, double brokerMicrosPerMessage) {
    double cpuMicrosPerMessage() {
      return clientMicrosPerMessage + brokerMicrosPerMessage;
    }
  }

  private static double median(ToDoubleFunction<Rate> figure, Rate[] rates) {
    return median(Arrays.stream(rates).mapToDouble(figure).toArray());
  }

  private static double median(double[] values) {
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    int middle = sorted.length / 2;
    return sorted.length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  }

  /** Ordering keys (target agents) the messages are spread over. */
  private static final int KEYS = 64;

  /**
   * The broker of the run: where raw topics are created (with the bus's partition count, not the
   * broker's default), and whose process's CPU time counts with this JVM's.
   */
  private record Broker(Admin admin, int partitions, ProcessHandle process) {

    /**
     * Creates a topic for the raw clients with the bus's partition count and waits for its
     * partitions' leaders (the warm-up rounds take whatever start-up the partitions still need).
     */
    void createTopic(String topic) throws Exception {
      admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
      for (int i = 0; i < 200; i++) {
        try {
          var description = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
          if (description.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty())) {
            // A leader named in the metadata may not serve yet: ready when all answer an
            // end-offset request (as the bus waits for its own topics).
            Map<TopicPartition, OffsetSpec> ends = new HashMap<>();
            description.partitions().forEach(p -> ends.put(
                new TopicPartition(topic, p.partition()),
                OffsetSpec.latest()));
            admin.listOffsets(ends).all().get(5, TimeUnit.SECONDS);
            return;
          }
        } catch (ExecutionException | TimeoutException e) {
          // not known to the broker's metadata yet, or its leaders do not serve yet
        }
        Thread.sleep(50);
      }
      throw new IllegalStateException("topic " + topic + " was not ready to be written after 200 tries");
    }

    /** CPU time this JVM has used so far. */
    static long clientCpuNanos() {
      return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
          .getProcessCpuTime();
    }

    /** CPU time the broker has used so far. */
    long brokerCpuNanos() {
      return process.info().totalCpuDuration()
          .orElseThrow(() -> new IllegalStateException("the broker's CPU time cannot be read"))
          .toNanos();
    }
  }

  private static String[] row(String what, double baseline, double nis, double ratio, String target) {
    return new String[] {
      what, String.format(Locale.ROOT, "%,.1f", baseline), String.format(Locale.ROOT, "%,.1f", nis),
      String.format(Locale.ROOT, "%.2f", ratio), target
    };
  }

  private static void print(List<String[]> rows) {
    String format = "%-46s %16s %16s %9s %14s%n";
    System.out.printf(format, "measure", "baseline (raw)", "NIS", "ratio", "target");
    rows.forEach(r -> System.out.printf(format, (Object[]) r));
    String[] notes = {
      "throughput: medians over " + ROUNDS + " short rounds after a warm-up that lasts until the JIT is done;",
      "  in each round raw, NIS and raw encoding run back to back (NIS in the middle, the raw sides in turn",
      "  first); a side's rate is taken between its 10th and 90th percent of acknowledgements, each counted",
      "  by a callback per message; the ratio is the median of the rounds' ratios; CPU: means over the rounds;",
      "  -Dnis.bench.rounds=N and -Dnis.bench.publishers=N set rounds and threads;",
      "  message text: words, different in each message of a batch (-Dnis.bench.payload=letter: one",
      "  letter repeated, the same in every message);",
      "baseline for throughput and end-to-end: raw KafkaProducer/KafkaConsumer, same settings, broker and",
      "  topic layout; for throughput all sides get the same messages made before the first round: the raw",
      "  producer their JSON bytes, the bus NisMessage objects (its clock includes encoding them), and the",
      "  raw-encoding side the NisMessage objects, encoded with the bus's codec in its send loop;",
      "  for end-to-end the raw producer encodes each message as it sends it and the raw consumer decodes it;",
    };
    for (String note : notes) {
      System.out.println(note);
    }
  }

  private static void printPriorityNotes() {
    System.out.printf(Locale.ROOT,
        "critical messages: %,d with the urgent lane, one every %d ms (the p99 is the %,dth of them);"
            + " baseline: NIS with one partition (no urgent lane), %d of them, counted as still waiting when not"
            + " handled in %d s; the handler takes %d ms for each low message%n",
        CRITICALS, CRITICAL_SPACING.toMillis(), (int) Math.ceil(0.99 * CRITICALS), BASELINE_CRITICALS,
        BASELINE_WAIT.toSeconds(), LOW_HANDLING.toMillis());
  }

  private static NisMessage message(String topic, int i, MessagePriority priority, long sentNanos) {
    return NisMessage.builder(MessageType.PERFORMANCE_METRIC, "bench")
        .topic(topic)
        .priority(priority)
        .targetAgent("agent-" + (i % KEYS))
        .content(Map.of("i", i, "sent_nanos", sentNanos, "filler", FILLERS[i % FILLERS.length]))
        .build();
  }

  private static KafkaProducer<byte[], byte[]> rawProducer(String servers, KafkaBusConfig config) {
    Map<String, Object> props = new HashMap<>();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, servers);
    props.put(ProducerConfig.CLIENT_ID_CONFIG, RAW_CLIENT_ID);
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
    props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 5_000);
    props.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Math.max(1_048_576, config.maxContentBytes() + 64 * 1024));
    return new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer());
  }

  /** Publishing threads in the throughput runs, the same for raw and NIS (default 2). */
  private static final int PUBLISHERS = Integer.getInteger("nis.bench.publishers", 2);

  /**
   * One side's round: counts the outcome of every message as its callback reports it, and notes
   * when the 10th and the 90th percent of the messages were acknowledged. The rate is taken
   * between the two: the steady state, without the start of a round and the wait for its last
   * acknowledgements (a cost the same for both sides would pull their ratio towards 1). Both
   * sides report through the same calls, on the producer's thread, at the same cost.
   */
  private static final class Outcomes {
    private final int count;
    private final long first;
    private final long last;
    private final AtomicLong acknowledged = new AtomicLong();
    private final AtomicInteger spooled = new AtomicInteger();
    private final AtomicReference<Throwable> firstError = new AtomicReference<>();
    private final AtomicInteger failed = new AtomicInteger();
    private final CountDownLatch settled;
    private volatile long firstAt;
    private volatile long lastAt;

    Outcomes(int count) {
      this.count = count;
      this.first = Math.max(1, count / 10);
      this.last = count - count / 10;
      this.settled = new CountDownLatch(count);
    }

    void acknowledged() {
      long n = acknowledged.incrementAndGet();
      if (n == first) {
        firstAt = System.nanoTime();
      }
      if (n == last) {
        lastAt = System.nanoTime();
      }
      settled.countDown();
    }

    void spooled() {
      spooled.incrementAndGet();
      settled.countDown();
    }

    void failed(Throwable error) {
      failed.incrementAndGet();
      firstError.compareAndSet(null, error);
      settled.countDown();
    }

    /** Messages a publisher did not get to publish (it failed): counted as settled, failed. */
    void abandoned(int messages, Throwable error) {
      for (int i = 0; i < messages; i++) {
        failed(error);
      }
    }

    /** Waits until every message is settled; the messages per second, or an error saying why not. */
    double perSecond(String side, Duration atMost) throws InterruptedException {
      if (!settled.await(atMost.toNanos(), TimeUnit.NANOSECONDS)) {
        throw new IllegalStateException(side + ": " + settled.getCount() + " of " + count
            + " messages had no outcome after " + ROUND_TIMEOUT);
      }
      if (failed.get() > 0) {
        throw new IllegalStateException(
            side + ": " + failed.get() + " of " + count + " publishes failed; the first: " + firstError.get(),
            firstError.get());
      }
      if (spooled.get() > 0) {
        throw new IllegalStateException(
            side + ": " + spooled.get() + " of " + count + " messages went to the spool, not to Kafka");
      }
      if (lastAt <= firstAt) {
        throw new IllegalStateException(side + ": no time passed between the 10th and 90th percent of acks");
      }
      return (last - first) / ((lastAt - firstAt) / 1e9);
    }
  }

  private static Duration remaining(long deadlineNanos) {
    return Duration.ofNanos(Math.max(0, deadlineNanos - System.nanoTime()));
  }

  /** Longest a throughput round may take to settle every message (the bus's send timeout is 15 s). */
  private static final Duration ROUND_TIMEOUT = Duration.ofMinutes(2);

  private interface Publisher {
    void publish(int index, Outcomes outcomes) throws Exception;
  }

  /**
   * Runs the publisher on {@link #PUBLISHERS} threads over [0, count), each over its own slice, and
   * waits until every message is settled; see {@link Outcomes} for the rate.
   */
  private static Rate timed(Broker on, String side, int count, Publisher publisher) throws Exception {
    Outcomes outcomes = new Outcomes(count);
    AtomicLong publishingNanos = new AtomicLong();
    List<Thread> threads = new ArrayList<>();
    long clientStart = Broker.clientCpuNanos();
    long brokerStart = on.brokerCpuNanos();
    for (int t = 0; t < PUBLISHERS; t++) {
      int from = count / PUBLISHERS * t;
      int to = t == PUBLISHERS - 1 ? count : count / PUBLISHERS * (t + 1);
      threads.add(Thread.ofPlatform().daemon().start(() -> {
        int i = from;
        try {
          for (; i < to; i++) {
            publisher.publish(i, outcomes);
          }
        } catch (Exception | Error e) {
          outcomes.abandoned(to - i, e);
        } finally {
          publishingNanos.addAndGet(ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime());
        }
      }));
    }
    long deadline = System.nanoTime() + ROUND_TIMEOUT.toNanos();
    for (Thread thread : threads) {
      if (!thread.join(remaining(deadline))) {
        throw new IllegalStateException(side + ": a publisher was still publishing after " + ROUND_TIMEOUT);
      }
    }
    double perSecond = outcomes.perSecond(side, remaining(deadline));
    long client = Broker.clientCpuNanos() - clientStart;
    long broker = on.brokerCpuNanos() - brokerStart;
    return new Rate(perSecond, publishingNanos.get() / 1e3 / count, client / 1e3 / count, broker / 1e3 / count);
  }

  /**
   * What the raw producer sends: the bytes the bus would send for the same messages, encoded
   * once before the first round (distinct messages: a batch of identical records would compress
   * far better than real traffic).
   */
  private record RawInput(String topic, byte[][] keys, int[] partitions, byte[][] values) {
    /**
     * The messages' bytes, keys, and each key's partition as the bus picks it: the last
     * partition is its urgent lane, so normal messages hash over the others (the raw producer's
     * own partitioner would spread them over all, in smaller batches).
     */
    static RawInput of(String topic, int partitionCount, int count) {
      MessageCodec codec = MessageCodec.create();
      byte[][] values = new byte[count][];
      for (int i = 0; i < count; i++) {
        values[i] = codec.encode(message(topic, i, MessagePriority.NORMAL, 0));
      }
      byte[][] keys = new byte[KEYS][];
      int[] partitions = new int[KEYS];
      for (int key = 0; key < KEYS; key++) {
        keys[key] = ("agent-" + key).getBytes(StandardCharsets.UTF_8);
        partitions[key] = partitionCount < 2 ? 0 : Utils.toPositive(Utils.murmur2(keys[key])) % (partitionCount - 1);
      }
      return new RawInput(topic, keys, partitions, values);
    }

    /** The i-th message's record with the given value: its key, on the key's partition. */
    ProducerRecord<byte[], byte[]> record(int i, byte[] value) {
      return new ProducerRecord<>(topic, partitions[i % KEYS], keys[i % KEYS], value);
    }

    RawInput onTopic(String other) {
      return new RawInput(other, keys, partitions, values);
    }
  }

  /**
   * What the bus publishes: the same messages, made once before the first round as the raw
   * side's bytes are; the clock covers publishing, which for the bus includes encoding to JSON.
   */
  private static NisMessage[] nisInput(String topic, int count) {
    NisMessage[] messages = new NisMessage[count];
    for (int i = 0; i < count; i++) {
      messages[i] = message(topic, i, MessagePriority.NORMAL, 0);
    }
    return messages;
  }

  private static Rate rawThroughput(Broker on, KafkaProducer<byte[], byte[]> raw, RawInput input) throws Exception {
    byte[][] values = input.values();
    return rawThroughput(on, "raw", raw, input, i -> values[i]);
  }

  /** The raw producer sends the i-th value for every i of the input, keyed as the input is. */
  private static Rate rawThroughput(
      Broker on, String side, KafkaProducer<byte[], byte[]> raw, RawInput input, IntFunction<byte[]> value)
      throws Exception {
    return timed(on, side, input.values().length, (i, outcomes) -> raw.send(
        input.record(i, value.apply(i)),
        (metadata, error) -> {
          if (error == null) {
            outcomes.acknowledged();
          } else {
            outcomes.failed(error);
          }
        }));
  }

  private static Rate nisThroughput(Broker on, KafkaMessageBus bus, NisMessage[] messages) throws Exception {
    return timed(on, "NIS", messages.length, (i, outcomes) -> bus.publishAsync(messages[i]).whenComplete(
        (receipt, error) -> {
          if (error != null) {
            outcomes.failed(error);
          } else if (receipt.status() == PublishReceipt.Status.SENT) {
            outcomes.acknowledged();
          } else {
            outcomes.spooled();
          }
        }));
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

  /**
   * The raw producer and consumer at a fixed rate, with what an application on raw Kafka does for
   * the same traffic: it encodes each message as it sends it (with the bus's codec), on the
   * partition the bus would pick for its key, and the consumer decodes it. Returns {p50, p99} in
   * ms of send-to-consumer time.
   */
  private static double[] rawEndToEnd(
      Broker on, KafkaProducer<byte[], byte[]> raw, String servers, int rate, Duration duration) throws Exception {
    String topic = "bench-e2e-raw-" + UUID.randomUUID();
    int total = (int) (rate * duration.toSeconds());
    RawInput layout = RawInput.of(topic, on.partitions(), 0);
    MessageCodec codec = MessageCodec.create();
    ConcurrentLinkedQueue<Long> latencies = new ConcurrentLinkedQueue<>();
    AtomicInteger seen = new AtomicInteger();
    AtomicBoolean stop = new AtomicBoolean();
    AtomicInteger warmUps = new AtomicInteger();
    on.createTopic(topic);
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
                long sent = ((Number) codec.decode(r.value()).content().get("sent_nanos")).longValue();
                if (sent == 0) {
                  warmUps.incrementAndGet();
                } else {
                  latencies.add(System.nanoTime() - sent);
                  seen.incrementAndGet();
                }
              });
              c.commitAsync();
            }
          }
        });
    for (int i = 0; warmUps.get() == 0 && i < 600; i++) {
      raw.send(layout.record(i, codec.encode(message(topic, i, MessagePriority.NORMAL, 0)))).get();
      Thread.sleep(100);
    }
    paced(rate, total, i -> raw.send(layout.record(i, codec.encode(message(topic, i, MessagePriority.NORMAL, System.nanoTime())))));
    awaitCount(seen, total, Duration.ofSeconds(60));
    stop.set(true);
    consumer.join();
    return percentiles(latencies);
  }

  /** Low messages backlogged before the critical ones are sent. */
  private static final int BACKLOG = 100_000;

  /** Critical messages sent behind the backlog with the urgent lane, and how far apart. */
  private static final int CRITICALS = 1_000;
  private static final Duration CRITICAL_SPACING = Duration.ofMillis(20);

  /** Without the lane they wait out the backlog: a few, each counted as waiting at most this long. */
  private static final int BASELINE_CRITICALS = 5;
  private static final Duration BASELINE_WAIT = Duration.ofSeconds(20);

  /**
   * How long the handler takes for each low message: five per-partition workers then get through
   * about a thousand a second, so the backlog outlasts the critical messages of the lane run.
   */
  private static final Duration LOW_HANDLING = Duration.ofMillis(5);

  /**
   * Backlogs 100,000 low messages behind a slow handler, then sends critical ones 20 ms apart,
   * each after the previous one's publish call returned; returns {p50, p99} in ms of their
   * send-to-handler time, and prints the slowest with their publish calls and how many low
   * messages were still waiting when the last critical one was sent.
   */
  private static double[] criticalBehindBacklog(String servers, Path spool, int partitions, int criticals) throws Exception {
    String topic = "bench-priority-" + partitions + "-" + UUID.randomUUID();
    KafkaBusConfig config =
        KafkaBusConfig.builder(servers).spoolDirectory(spool).topicPartitions(partitions).shutdownTimeout(Duration.ofSeconds(5)).build();
    AtomicInteger criticalSeen = new AtomicInteger();
    AtomicInteger lowSeen = new AtomicInteger();
    long[] sentAt = new long[criticals];
    long[] ackedAfter = new long[criticals];
    // Each critical message's latency, by the order it was sent in; 0 until it first arrives.
    AtomicLongArray latencies = new AtomicLongArray(criticals);
    int lowLeft;
    try (KafkaMessageBus bus = KafkaMessageBus.create(config)) {
      List<CompletableFuture<PublishReceipt>> backlog = new ArrayList<>();
      for (int i = 0; i < BACKLOG; i++) {
        backlog.add(bus.publishAsync(message(topic, i, MessagePriority.LOW, 0)));
      }
      CompletableFuture.allOf(backlog.toArray(CompletableFuture[]::new)).get();
      backlog.clear();
      bus.subscribe(
          SubscriptionSpec.group("bench-priority").withTopics(topic),
          d -> {
            if (d.message().priority() == MessagePriority.CRITICAL) {
              long latency = System.nanoTime() - ((Number) d.message().content().get("sent_nanos")).longValue();
              int i = ((Number) d.message().content().get("i")).intValue();
              if (latencies.compareAndSet(i, 0, latency)) {
                criticalSeen.incrementAndGet(); // a redelivery counts once
              }
            } else {
              Thread.sleep(LOW_HANDLING);
              lowSeen.incrementAndGet();
            }
          });
      Thread.sleep(5_000); // the group forms and the handler is busy with the backlog
      for (int i = 0; i < criticals; i++) {
        sentAt[i] = System.nanoTime();
        bus.publish(message(topic, i, MessagePriority.CRITICAL, sentAt[i]));
        ackedAfter[i] = System.nanoTime() - sentAt[i];
        Thread.sleep(CRITICAL_SPACING);
      }
      lowLeft = BACKLOG - lowSeen.get();
      awaitCount(criticalSeen, criticals, partitions == 1 ? BASELINE_WAIT : Duration.ofSeconds(60));
      // Still behind the backlog when the wait ends: count each as waiting until now (a lower bound).
      long now = System.nanoTime();
      for (int i = 0; i < criticals; i++) {
        latencies.compareAndSet(i, 0, now - sentAt[i]);
      }
    }
    long[] inSendOrder = new long[criticals];
    for (int i = 0; i < criticals; i++) {
      inSendOrder[i] = latencies.get(i);
    }
    System.out.println(slowest(inSendOrder, ackedAfter, 10, partitions, lowLeft));
    return percentiles(inSendOrder);
  }

  /**
   * A line naming the {@code count} slowest critical messages: send index, send-to-handler time,
   * and the part of it their publish call took (send to the broker's acknowledgement).
   */
  static String slowest(long[] latencies, long[] publishCalls, int count, int partitions, int lowLeft) {
    Integer[] order = new Integer[latencies.length];
    Arrays.setAll(order, i -> i);
    Arrays.sort(order, (a, b) -> Long.compare(latencies[b], latencies[a]));
    StringBuilder line = new StringBuilder(String.format(Locale.ROOT,
        "%d critical messages, %d partitions, about %,d low ones still waiting after the last was sent;"
            + " slowest (send index: ms to handler, of it publish call):",
        latencies.length, partitions, lowLeft));
    for (int k = 0; k < Math.min(count, order.length); k++) {
      int i = order[k];
      line.append(String.format(Locale.ROOT, " #%d: %.1f/%.1f", i, latencies[i] / 1e6, publishCalls[i] / 1e6));
    }
    return line.toString();
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
    return percentiles(nanos.stream().mapToLong(Long::longValue).toArray());
  }

  private static double[] percentiles(long[] nanos) {
    long[] sorted = nanos.clone();
    Arrays.sort(sorted);
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
