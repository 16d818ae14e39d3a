package org.nisprotocol.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ServerProcessTest {

    @Test
    void theThreadStateIsTheFieldAfterTheNameEvenWhenTheNameHasParenthesesAndSpaces() {
        assertThat(ServerProcess.threadState("4242 (java) S 1 4242 4242 0 -1")).isEqualTo('S');
        assertThat(ServerProcess.threadState("4243 (GC Thread#0 (x)) T 1 4242")).isEqualTo('T');
        assertThatThrownBy(() -> ServerProcess.threadState("not a stat line"))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aProcessCountsAsStoppedOnlyWhenNoneOfItsThreadsCanRun(@TempDir Path proc) throws IOException {
        Path tasks = proc.resolve("task");
        writeStat(tasks, 1, "T");
        writeStat(tasks, 2, "Z");
        assertThat(ServerProcess.allStopped(tasks)).isTrue();

        writeStat(tasks, 3, "R");
        assertThat(ServerProcess.allStopped(tasks)).isFalse();

        writeStat(tasks, 3, "t");
        assertThat(ServerProcess.allStopped(tasks)).isTrue();

        // A name that is not ASCII (and not UTF-8) does not hide a running thread.
        Path thread = Files.createDirectories(tasks.resolve("4"));
        Files.write(thread.resolve("stat"), new byte[] {'4', ' ', '(', 'w', (byte) 0xE9, ')', ' ', 'R', ' ', '1'});
        assertThat(ServerProcess.allStopped(tasks)).isFalse();
        assertThat(ServerProcess.allStopped(proc.resolve("no-such-process"))).isTrue();
    }

    /**
     * A busy process is stopped, by the kernel's own status file, when pause() returns, and runs after resume().
     * Without the wait in pause(), some of the 50 rounds found it still running (round 8 or 10 in two of three runs).
     */
    @Test
    void pauseReturnsOnlyWhenEveryThreadOfTheProcessHasStopped(@TempDir Path dir) throws Exception {
        assumeTrue(Files.isDirectory(Path.of("/proc/self/task")), "needs /proc");
        ServerProcess process = new ServerProcess("busy", dir.resolve("out.log"));
        process.launch(List.of("/bin/sh", "-c", "while :; do :; done"), dir);
        try {
            Path status = Path.of("/proc", Long.toString(process.handle().pid()), "status");
            for (int round = 0; round < 50; round++) {
                process.pause();
                assertThat(stateLine(status)).as("round %d", round).startsWith("State:\tT");
                process.resume();
                awaitState(status, "State:\tR");
            }
        } finally {
            process.kill();
        }
    }

    private static void writeStat(Path tasks, int tid, String state) throws IOException {
        Path thread = Files.createDirectories(tasks.resolve(Integer.toString(tid)));
        Files.writeString(thread.resolve("stat"), tid + " (worker " + tid + ") " + state + " 1 1 1 0 -1\n");
    }

    private static String stateLine(Path status) throws IOException {
        return Files.readAllLines(status).stream().filter(line -> line.startsWith("State:")).findFirst().orElseThrow();
    }

    private static void awaitState(Path status, String prefix) throws IOException {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!stateLine(status).startsWith(prefix)) {
            assertThat(System.nanoTime() - deadline).as("waiting for %s", prefix).isNegative();
            ServerProcess.sleep(Duration.ofMillis(1));
        }
    }
}
