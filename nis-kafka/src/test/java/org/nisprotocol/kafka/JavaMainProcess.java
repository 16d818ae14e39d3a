package org.nisprotocol.kafka;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A main class of the test class path run in a process of its own, for the tests that kill one. */
final class JavaMainProcess {
  private JavaMainProcess() {}

  /**
   * Starts the main class with the arguments, its output and errors merged; a process still
   * running after {@code limit} is killed, so that a stuck one ends the test's reading of it.
   */
  static Process start(Duration limit, Class<?> main, String... args) throws IOException {
    List<String> command = new ArrayList<>(List.of(
        ProcessHandle.current().info().command().orElse("java"),
        // snappy-java's native library, unpacked at start and removed only at a normal exit, goes
        // under target/ rather than /tmp: these processes are killed.
        "-Dorg.xerial.snappy.tempdir=" + nativeLibraryDirectory(),
        "-cp", System.getProperty("java.class.path"),
        main.getName()));
    command.addAll(List.of(args));
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    Thread.ofVirtual().start(() -> {
      try {
        if (!process.waitFor(limit.toNanos(), TimeUnit.NANOSECONDS)) {
          process.destroyForcibly();
        }
      } catch (InterruptedException e) {
        process.destroyForcibly();
      }
    });
    return process;
  }

  private static Path nativeLibraryDirectory() throws IOException {
    return Files.createDirectories(Path.of("target", "killed-process-native-libs")).toAbsolutePath();
  }
}
