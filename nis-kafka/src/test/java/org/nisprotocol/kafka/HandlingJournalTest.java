package org.nisprotocol.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nisprotocol.kafka.HandlingJournal.Spent;

/**
 * The journal of records in hand. A process that dies leaves the mapped file as it was, and its
 * lock goes with it; here {@code closeLeavingMarks()} while a handler has not returned, then an
 * open again, stands for that.
 */
class HandlingJournalTest {
  @TempDir Path directory;
  private final AtomicReference<Instant> now = new AtomicReference<>(Instant.parse("2026-11-23T10:00:00Z"));
  private final InstantSource clock = () -> now.get();
  private final long key = HandlingJournal.partitionKey("planner", "nis-coordination", 2);

  @Test
  void eachEndOfTheProcessWhileARecordIsInHandIsCounted() throws Exception {
    for (int ends = 0; ends < 3; ends++) {
      HandlingJournal journal = HandlingJournal.open(directory, clock);
      assertThat(journal.spentOn(key, 41)).isEqualTo(new Spent(ends, ends));
      journal.handling(journal.claimSlot(), key, 41, journal.spentOn(key, 41));
      journal.closeLeavingMarks(); // the process dies here: no handled()
    }
    try (HandlingJournal journal = HandlingJournal.open(directory, clock)) {
      assertThat(journal.spentOn(key, 41)).isEqualTo(new Spent(3, 3));
      assertThat(journal.spentOn(key, 40)).as("another record").isEqualTo(Spent.NOTHING);
      assertThat(journal.spentOn(HandlingJournal.partitionKey("planner", "nis-coordination", 3), 41))
          .as("another partition").isEqualTo(Spent.NOTHING);
    }
  }

  @Test
  void anEndAddsToTheAttemptsSpentBeforeIt() throws Exception {
    HandlingJournal first = HandlingJournal.open(directory, clock);
    int slot = first.claimSlot();
    first.handling(slot, key, 41, Spent.NOTHING); // attempt 1 throws
    first.handled(slot);
    first.handling(slot, key, 41, new Spent(1, 0)); // attempt 2 throws
    first.handled(slot);
    first.handling(slot, key, 41, new Spent(2, 0)); // attempt 3 ends the process
    first.closeLeavingMarks();

    HandlingJournal second = HandlingJournal.open(directory, clock);
    assertThat(second.spentOn(key, 41)).isEqualTo(new Spent(3, 1));
    second.handling(second.claimSlot(), key, 41, second.spentOn(key, 41)); // attempt 4 ends it too
    second.closeLeavingMarks();

    try (HandlingJournal third = HandlingJournal.open(directory, clock)) {
      assertThat(third.spentOn(key, 41)).isEqualTo(new Spent(4, 2));
    }
  }

  @Test
  void theCountsStopAtTheirMaximumWhichSpendsAnyBudget() throws Exception {
    for (int end = 0; end < 2; end++) {
      HandlingJournal journal = HandlingJournal.open(directory, clock);
      journal.handling(journal.claimSlot(), key, 41, new Spent(Spent.MAX, Spent.MAX - 1));
      journal.closeLeavingMarks();
    }
    try (HandlingJournal journal = HandlingJournal.open(directory, clock)) {
      Spent spent = journal.spentOn(key, 41);
      assertThat(spent).isEqualTo(new Spent(Spent.MAX, Spent.MAX));
      assertThat(spent.spend(Integer.MAX_VALUE)).as("a budget above the maximum").isTrue();
      assertThat(new Spent(2, 1).spend(3)).isFalse();
      assertThat(new Spent(3, 1).spend(3)).isTrue();
    }
  }

  @Test
  void aSecondBusCannotOpenTheSameDirectoryInThisProcessOrAnother() throws Exception {
    try (HandlingJournal first = HandlingJournal.open(directory, clock)) {
      assertThatThrownBy(() -> HandlingJournal.open(directory, clock))
          .isInstanceOf(HandlingJournal.DirectoryInUseException.class)
          .hasMessageContaining(directory.toAbsolutePath().toString())
          .hasMessageContaining("NIS_SPOOL_DIR");
      assertThat(probeFromAnotherProcess())
          .as("still locked after the refused open here (closing a second channel on the file would have freed it)")
          .isEqualTo("IN USE");
    }
    assertThat(probeFromAnotherProcess()).as("free again once the first closed").isEqualTo("OPENED");
  }

