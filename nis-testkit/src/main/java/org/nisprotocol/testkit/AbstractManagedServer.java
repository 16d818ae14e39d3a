package org.nisprotocol.testkit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The lifecycle shared by the servers: one {@link ServerProcess}, a temporary directory, and a start that retries
 * with new ports if the ports picked turned out to be taken before the server's first successful start.
 */
abstract class AbstractManagedServer implements ManagedServer {

    private static final int START_ATTEMPTS = 3;

    private final String name;
    private final Path directory;
    private final Duration startTimeout;
    private final ServerProcess process;
    private final Map<Path, Long> logOffsetsAtLaunch = new HashMap<>();
    private boolean startedOnce;
    private boolean closed;

    AbstractManagedServer(String name, String kind, Duration startTimeout) {
        if (name.isBlank()) {
            throw new IllegalArgumentException("a server name must not be blank");
        }
        if (startTimeout.isNegative() || startTimeout.isZero()) {
            throw new IllegalArgumentException("the start timeout must be positive: " + startTimeout);
        }
        this.name = name;
        this.startTimeout = startTimeout;
        try {
            this.directory = Files.createTempDirectory("nis-" + kind + "-" + name.replaceAll("[^A-Za-z0-9_.-]", "_")
                    + "-");
        } catch (IOException e) {
            throw new UncheckedIOException(name + ": could not create a temporary directory", e);
        }
        this.process = new ServerProcess(name, processOutput());
    }

    // ---- what each server says ----

    /** What this server is, for messages: "Kafka broker 'kafka'". */
    abstract String description();

    /** Picks new ports; called again only before the first successful start, when the old ones were taken. */
    abstract void choosePorts();

    /** Work before each launch, such as writing the configuration. */
    abstract void beforeLaunch();

    /** The command that runs the server in the foreground. */
    abstract List<String> command();

    /** Whether the launched server serves requests; an exception means "not yet". */
    abstract boolean ready() throws Exception;

    /** How long a graceful stop may take before the process is killed. */
    abstract Duration stopGrace();

    /** Called after a stop or kill, with whether the process ended by itself after SIGTERM. */
    void processEnded(boolean graceful) {
    }

    /** The logs to show in failure messages (the process output first). */
    List<Path> logs() {
        return List.of(processOutput());
    }

    /** The file the process's stdout and stderr go to. */
    final Path processOutput() {
        return directory.resolve("process.log");
    }

    // ---- shared ----

    final Path directory() {
        return directory;
    }

    final ServerProcess process() {
        return process;
    }

    /** Whether {@code log} got {@code text} since the current process was launched. */
    final boolean loggedSinceLaunch(Path log, String text) {
        return ServerProcess.contains(log, logOffsetsAtLaunch.getOrDefault(log, 0L), text);
    }

    @Override
    public final String name() {
        return name;
    }

    @Override
    public final synchronized void start() {
        ensureOpen();
        if (process.isAlive()) {
            return;
        }
        for (int attempt = 1; ; attempt++) {
            beforeLaunch();
            logOffsetsAtLaunch.clear();
            for (Path log : logs()) {
                logOffsetsAtLaunch.put(log, ServerProcess.size(log));
            }
            process.launch(command(), directory);
            try {
                process.awaitReady(startTimeout, this::ready, description() + " to start",
                        logs().toArray(Path[]::new));
                startedOnce = true;
                return;
            } catch (RuntimeException e) {
                process.kill();
                processEnded(false);
                boolean portTaken = logs().stream().anyMatch(log -> loggedSinceLaunch(log, "Address already in use"));
                if (!startedOnce && portTaken && attempt < START_ATTEMPTS) {
                    choosePorts();
                    continue;
                }
                throw e;
            }
        }
    }

    @Override
    public final synchronized void stop() {
        if (process.isAlive()) {
            processEnded(process.stop(stopGrace()));
        }
    }

    @Override
    public final synchronized void kill() {
        if (process.isAlive()) {
            process.kill();
            processEnded(false);
        }
    }

    @Override
    public final synchronized void pause() {
        ensureOpen();
        process.pause();
    }

    @Override
    public final synchronized void resume() {
        process.resume();
    }

    @Override
    public final synchronized void restart() {
        ensureOpen();
        stop();
        start();
    }

    /**
     * The process of the server as last started (for a benchmark to read its CPU time, for instance); after it
     * ended, the handle says so ({@link ProcessHandle#isAlive()}) and tells nothing more.
     *
     * @throws IllegalStateException if it was never started
     */
    public final synchronized ProcessHandle processHandle() {
        return process.handle();
    }

    @Override
    public final synchronized boolean isRunning() {
        return process.isAlive();
    }

    @Override
    public final synchronized void close() {
        if (closed) {
            return;
        }
        try {
            stop();
        } finally {
            closed = true;
            TemporaryDirectory.deleteTree(directory);
        }
    }

    /** Kills the process and deletes the directory: for JVM shutdown, where a graceful stop buys nothing. */
    final synchronized void killAndClose() {
        kill();
        close();
    }

    final void ensureOpen() {
        if (closed) {
            throw new IllegalStateException(description() + " is closed");
        }
    }

    @Override
    public String toString() {
        return description();
    }
}
