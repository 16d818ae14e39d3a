package org.nisprotocol.testkit;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;

/**
 * A real {@code redis-server} process on a free loopback port, for tests that kill, pause and restart it.
 *
 * <p>The binary is {@code redis-server} from the {@code PATH} if there is one, else the one shipped inside the
 * {@code com.github.codemonstur:embedded-redis} jar (only its binary is used: it is extracted once into
 * {@code java.io.tmpdir/nis-testkit-redis/} and made executable). The server binds 127.0.0.1, persists nothing
 * ({@code --save ""}, {@code --appendonly no}) unless extra arguments say otherwise, and works in a temporary
 * directory. {@link #start()} waits until it answers PING (after AUTH when it has a password).
 *
 * <pre>{@code
 * try (RedisServer redis = RedisServer.builder().name("auth").password("s3cret").build()) {
 *     redis.start();
 *     ... redis.host(), redis.port(), redis.password() ...
 * }
 * }</pre>
 *
 * <p>Tests that only need a server should share {@link TestServers#redis()}; a test that kills, pauses or
 * reconfigures a server must create its own instance, as above.
 */
public final class RedisServer extends AbstractManagedServer {

    private static final String HOST = "127.0.0.1";

    private final Optional<String> password;
    private final boolean clusterEnabled;
    private final List<String> extraArgs;
    private int port;

    private RedisServer(Builder builder) {
        super(builder.name, "redis", builder.startTimeout);
        this.password = builder.password;
        this.clusterEnabled = builder.clusterEnabled;
        this.extraArgs = List.copyOf(builder.extraArgs);
        choosePorts();
    }

    /** A server named "redis" without a password; call {@link #start()} to run it. */
    public RedisServer() {
        this(builder());
    }

    /** A builder for a server with a name, a password, cluster mode or extra arguments. */
    public static Builder builder() {
        return new Builder();
    }

    /** Always {@code "127.0.0.1"}. */
    public String host() {
        return HOST;
    }

    /**
     * The port. It stays the same for the life of this instance once {@link #start()} has first succeeded (before
     * that, a start that finds the port taken picks another).
     */
    public synchronized int port() {
        return port;
    }

    /** The password clients must AUTH with ({@code requirepass}), if one was set. */
    public Optional<String> password() {
        return password;
    }

    @Override
    synchronized String description() {
        return "Redis server '" + name() + "' (" + HOST + ":" + port + ", dir " + directory() + ")";
    }

    @Override
    void choosePorts() {
        port = FreePorts.allocate(1)[0];
    }

    @Override
    Duration stopGrace() {
        return Duration.ofSeconds(10);
    }

    @Override
    void beforeLaunch() {
        // everything is on the command line
    }

    @Override
    List<String> command() {
        List<String> command = new ArrayList<>(List.of(binary().toString(),
                "--port", Integer.toString(port),
                "--bind", HOST,
                "--dir", directory().toString(),
                "--daemonize", "no",
                "--save", "",
                "--appendonly", "no"));
        password.ifPresent(p -> command.addAll(List.of("--requirepass", p)));
        if (clusterEnabled) {
            command.addAll(List.of("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"));
        }
        command.addAll(extraArgs);
        return command;
    }

    @Override
    boolean ready() throws IOException {
        return "PONG".equals(Resp.ping(HOST, port, password, Duration.ofSeconds(1)));
    }

    // ---- the binary ----

    private static Path cachedBinary;

    /** {@code redis-server} from the PATH, else the binary from the embedded-redis jar for this OS and CPU. */
    static synchronized Path binary() {
        if (cachedBinary == null) {
            cachedBinary = onPath("redis-server").orElseGet(RedisServer::extractShippedBinary);
        }
        return cachedBinary;
    }

    private static Optional<Path> onPath(String program) {
        String path = Optional.ofNullable(System.getenv("PATH")).orElse("");
        return Arrays.stream(path.split(File.pathSeparator))
                .filter(dir -> !dir.isBlank())
                .map(dir -> Path.of(dir, program))
                .filter(Files::isExecutable)
                .findFirst();
    }