  private String probeFromAnotherProcess() throws Exception {
    Process probe = JavaMainProcess.start(Duration.ofMinutes(1), JournalLockProbeMain.class, directory.toString());
    assertThat(probe.waitFor(60, TimeUnit.SECONDS)).as("the probe ended").isTrue();
    String output = new String(probe.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    return output.lines().filter(line -> line.equals("OPENED") || line.equals("IN USE")).findFirst().orElse(output);
  }

  @Test
  void closingClearsTheMarksOfHandlersStillRunning() throws Exception {
    try (HandlingJournal journal = HandlingJournal.open(directory, clock)) {
      int slot = journal.claimSlot();
      journal.handling(slot, key, 7, Spent.NOTHING);
      // the bus stops waiting for this handler and closes: not an end while handling
    }

    assertThat(endsAfterReopening(7)).isZero();
  }

  @Test
  void aRecordWhoseHandlerReturnedIsNotCounted() throws Exception {
    try (HandlingJournal journal = HandlingJournal.open(directory, clock)) {
      int slot = journal.claimSlot();
      journal.handling(slot, key, 7, Spent.NOTHING);
      journal.handled(slot); // returned or threw: the process lives on
    }

    assertThat(endsAfterReopening(7)).isZero();
  }

  @Test
  void aSettledRecordIsForgottenAndItsSlotReused() throws Exception {
    HandlingJournal first = HandlingJournal.open(directory, clock);
    first.handling(first.claimSlot(), key, 7, Spent.NOTHING);
    first.closeLeavingMarks();
    try (HandlingJournal second = HandlingJournal.open(directory, clock)) {
      assertThat(second.spentOn(key, 7)).isEqualTo(new Spent(1, 1));
      int slot = second.claimSlot();
      second.handling(slot, key, 7, new Spent(1, 1));
      second.handled(slot);
      second.settled(key, 7); // handled at last, or dead-lettered
    }

    try (HandlingJournal third = HandlingJournal.open(directory, clock)) {
      assertThat(third.spentOn(key, 7)).isEqualTo(Spent.NOTHING);
      List<Integer> slots = new ArrayList<>();
      for (int i = 0; i < HandlingJournal.SLOTS; i++) {
        slots.add(third.claimSlot());
      }
      assertThat(slots).as("every slot free again").doesNotContain(-1).doesNotHaveDuplicates();
    }
  }

  @Test
  void countsWhoseLastEndIsOlderThanAWeekAreDropped() throws Exception {
    HandlingJournal journal = HandlingJournal.open(directory, clock);
    journal.handling(journal.claimSlot(), key, 7, Spent.NOTHING);
    journal.closeLeavingMarks();
    assertThat(endsAfterReopening(7)).isEqualTo(1);

    now.set(now.get().plus(HandlingJournal.KEPT_FOR).plus(Duration.ofMinutes(1)));

    assertThat(endsAfterReopening(7)).isZero();
  }

  @Test
  void whenEverySlotIsTakenFurtherWorkersAreNotCountedButWork() throws Exception {
    try (HandlingJournal journal = HandlingJournal.open(directory, clock)) {
      for (int i = 0; i < HandlingJournal.SLOTS; i++) {
        assertThat(journal.claimSlot()).isNotNegative();
      }
      int none = journal.claimSlot();
      assertThat(none).isEqualTo(-1);
      journal.handling(none, key, 7, Spent.NOTHING); // no effect, no error
      journal.handled(none);
      journal.releaseSlot(none);
    }

    assertThat(endsAfterReopening(7)).isZero();
  }

  private int endsAfterReopening(long offset) throws Exception {
    try (HandlingJournal journal = HandlingJournal.open(directory, clock)) {
      return journal.spentOn(key, offset).ends();
    }
  }
}
