package org.nisprotocol.testkit;

/**
 * A real server process (a Kafka broker, a Redis server) that a test starts, stops and breaks on purpose.
 *
 * <p>Each instance owns one child process, loopback ports and a temporary data directory. The directory is made
 * when the instance is built; the ports are picked then too and kept from the first successful start on (only a
 * first start that finds a port taken picks new ones), so {@link #restart()} brings the server back where its
 * clients expect it, with the data it had persisted. All methods are thread-safe. Failures are
 * reported as unchecked exceptions whose message names what failed, the command that was run and the last lines
 * of the server's log.
 *
 * <p>Lifecycle: {@code start()} &rarr; running &harr; paused ({@code pause()}/{@code resume()}) &rarr; stopped
 * ({@code stop()} or {@code kill()}) &rarr; running again ({@code start()} or {@code restart()}) ... &rarr;
 * {@code close()}, after which the instance cannot be used any more.
 */
public interface ManagedServer extends AutoCloseable {

    /** A short name for messages and logs, such as {@code "kafka"} or {@code "redis-auth"}. */
    String name();

    /**
     * Starts the server and waits until it serves requests. Does nothing if it is already running.
     *
     * @throws IllegalStateException if the server did not become ready in time or its process ended; the message
     *                               holds the command and the last lines of the server's log
     */
    void start();

    /**
     * Stops the server gracefully: SIGTERM (after SIGCONT if it was paused), a wait, then SIGKILL if it is still
     * alive. Does nothing if it is not running.
     */
    void stop();

    /** Kills the server at once (SIGKILL), as a crash would. Does nothing if it is not running. */
    void kill();

    /**
     * Freezes the server process (SIGSTOP): it keeps its sockets open but answers nothing, as a hung server would.
     *
     * @throws IllegalStateException if the server is not running
     */
    void pause();

    /** Lets a paused server go on (SIGCONT). Does nothing if it is not paused. */
    void resume();

    /**
     * Stops the server if it is running (gracefully) and starts it again on the same ports with the same data
     * directory.
     */
    void restart();

    /** Whether the server process is alive; a paused server is alive, so this is {@code true} for it too. */
    boolean isRunning();

    /** Stops the server if it runs and deletes its temporary directory. Idempotent. */
    @Override
    void close();
}