    private static Path extractShippedBinary() {
        String resource = shippedBinaryName();
        Path dir = Path.of(System.getProperty("java.io.tmpdir"), "nis-testkit-redis");
        Path target = dir.resolve(resource);
        if (Files.isExecutable(target)) {
            return target;
        }
        try (InputStream in = RedisServer.class.getResourceAsStream("/" + resource)) {
            if (in == null) {
                throw new IllegalStateException("no redis-server on the PATH, and the resource /" + resource
                        + " (from com.github.codemonstur:embedded-redis) is not on the class path;"
                        + " install redis-server (apt-get install redis-server)");
            }
            Files.createDirectories(dir);
            // Extract beside the target and move it in place, so JVMs running at the same time never see half.
            Path partial = Files.createTempFile(dir, resource, ".part");
            Files.copy(in, partial, StandardCopyOption.REPLACE_EXISTING);
            if (!partial.toFile().setExecutable(true, false)) {
                throw new IOException("could not make " + partial + " executable");
            }
            try {
                Files.move(partial, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(partial, target, StandardCopyOption.REPLACE_EXISTING);
            }
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException("could not extract the redis-server binary /" + resource + " to " + dir, e);
        }
    }

    private static String shippedBinaryName() {
        String os = System.getProperty("os.name").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
        boolean x64 = arch.equals("amd64") || arch.equals("x86_64");
        boolean arm64 = arch.equals("aarch64") || arch.equals("arm64");
        if (os.contains("linux") && x64) {
            return "redis-server-6.2.6-v5-linux-amd64";
        }
        if (os.contains("linux") && arm64) {
            return "redis-server-6.2.7-linux-arm64";
        }
        if (os.contains("mac") && x64) {
            return "redis-server-6.2.6-v5-darwin-amd64";
        }
        if (os.contains("mac") && arm64) {
            return "redis-server-6.2.6-v5-darwin-arm64";
        }
        throw new IllegalStateException("no redis-server on the PATH and no shipped binary for " + os + "/" + arch
                + "; install redis-server");
    }

    /** Settings for a {@link RedisServer}. Not thread-safe; each {@link #build()} takes a copy. */
    public static final class Builder {

        private String name = "redis";
        private Optional<String> password = Optional.empty();
        private boolean clusterEnabled;
        private final List<String> extraArgs = new ArrayList<>();
        private Duration startTimeout = Duration.ofSeconds(20);

        private Builder() {
        }

        /** The name in messages and in the temporary directory's name; default "redis". */
        public Builder name(String name) {
            this.name = Objects.requireNonNull(name, "name");
            return this;
        }

        /** Requires clients to AUTH with this password ({@code --requirepass}). */
        public Builder password(String password) {
            if (password.isEmpty()) {
                throw new IllegalArgumentException("the password must not be empty");
            }
            this.password = Optional.of(password);
            return this;
        }

        /** Runs the server as a cluster node ({@code --cluster-enabled yes}); the test forms the cluster. */
        public Builder clusterEnabled(boolean clusterEnabled) {
            this.clusterEnabled = clusterEnabled;
            return this;
        }

        /** Appends arguments to the command line, such as {@code "--maxmemory", "10mb"}; later ones win. */
        public Builder extraArgs(String... args) {
            for (String arg : args) {
                extraArgs.add(Objects.requireNonNull(arg, "arg"));
            }
            return this;
        }

        /** How long {@link RedisServer#start()} waits for PONG; default 20 s. */
        public Builder startTimeout(Duration startTimeout) {
            this.startTimeout = Objects.requireNonNull(startTimeout, "startTimeout");
            return this;
        }

        /** A new server with these settings (not started; this creates its temporary directory). */
        public RedisServer build() {
            return new RedisServer(this);
        }
    }
}
