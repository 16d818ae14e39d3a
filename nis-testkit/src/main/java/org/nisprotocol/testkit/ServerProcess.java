package org.nisprotocol.testkit;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One child server process at a time: launches it with its output appended to a file, signals it, stops it, and
 * makes sure it does not outlive the JVM that started it.
 *
 * <p>Orphan protection. Each launched process gets a watchdog: a tiny {@code /bin/sh} loop that checks once a
 * second whether this JVM and the server are still alive, kills the server (SIGKILL) and deletes its temporary
 * directory if this JVM has gone, and ends when the server has gone. That covers a test JVM that is itself killed with SIGKILL, where no shutdown hook
 * runs; {@link TestServers}' shutdown hook covers the ordinary exits. A paused (SIGSTOPped) server is still killed,
 * since SIGKILL does not need the process to run.
 *
 * <p>Not thread-safe by itself: the servers that own one call it under their own lock.
 */
final class ServerProcess {

    /**
     * $1 = this JVM's pid, $2 = the server's pid, $3 = the server's temporary directory. It ignores SIGHUP and
     * SIGINT: when this JVM dies while a server is paused, the kernel sends SIGHUP and SIGCONT to the orphaned
     * process group, which would otherwise end the watchdog and leave the server running.
     */
    private static final String WATCHDOG_SCRIPT = """
            trap '' HUP INT
            while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
            if ! kill -0 "$1" 2>/dev/null; then
              kill -9 "$2" 2>/dev/null
              sleep 1
              rm -rf -- "$3"
            fi
            """;

    private final String name;
    private final Path output;
    private List<String> command = List.of();
    private Process process;
    private Process watchdog;
    private boolean paused;

    /**
     * @param name   the server's name, for messages
     * @param output the file the process's stdout and stderr are appended to
     */
    ServerProcess(String name, Path output) {
        this.name = name;
        this.output = output;
    }

