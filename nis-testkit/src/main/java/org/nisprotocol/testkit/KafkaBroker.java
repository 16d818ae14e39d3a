package org.nisprotocol.testkit;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * A real Apache Kafka broker (the version nis-testkit's pom names, 4.3.x) in KRaft mode, one node that is both
 * broker and controller, running in its own JVM so a test can kill, pause and restart it.
 *
 * <p>It listens on two free loopback ports (a PLAINTEXT listener for clients and a CONTROLLER listener), keeps its
 * data in a temporary directory, and is configured for tests: internal topics with one replica, min ISR 1, no
 * initial rebalance delay, topics created on first use, one partition per topic, a small heap. The broker's jars
 * come from {@code kafka-broker.classpath}, a resource Maven writes when it builds nis-testkit; this class uses no
 * Kafka class itself. Its log goes to {@code server.log} in the temporary directory (the directory is named in
 * every failure message).
 *
 * <pre>{@code
 * try (KafkaBroker broker = KafkaBroker.builder().name("faults").build()) {
 *     broker.start();
 *     ... broker.bootstrapServers() ...
 *     broker.kill();
 *     broker.restart();   // same port, same data
 * }
 * }</pre>
 *
 * <p>Faults, as a client sees them: after {@link #kill()} and {@link #restart()} the broker is ready (this waits for
 * it) a few seconds later, once the controller has expired the dead broker's session (3 s here, instead of 9 s).
 * While {@link #pause() paused} the broker accepts TCP connections but answers nothing; right after a pause of more
 * than 3 s the controller may fence it until its next heartbeat, half a second, so clients see retriable errors for
 * a moment.
 *
 * <p>Start-up takes about 2 to 5 s on a two-core machine: the first broker on a machine formats its storage and
 * starts without a class data archive (see {@code ClassDataArchive}); later ones start in about 1.5 to 3 s.
 *
 * <p>Tests that only need a broker should share {@link TestServers#kafka()}; a test that kills, pauses or
 * reconfigures a broker must create its own instance, as above.
 */
public final class KafkaBroker extends AbstractManagedServer {

    /** The line the broker logs once both its controller and broker sides serve requests. */
    static final String STARTED_LINE = "Kafka Server started";

    static final String CLASSPATH_RESOURCE = "kafka-broker.classpath";
    private static final String LOG4J_RESOURCE = "kafka-broker-log4j2.properties";
    private static final Pattern OTHER_SLF4J_BINDINGS =
            Pattern.compile(".*[/\\\\](slf4j-simple|slf4j-nop|slf4j-jdk14|slf4j-reload4j|logback-classic)-[^/\\\\]*\\.jar");
    private static final int NODE_ID = 1;
    private static final String FORMAT_HEAP = "256m";

    private final Map<String, String> brokerProperties;
    private final String heap;
    private final boolean forLoad;
    private final String clusterId = newClusterId();
    private final Path dataDir;
    private final Path configFile;
    private final Path log4jFile;
    private final Path serverLog;
    private final ClassDataArchive formatArchive;
    private final ClassDataArchive brokerArchive;
    private int port;
    private int controllerPort;
    private boolean formatted;

    private KafkaBroker(Builder builder) {
        super(builder.name, "kafka", builder.startTimeout);
        this.brokerProperties = Map.copyOf(builder.brokerProperties);
        this.heap = builder.heap;
        this.forLoad = builder.forLoad;
        this.dataDir = directory().resolve("data");
        this.configFile = directory().resolve("server.properties");
        this.log4jFile = directory().resolve("log4j2.properties");
        this.serverLog = directory().resolve("server.log");
        try {
            this.formatArchive = ClassDataArchive.of("kafka-storage-format", archiveKey(FORMAT_HEAP, false));
            this.brokerArchive = ClassDataArchive.of(forLoad ? "kafka-broker-load" : "kafka-broker", archiveKey(heap, forLoad));
        } catch (RuntimeException e) {
            TemporaryDirectory.deleteTree(directory());
            throw e;
        }
        choosePorts();
    }

    /** A broker named "kafka" with the default settings; call {@link #start()} to run it. */
    public KafkaBroker() {
        this(builder());
    }

    /** A builder for a broker with a name, extra broker properties or another start timeout. */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The address clients connect to, {@code "127.0.0.1:PORT"}. It stays the same for the life of this instance
     * once {@link #start()} has first succeeded (before that, a start that finds the port taken picks another).
     */
    public synchronized String bootstrapServers() {
        return "127.0.0.1:" + port;
    }

    /**
     * The broker's log directory ({@code log.dirs}): a partition's records are in
     * {@code <topic>-<partition>/*.log} there, for tests that damage them on disk.
     */
    public Path dataDirectory() {
        return dataDir;
    }

    @Override
    synchronized String description() {
        return "Kafka broker '" + name() + "' (" + bootstrapServers() + ", dir " + directory() + ")";
    }

    @Override
    void choosePorts() {
        int[] ports = FreePorts.allocate(2);
        port = ports[0];
        controllerPort = ports[1];
    }

    @Override
    List<Path> logs() {
        return List.of(processOutput(), serverLog);
    }

    @Override
    Duration stopGrace() {
        return Duration.ofSeconds(30);
    }

    @Override
    void beforeLaunch() {
        try {
            if (!Files.exists(log4jFile)) {
                try (InputStream in = resource(LOG4J_RESOURCE)) {
                    Files.copy(in, log4jFile);
                }
            }
            Files.writeString(configFile, config(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(description() + ": could not write its configuration", e);
        }
        if (!formatted) {
            List<String> format = new ArrayList<>(jvm(FORMAT_HEAP, formatArchive));
            format.addAll(List.of("kafka.tools.StorageTool", "format", "--ignore-formatted",
                    "--cluster-id", clusterId, "--config", configFile.toString()));
            try {
                ServerProcess.runToCompletion(name(), "formatting the Kafka storage in " + dataDir, format,
                        directory(), processOutput(), Duration.ofSeconds(60));
                formatArchive.publish();
            } finally {
                formatArchive.discardPending();
            }
            formatted = true;
        }
    }

    @Override
    List<String> command() {
        List<String> command = new ArrayList<>(jvm(heap, brokerArchive));
        command.addAll(List.of("kafka.Kafka", configFile.toString()));
        return command;
    }

    @Override
    boolean ready() throws IOException {
        if (!loggedSinceLaunch(serverLog, STARTED_LINE)) {
            return false;
        }
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress("127.0.0.1", port), 1000);
            return true;
        }
    }

    @Override
    void processEnded(boolean graceful) {
        if (graceful) {
            brokerArchive.publish();
        } else {
            brokerArchive.discardPending();
        }
    }

    /** The java command up to the main class. */
    private List<String> jvm(String maxHeap, ClassDataArchive archive) {
        List<String> jvm = new ArrayList<>();
        jvm.add(javaExecutable());
        jvm.addAll(stableJvmOptions(maxHeap, forLoad && archive == brokerArchive));
        jvm.addAll(archive.jvmOptions());
        jvm.add("-Dlog4j2.configurationFile=" + log4jFile.toUri());
        jvm.add("-Dnis.kafka.log.file=" + serverLog);
        // snappy-java unpacks its native library into the temporary directory and removes it only
        // at a normal exit: a broker killed in a fault test would leave one behind in /tmp each time.
        jvm.add("-Dorg.xerial.snappy.tempdir=" + directory());
        jvm.add("-cp");
        jvm.add(brokerClasspath());
        return jvm;
    }

    private static List<String> archiveKey(String maxHeap, boolean forLoad) {
        List<String> key = new ArrayList<>(stableJvmOptions(maxHeap, forLoad));
        key.add(brokerClasspath());
        return key;
    }

    /**
     * The JVM options that are the same for every broker (they, with the class path, key the class data archive).
     * C1 only and the serial collector: a broker for tests starts much faster that way on a small machine. A broker
     * for load (benchmarks) runs with the full JIT and G1 instead.
     */
    private static List<String> stableJvmOptions(String maxHeap, boolean forLoad) {
        List<String> options = new ArrayList<>(List.of("-Xms64m", "-Xmx" + maxHeap));
        if (forLoad) {
            options.add("-XX:+UseG1GC");
        } else {
            options.addAll(List.of("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"));
        }
        options.addAll(List.of("-XX:-UsePerfData", "-Djava.awt.headless=true", "-Djava.net.preferIPv4Stack=true"));
        return options;
    }

    private String config() {
        Map<String, String> config = new LinkedHashMap<>();
        config.put("process.roles", "broker,controller");
        config.put("node.id", Integer.toString(NODE_ID));
        config.put("controller.quorum.voters", NODE_ID + "@127.0.0.1:" + controllerPort);
        config.put("listeners", "PLAINTEXT://127.0.0.1:" + port + ",CONTROLLER://127.0.0.1:" + controllerPort);
        config.put("advertised.listeners", "PLAINTEXT://127.0.0.1:" + port);
        config.put("controller.listener.names", "CONTROLLER");
        config.put("inter.broker.listener.name", "PLAINTEXT");
        config.put("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
        config.put("log.dirs", dataDir.toString());
        config.put("auto.create.topics.enable", "true");
        config.put("num.partitions", "1");
        config.put("default.replication.factor", "1");
        config.put("min.insync.replicas", "1");
        config.put("offsets.topic.replication.factor", "1");
        config.put("offsets.topic.num.partitions", "5");
        config.put("transaction.state.log.replication.factor", "1");
        config.put("transaction.state.log.min.isr", "1");
        config.put("transaction.state.log.num.partitions", "5");
        config.put("share.coordinator.state.topic.replication.factor", "1");
        config.put("share.coordinator.state.topic.min.isr", "1");
        config.put("share.coordinator.state.topic.num.partitions", "5");
        config.put("group.initial.rebalance.delay.ms", "0");
        // After a kill the controller keeps the dead broker's registration until its session times out, and the
        // restarted broker cannot register before that: a short session makes restart() after kill() quick.
        // A broker for load keeps Kafka's defaults instead: under load on a small machine its heartbeats can be
        // seconds late, and a controller that fenced it for that would take its partitions' leadership away
        // (clients see NOT_LEADER_OR_FOLLOWER and stall) in the middle of a measurement.
        config.put("broker.session.timeout.ms", forLoad ? "9000" : "3000");
        config.put("broker.heartbeat.interval.ms", forLoad ? "2000" : "500");
        // A small machine: few threads, a small log cleaner buffer (the default takes 128 MB of heap).
        config.put("num.network.threads", "2");
        config.put("num.io.threads", "4");
        config.put("background.threads", "4");
        config.put("num.recovery.threads.per.data.dir", "1");
        config.put("num.replica.fetchers", "1");
        config.put("log.cleaner.threads", "1");
        config.put("log.cleaner.dedupe.buffer.size", Integer.toString(16 * 1024 * 1024));
        config.putAll(brokerProperties);
        return config.entrySet().stream()
                .map(e -> escape(e.getKey()) + "=" + escape(e.getValue()))
                .collect(Collectors.joining("\n", "# written by nis-testkit KafkaBroker\n", "\n"));
    }

    private static String escape(String s) {
        return s.replace("\\", "\\\\").replace("\n", "\\n").replace(":", "\\:").replace("=", "\\=");
    }

    // ---- the broker's class path, the java to run it with, the cluster id ----

    private static String cachedClasspath;

    /** The jars of the broker, as Maven listed them in {@value #CLASSPATH_RESOURCE} when it built nis-testkit. */
    static synchronized String brokerClasspath() {
        if (cachedClasspath == null) {
            String listed;
            try (InputStream in = resource(CLASSPATH_RESOURCE)) {
                listed = new String(in.readAllBytes(), StandardCharsets.UTF_8).strip();
            } catch (IOException e) {
                throw new UncheckedIOException("could not read the resource " + CLASSPATH_RESOURCE, e);
            }
            List<String> jars = Arrays.stream(listed.split(Pattern.quote(File.pathSeparator)))
                    .map(String::strip)
                    .filter(jar -> !jar.isEmpty())
                    .filter(jar -> !OTHER_SLF4J_BINDINGS.matcher(jar).matches())
                    .toList();
            List<String> missing = jars.stream().filter(jar -> !Files.isRegularFile(Path.of(jar))).toList();
            if (jars.isEmpty() || !missing.isEmpty()) {
                throw new IllegalStateException("the Kafka broker class path in " + CLASSPATH_RESOURCE
                        + " names jars that are not there (was the local Maven repository cleaned? rebuild"
                        + " nis-testkit): " + (jars.isEmpty() ? "(empty)" : missing));
            }
            cachedClasspath = String.join(File.pathSeparator, jars);
        }
        return cachedClasspath;
    }

    private static InputStream resource(String name) {
        InputStream in = KafkaBroker.class.getResourceAsStream(name);
        if (in == null) {
            throw new IllegalStateException("the resource org/nisprotocol/testkit/" + name + " is missing from"
                    + " nis-testkit; it is written by the Maven build of nis-testkit (maven-dependency-plugin"
                    + " build-classpath at generate-resources): build nis-testkit with Maven");
        }
        return in;
    }

    /** The java of the running JVM. */
    static String javaExecutable() {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        if (Files.isExecutable(java)) {
            return java.toString();
        }
        Optional<String> command = ProcessHandle.current().info().command();
        return command.orElseThrow(() -> new IllegalStateException(
                "cannot find the java executable of this JVM (java.home=" + System.getProperty("java.home") + ")"));
    }

    /** A Kafka cluster id: 16 random bytes, base64url without padding, never starting with '-'. */
    static String newClusterId() {
        SecureRandom random = new SecureRandom();
        byte[] bytes = new byte[16];
        String id;
        do {
            random.nextBytes(bytes);
            id = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
        } while (id.startsWith("-"));
        return id;
    }

    /** Settings for a {@link KafkaBroker}. Not thread-safe; each {@link #build()} takes a copy. */
    public static final class Builder {

        private String name = "kafka";
        private final Map<String, String> brokerProperties = new LinkedHashMap<>();
        private String heap = "384m";
        private boolean forLoad;
        private Duration startTimeout = Duration.ofSeconds(60);

        private Builder() {
        }

        /** The name in messages and in the temporary directory's name; default "kafka". */
        public Builder name(String name) {
            this.name = Objects.requireNonNull(name, "name");
            return this;
        }

        /**
         * Sets a broker property over the test defaults (for example {@code num.partitions}). The listeners, node
         * id, roles, quorum and log directory can be overridden too, at the caller's risk.
         */
        public Builder brokerProperty(String key, String value) {
            brokerProperties.put(Objects.requireNonNull(key, "key"), Objects.requireNonNull(value, "value"));
            return this;
        }

        /** The broker JVM's maximum heap, as for {@code -Xmx}; default "384m". */
        public Builder maxHeap(String heap) {
            if (!heap.matches("\\d+[kKmMgG]?")) {
                throw new IllegalArgumentException("not a heap size like 384m: " + heap);
            }
            this.heap = heap;
            return this;
        }

        /**
         * Runs the broker with the full JIT and the G1 collector, for benchmarks; the default (C1 only, serial
         * collector) starts faster but is slower under load. Its controller also waits Kafka's default 9 s (not
         * 3 s) for a heartbeat before fencing it, so a restart after {@link KafkaBroker#kill()} takes longer.
         */
        public Builder forLoad() {
            this.forLoad = true;
            return this;
        }

        /** How long {@link KafkaBroker#start()} waits for the broker; default 60 s. */
        public Builder startTimeout(Duration startTimeout) {
            this.startTimeout = Objects.requireNonNull(startTimeout, "startTimeout");
            return this;
        }

        /** A new broker with these settings (not started; this creates its temporary directory). */
        public KafkaBroker build() {
            return new KafkaBroker(this);
        }
    }
}
