package org.nisprotocol.kafka;

import java.io.IOException;
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
}