    /**
     * Starts {@code command} in {@code workDir}; the previous process must have ended. {@code workDir} is the
     * server's own temporary directory: the watchdog deletes it if this JVM dies.
     */
    void launch(List<String> command, Path workDir) {
        if (isAlive()) {
            throw new IllegalStateException(name + ": a process is still running (pid " + process.pid() + ")");
        }
        this.command = List.copyOf(command);
        this.paused = false;
        ProcessBuilder builder = new ProcessBuilder(command)
                .directory(workDir.toFile())
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(output.toFile()));
        try {
            process = builder.start();
        } catch (IOException e) {
            throw new IllegalStateException(name + ": could not start the server process\n  command: "
                    + describe(command) + "\n  cause: " + e, e);
        }
        closeQuietly(process);
        startWatchdog(process.pid(), workDir);
    }

    private void startWatchdog(long childPid, Path serverDirectory) {
        try {
            watchdog = new ProcessBuilder("/bin/sh", "-c", WATCHDOG_SCRIPT, "nis-testkit-watchdog",
                    Long.toString(ProcessHandle.current().pid()), Long.toString(childPid),
                    serverDirectory.toAbsolutePath().toString())
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .start();
            closeQuietly(watchdog);
        } catch (IOException e) {
            // Without /bin/sh the server still works; only the protection against a killed test JVM is missing.
            watchdog = null;
        }
    }

    boolean isAlive() {
        return process != null && process.isAlive();
    }

    boolean isPaused() {
        return paused && isAlive();
    }

    /** The handle of the current process (of the last launch, even after it ended). */
    ProcessHandle handle() {
        if (process == null) {
            throw new IllegalStateException(name + ": no process was launched");
        }
        return process.toHandle();
    }

    /** The command of the last launch, shortened for messages. */
    String command() {
        return describe(command);
    }

    /** A description of how the process ended, or "running". */
    String exitDescription() {
        if (process == null) {
            return "never launched";
        }
        return process.isAlive() ? "still running" : "exited with code " + process.exitValue();
    }

    /**
     * SIGSTOP, then waits until every thread of the process has stopped: {@code kill} returns once the signal is
     * queued, and a thread that was running keeps going until its CPU takes the signal, which on a busy machine can
     * be long enough to answer a request sent right after. Where {@code /proc} does not exist this only signals.
     */
    void pause() {
        if (!isAlive()) {
            throw new IllegalStateException(name + ": cannot pause, the server is not running");
        }
        signal("STOP");
        paused = true;
        Path tasks = Path.of("/proc", Long.toString(process.pid()), "task");
        awaitReady(Duration.ofSeconds(10), () -> isAlive() && allStopped(tasks),
                "every thread of pid " + process.pid() + " to stop after SIGSTOP");
    }

    /**
     * Whether no thread under {@code /proc/PID/task} can run: each is stopped (T, or t when traced) or ending (Z, X);
     * true when that directory does not exist (no procfs, or the process is gone: the caller checks that). A thread that
     * ends while being read is skipped; one whose state cannot be read counts as running.
     */
    static boolean allStopped(Path tasks) {
        if (!Files.isDirectory(tasks)) {
            return true;
        }
        try (var threads = Files.list(tasks)) {
            for (Path thread : (Iterable<Path>) threads::iterator) {
                String stat;
                try {
                    // Thread names are bytes, not always ASCII; the state letter is.
                    stat = new String(Files.readAllBytes(thread.resolve("stat")), StandardCharsets.ISO_8859_1);
                } catch (IOException e) {
                    if (Files.exists(thread)) {
                        return false;
                    }
                    continue;
                }
                if ("TtZX".indexOf(threadState(stat)) < 0) {
                    return false;
                }
            }
            return true;
        } catch (IOException | UncheckedIOException | IllegalArgumentException e) {
            return !Files.isDirectory(tasks);
        }
    }

    /** The state letter of a {@code /proc/PID/task/TID/stat} line: the field after the parenthesised name. */
    static char threadState(String stat) {
        int close = stat.lastIndexOf(')');
        if (close < 0 || close + 2 >= stat.length()) {
            throw new IllegalArgumentException("not a /proc stat line: " + stat);
        }
        return stat.charAt(close + 2);
    }

    /** SIGCONT, if paused. */
    void resume() {
        if (isPaused()) {
            signal("CONT");
        }
        paused = false;
    }

    /**
     * SIGTERM (after SIGCONT if paused), waits up to {@code grace}, then SIGKILL.
     *
     * @return true if a running process ended by itself after SIGTERM, false if it had to be killed or was not
     *         running
     */
    boolean stop(Duration grace) {
        boolean graceful = false;
        if (isAlive()) {
            resume();
            process.destroy();
            graceful = waitFor(process, grace);
            if (!graceful) {
                process.destroyForcibly();
                waitFor(process, Duration.ofSeconds(10));
            }
        }
        endWatchdog();
        paused = false;
        return graceful;
    }

    /** SIGKILL, and waits until the process is gone. */
    void kill() {
        if (isAlive()) {
            process.destroyForcibly();
            waitFor(process, Duration.ofSeconds(10));
        }
        endWatchdog();
        paused = false;
    }

    private void endWatchdog() {
        if (watchdog != null) {
            watchdog.destroyForcibly();
            watchdog = null;
        }
    }

    private void signal(String signal) {
        List<String> kill = List.of("/bin/sh", "-c", "kill -s " + signal + " \"$1\"", "nis-testkit-signal",
                Long.toString(process.pid()));
        try {
            Process p = new ProcessBuilder(kill).redirectErrorStream(true).start();
            closeQuietly(p);
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new IllegalStateException(name + ": sending SIG" + signal + " to pid " + process.pid()
                        + " failed: " + out);
            }
        } catch (IOException e) {
            throw new IllegalStateException(name + ": could not send SIG" + signal + " to pid " + process.pid(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(name + ": interrupted while sending SIG" + signal, e);
        }
    }

    /**
     * Waits until {@code probe} answers true, failing early when the process ends.
     *
     * @param what the thing awaited, for the message ("Kafka broker 'kafka' to start")
     * @param logs the logs whose last lines go into the failure message
     */
    void awaitReady(Duration timeout, Probe probe, String what, Path... logs) {
        long deadline = System.nanoTime() + timeout.toNanos();
        Exception lastProbeFailure = null;
        while (true) {
            try {
                if (probe.ready()) {
                    return;
                }
            } catch (Exception e) {
                lastProbeFailure = e;
            }
            if (!isAlive()) {
                throw failure("gave up waiting for " + what + ": the process " + exitDescription(), lastProbeFailure,
                        logs);
            }
            if (System.nanoTime() - deadline > 0) {
                throw failure("gave up waiting for " + what + " after " + timeout.toSeconds() + " s", lastProbeFailure,
                        logs);
            }
            sleep(Duration.ofMillis(100));
        }
    }

    /** An exception whose message says what failed, the command and the last lines of each log. */
    IllegalStateException failure(String what, Exception cause, Path... logs) {
        StringBuilder message = new StringBuilder(name).append(": ").append(what)
                .append("\n  command: ").append(command());
        if (cause != null) {
            message.append("\n  last probe error: ").append(cause);
        }
        for (Path log : logs) {
            message.append("\n  last lines of ").append(log).append(":\n").append(tail(log, 30).indent(4));
        }
        return new IllegalStateException(message.toString(), cause);
    }

    /** A readiness check; an exception counts as "not ready yet". */
    @FunctionalInterface
    interface Probe {
        boolean ready() throws Exception;
    }

    // ---- helpers shared by the servers ----

    /**
     * Runs {@code command} to its end with its output appended to {@code output}.
     *
     * @throws IllegalStateException if it fails to start, times out or exits non-zero
     */
    static void runToCompletion(String name, String what, List<String> command, Path workDir, Path output,
                                Duration timeout) {
        try {
            Process p = new ProcessBuilder(command).directory(workDir.toFile()).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(output.toFile())).start();
            closeQuietly(p);
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                throw new IllegalStateException(name + ": " + what + " did not finish within " + timeout.toSeconds()
                        + " s\n  command: " + describe(command) + "\n  last lines of " + output + ":\n"
                        + tail(output, 30).indent(4));
            }
            if (p.exitValue() != 0) {
                throw new IllegalStateException(name + ": " + what + " failed with exit code " + p.exitValue()
                        + "\n  command: " + describe(command) + "\n  last lines of " + output + ":\n"
                        + tail(output, 30).indent(4));
            }
        } catch (IOException e) {
            throw new IllegalStateException(name + ": could not run " + what + "\n  command: " + describe(command), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(name + ": interrupted while running " + what, e);
        }
    }

    /** The command line, with a long class path shortened to its number of entries. */
    static String describe(List<String> command) {
        List<String> shown = new ArrayList<>(command.size());
        for (int i = 0; i < command.size(); i++) {
            String arg = command.get(i);
            shown.add(arg.isEmpty() ? "''" : arg);
            if ((arg.equals("-cp") || arg.equals("-classpath")) && i + 1 < command.size()) {
                String cp = command.get(++i);
                shown.add("<class path of " + cp.split(java.io.File.pathSeparator).length + " jars>");
            }
        }
        return String.join(" ", shown);
    }

    /** The last {@code maxLines} lines of a text file, or a note saying why there are none. */
    static String tail(Path file, int maxLines) {
        if (!Files.isRegularFile(file)) {
            return "(no such file)";
        }
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "r")) {
            long length = raf.length();
            int chunk = (int) Math.min(length, 64 * 1024);
            byte[] bytes = new byte[chunk];
            raf.seek(length - chunk);
            raf.readFully(bytes);
            List<String> lines = new String(bytes, StandardCharsets.UTF_8).lines().toList();
            List<String> last = lines.subList(Math.max(0, lines.size() - maxLines), lines.size());
            return last.isEmpty() ? "(empty)" : String.join("\n", last);
        } catch (IOException e) {
            return "(could not read: " + e + ")";
        }
    }

    /** The size of a file, 0 if it does not exist. */
    static long size(Path file) {
        try {
            return Files.isRegularFile(file) ? Files.size(file) : 0;
        } catch (IOException e) {
            return 0;
        }
    }

    /** Whether the text appended to {@code file} after byte {@code from} contains {@code needle}. */
    static boolean contains(Path file, long from, String needle) {
        if (!Files.isRegularFile(file)) {
            return false;
        }
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "r")) {
            long length = raf.length();
            if (length <= from) {
                return false;
            }
            byte[] bytes = new byte[(int) Math.min(length - from, Integer.MAX_VALUE - 16)];
            raf.seek(from);
            raf.readFully(bytes);
            return new String(bytes, StandardCharsets.UTF_8).contains(needle);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static void sleep(Duration duration) {
        try {
            Thread.sleep(duration);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    private static boolean waitFor(Process p, Duration timeout) {
        try {
            return p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return !p.isAlive();
        }
    }

    private static void closeQuietly(Process p) {
        try {
            p.getOutputStream().close();
        } catch (IOException ignored) {
            // stdin of the child: nothing to do
        }
    }
}
