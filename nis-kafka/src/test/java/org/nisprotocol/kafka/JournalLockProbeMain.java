package org.nisprotocol.kafka;

import java.nio.file.Path;
import java.time.InstantSource;

/**
 * A process that tries to open the handling journal of a directory and says whether it could:
 * {@link HandlingJournalTest}'s other process, for the lock between processes.
 *
 * <p>Argument: the directory.
 */
public final class JournalLockProbeMain {
  private JournalLockProbeMain() {}

  public static void main(String[] args) throws Exception {
    try (HandlingJournal journal = HandlingJournal.open(Path.of(args[0]), InstantSource.system())) {
      System.out.println("OPENED");
    } catch (HandlingJournal.DirectoryInUseException e) {
      System.out.println("IN USE");
    }
  }
}
