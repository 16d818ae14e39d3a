package org.nisprotocol.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nisprotocol.core.RetriableException;

class DiskSpoolTest {
  @TempDir Path directory;

  private static byte[] bytes(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }

  private static List<String> texts(List<DiskSpool.Entry> entries) {
    List<String> texts = new ArrayList<>();
    entries.forEach(e -> texts.add(new String(e.payload(), StandardCharsets.UTF_8)));
    return texts;
  }

  @Test
  void recordsComeOutInTheOrderTheyWentIn() {
    try (DiskSpool spool = DiskSpool.open(directory, 1 << 20, false)) {
      for (int i = 0; i < 10; i++) {
        spool.append(bytes("m" + i));
      }

      assertThat(texts(spool.peek(3))).containsExactly("m0", "m1", "m2");
      spool.acknowledge(spool.peek(3));
      assertThat(texts(spool.peek(100))).containsExactly("m3", "m4", "m5", "m6", "m7", "m8", "m9");
      assertThat(spool.size()).isEqualTo(7);
    }
  }

  @Test
  void recordsAppendedWithOneForceForAllAreThereAfterAReopenAndTheBoundStillHolds() {
    try (DiskSpool spool = DiskSpool.open(directory, 3 * (8 + 2), true)) {
      spool.appendUnforced(bytes("a0"));
      spool.appendUnforced(bytes("a1"));
      spool.appendUnforced(bytes("a2"));
      assertThatThrownBy(() -> spool.appendUnforced(bytes("a3"))).isInstanceOf(DiskSpool.SpoolFullException.class);
      spool.force();
    }
    try (DiskSpool reopened = DiskSpool.open(directory, 1 << 20, true)) {
      assertThat(texts(reopened.peek(10))).containsExactly("a0", "a1", "a2");
    }
  }

  @Test
  void readsAreBoundedByBytesAndGoOnFromARecordAlreadyRead() {
    try (DiskSpool spool = DiskSpool.open(directory, 1 << 24, false)) {
      for (int i = 0; i < 1000; i++) {
        spool.append(bytes(String.format("%04d", i) + "x".repeat(996))); // 1,000 bytes each
      }

      List<DiskSpool.Entry> first = spool.peek(10_000, 10_000);
      List<DiskSpool.Entry> second = spool.peekAfter(first.getLast(), 10_000, 10_000);
      List<DiskSpool.Entry> rest = spool.peekAfter(second.getLast(), 10_000, Long.MAX_VALUE);

      assertThat(first).hasSize(10);
      assertThat(texts(second)).hasSize(10).allMatch(text -> text.length() == 1000);
      assertThat(texts(second).getFirst()).startsWith("0010");
      assertThat(rest).hasSize(980);
      assertThat(texts(rest).getLast()).startsWith("0999");
      assertThat(spool.peek(10_000, 1)).as("at least one record, however small the bound").hasSize(1);
      spool.acknowledge(first);
      assertThat(texts(spool.peek(1))).containsExactly(texts(second).getFirst());
    }
  }

  @Test
  void aRecordLargerThanAReadChunkComesOutWhole() {
    try (DiskSpool spool = DiskSpool.open(directory, 1 << 24, false)) {
      byte[] large = new byte[3 * 1024 * 1024];
      java.util.Arrays.fill(large, (byte) 'L');
      spool.append(bytes("small"));
      spool.append(large);
      spool.append(bytes("after"));

      List<DiskSpool.Entry> entries = spool.peek(10);

      assertThat(entries).hasSize(3);
      assertThat(entries.get(1).payload()).isEqualTo(large);
      assertThat(texts(List.of(entries.get(2)))).containsExactly("after");
    }
  }

  /**
   * An acknowledgement whose cursor cannot be written (here: a directory in the way of the
   * cursor's temporary file) changes nothing: the records are still the oldest, counted, and the
   * next acknowledgement takes them. Before, the cursor moved in memory while the counts stayed,
   * so the spool never became empty again.
   */
  @Test
  void anAcknowledgementThatCannotBeWrittenChangesNothing() throws IOException {
    try (DiskSpool spool = DiskSpool.open(directory, 1 << 20, false)) {
      for (int i = 0; i < 3; i++) {
        spool.append(bytes("m" + i));
      }
      List<DiskSpool.Entry> firstTwo = spool.peek(2);
      Path inTheWay = Files.createDirectory(directory.resolve("cursor.tmp"));

      assertThatThrownBy(() -> spool.acknowledge(firstTwo)).hasMessageContaining("cannot update the message spool");
      assertThat(spool.size()).isEqualTo(3);
      assertThat(texts(spool.peek(10))).containsExactly("m0", "m1", "m2");

      Files.delete(inTheWay);
      spool.acknowledge(spool.peek(2));
      assertThat(texts(spool.peek(10))).containsExactly("m2");
      spool.acknowledge(spool.peek(1));
      assertThat(spool.isEmpty()).isTrue();
      assertThat(spool.size()).isZero();
    }
  }

  @Test
  void whatWasNotAcknowledgedSurvivesAReopen() {
    try (DiskSpool spool = DiskSpool.open(directory, 1 << 20, false)) {
      for (int i = 0; i < 5; i++) {
        spool.append(bytes("m" + i));
      }
      spool.acknowledge(spool.peek(2));
    }

    try (DiskSpool reopened = DiskSpool.open(directory, 1 << 20, false)) {
      assertThat(reopened.size()).isEqualTo(3);
      assertThat(texts(reopened.peek(10))).containsExactly("m2", "m3", "m4");
      reopened.append(bytes("m5"));
      assertThat(texts(reopened.peek(10))).containsExactly("m2", "m3", "m4", "m5");
    }
  }

  @Test
  void aTornRecordAtTheTailIsCutOffOnOpen() throws IOException {
    try (DiskSpool spool = DiskSpool.open(directory, 1 << 20, false)) {
      spool.append(bytes("complete-1"));
      spool.append(bytes("complete-2"));
    }
    Path segment = segments().get(0);
    long intact = Files.size(segment);
    try (RandomAccessFile file = new RandomAccessFile(segment.toFile(), "rw")) {
      file.seek(intact);
      file.writeInt(1000); // a header promising 1000 bytes, then only a few: a write cut short
      file.writeInt(12345);
      file.write(bytes("torn"));
    }

    try (DiskSpool reopened = DiskSpool.open(directory, 1 << 20, false)) {
      assertThat(texts(reopened.peek(10))).containsExactly("complete-1", "complete-2");
      reopened.append(bytes("after-crash"));
      assertThat(texts(reopened.peek(10))).containsExactly("complete-1", "complete-2", "after-crash");
    }
  }

  @Test
  void aCorruptRecordEndsTheLog() throws IOException {
    try (DiskSpool spool = DiskSpool.open(directory, 1 << 20, false)) {
      spool.append(bytes("good"));
      spool.append(bytes("flipped"));
    }
    Path segment = segments().get(0);
    try (RandomAccessFile file = new RandomAccessFile(segment.toFile(), "rw")) {
      file.seek(Files.size(segment) - 1);
      file.write('X');
    }

    try (DiskSpool reopened = DiskSpool.open(directory, 1 << 20, false)) {
      assertThat(texts(reopened.peek(10))).containsExactly("good");
    }
  }

  @Test
  void aFullSpoolRefusesWithAClearError() throws IOException {
    try (DiskSpool spool = DiskSpool.open(directory, 100, false)) {
      spool.append(new byte[50]);

      assertThatThrownBy(() -> spool.append(new byte[50]))
          .isInstanceOf(DiskSpool.SpoolFullException.class)
          .hasMessageContaining("spool is full");
      spool.acknowledge(spool.peek(1));
      spool.append(new byte[50]); // its delivered record's file goes to make room

      assertThat(fileBytes()).isEqualTo(58).isEqualTo(spool.fileBytes());
      assertThat(spool.peek(10)).hasSize(1);
    }
  }

  @Test
  void theFilesNeverGoPastTheBoundThoughDeliveredRecordsWaitForTheirSegmentToBeUsedUp() throws IOException {
    int bound = 8 * 1024; // segments of 1 KiB: nine records of 108 bytes each
    byte[] record = new byte[100];
    try (DiskSpool spool = DiskSpool.open(directory, bound, false)) {
      int appended = 0;
      while (appendedOrFull(spool, record)) {
        appended++;
        assertThat(fileBytes()).isLessThanOrEqualTo(bound);
      }
      assertThat(appended).isEqualTo(bound / 108);

      spool.acknowledge(spool.peek(5)); // the first segment's first five: it stays on disk
      assertThat(spool.sizeBytes() + 108).as("room for the records waiting").isLessThanOrEqualTo(bound);
      assertThatThrownBy(() -> spool.append(record))
          .isInstanceOf(DiskSpool.SpoolFullException.class)
          .hasMessageContaining("its files hold " + fileBytes() + " of " + bound + " bytes: " + spool.sizeBytes() + " wait");
      assertThat(fileBytes()).isLessThanOrEqualTo(bound);

      spool.acknowledge(spool.peek(4)); // the first segment is used up and goes
      for (int i = 0; i < 9; i++) {
        spool.append(record);
        assertThat(fileBytes()).isLessThanOrEqualTo(bound).isEqualTo(spool.fileBytes());
      }
      assertThat(appendedOrFull(spool, record)).isFalse();
      assertThat(spool.size()).isEqualTo(appended);
    }
    try (DiskSpool reopened = DiskSpool.open(directory, bound, false)) {
      assertThat(reopened.fileBytes()).isEqualTo(fileBytes());
      assertThat(appendedOrFull(reopened, record)).as("the bound holds after a restart too").isFalse();
      while (!reopened.isEmpty()) {
        reopened.acknowledge(reopened.peek(7));
      }

      assertThat(fileBytes()).as("all delivered: the files go, and the spool starts afresh").isZero();
      assertThat(segments()).hasSize(1);
      reopened.append(record);
      assertThat(texts(reopened.peek(10))).hasSize(1);
    }
  }

  @Test
  void deliveredFilesThatCouldNotGoAtOnceGoWhenAnAppendNeedsTheRoom() throws IOException {
    try (DiskSpool spool = DiskSpool.open(directory, 100, false)) { // a segment a record
      spool.append(new byte[50]);
      Path segmentInTheWay = Files.createDirectory(directory.resolve(String.format("segment-%010d.spool", 1)));

      spool.acknowledge(spool.peek(1)); // delivered, but no new segment can be started: its file stays
      assertThat(spool.isEmpty()).isTrue();
      assertThat(fileBytes()).isEqualTo(58).isEqualTo(spool.fileBytes());
      assertThatThrownBy(() -> spool.append(new byte[50]))
          .isInstanceOf(RetriableException.class)
          .hasMessageContaining("cannot write to the message spool")
          .hasMessageContaining("the message was not accepted");

      Files.delete(segmentInTheWay);
      Path cursorInTheWay = Files.createDirectory(directory.resolve("cursor.tmp"));
      for (int attempt = 0; attempt < 3; attempt++) {
        assertThatThrownBy(() -> spool.append(new byte[50])).isInstanceOf(RetriableException.class);
      }
      assertThat(segments()).as("one new segment, however many attempts").hasSize(2);
      assertThat(spool.isEmpty()).isTrue();

      Files.delete(cursorInTheWay);
      spool.append(new byte[50]);

      assertThat(fileBytes()).isEqualTo(58).isEqualTo(spool.fileBytes());
      assertThat(segments()).hasSize(1);
      assertThat(spool.peek(10)).hasSize(1);
    }
    try (DiskSpool reopened = DiskSpool.open(directory, 100, false)) {
      assertThat(reopened.size()).isEqualTo(1);
    }
  }

  private static boolean appendedOrFull(DiskSpool spool, byte[] record) {
    try {
      spool.append(record);
      return true;
    } catch (DiskSpool.SpoolFullException full) {
      return false;
    }
  }

  private long fileBytes() throws IOException {
    long bytes = 0;
    for (Path segment : segments()) {
      if (Files.isRegularFile(segment)) { // not a directory a test put in a segment's way
        bytes += Files.size(segment);
      }
    }
    return bytes;
  }

  @Test
  void segmentsRollAndConsumedOnesAreDeleted() throws IOException {
    byte[] big = new byte[(int) (DiskSpool.SEGMENT_BYTES / 3)];
    try (DiskSpool spool = DiskSpool.open(directory, 8 * DiskSpool.SEGMENT_BYTES, false)) {
      for (int i = 0; i < 5; i++) {
        big[0] = (byte) i;
        spool.append(big);
      }
      assertThat(segments()).hasSize(3);

      spool.acknowledge(spool.peek(4));

      assertThat(segments()).hasSize(1);
      List<DiskSpool.Entry> rest = spool.peek(10);
      assertThat(rest).hasSize(1);
      assertThat(rest.get(0).payload()[0]).isEqualTo((byte) 4);
    }
    try (DiskSpool reopened = DiskSpool.open(directory, 8 * DiskSpool.SEGMENT_BYTES, false)) {
      assertThat(reopened.size()).isEqualTo(1);
    }
  }

  @Test
  void anAppendOnAnInterruptedThreadLeavesTheSpoolWorking() {
    try (DiskSpool spool = DiskSpool.open(directory, 1 << 20, true)) {
      spool.append(bytes("before"));

      Thread.currentThread().interrupt();
      try {
        spool.append(bytes("interrupted"));
        assertThat(Thread.currentThread().isInterrupted()).as("the interrupt is kept for the caller").isTrue();
      } finally {
        Thread.interrupted();
      }
      spool.append(bytes("after"));

      assertThat(texts(spool.peek(10))).containsExactly("before", "interrupted", "after");
    }
  }

  @Test
  void aSegmentThatCannotBeCreatedFailsItsAppendOnly() throws IOException {
    byte[] third = new byte[(int) (DiskSpool.SEGMENT_BYTES / 3)];
    try (DiskSpool spool = DiskSpool.open(directory, 8 * DiskSpool.SEGMENT_BYTES, false)) {
      spool.append(third);
      spool.append(third); // the next one goes to a new segment
      Path inTheWay = Files.createDirectory(directory.resolve(String.format("segment-%010d.spool", 1)));

      assertThatThrownBy(() -> spool.append(third)).hasMessageContaining("cannot write to the message spool");
      Files.delete(inTheWay);
      third[0] = 7;
      spool.append(third);

      List<DiskSpool.Entry> all = spool.peek(10);
      assertThat(all).hasSize(3);
      assertThat(all.get(2).payload()[0]).isEqualTo((byte) 7);
      assertThat(segments()).hasSize(2);
    }
  }

  @Test
  void aZeroFilledTailIsNoRecords() throws IOException {
    try (DiskSpool spool = DiskSpool.open(directory, 1 << 20, false)) {
      spool.append(bytes("a"));
      spool.append(bytes("b"));
    }
    Path segment = segments().get(0);
    Files.write(segment, new byte[16], java.nio.file.StandardOpenOption.APPEND); // space the file system gave, never written

    try (DiskSpool reopened = DiskSpool.open(directory, 1 << 20, false)) {
      assertThat(reopened.size()).isEqualTo(2);
      assertThat(texts(reopened.peek(10))).containsExactly("a", "b");
    }
  }

  @Test
  void anEmptyRecordIsRefused() {
    try (DiskSpool spool = DiskSpool.open(directory, 1 << 20, false)) {
      assertThatThrownBy(() -> spool.append(new byte[0])).isInstanceOf(IllegalArgumentException.class);
      assertThat(spool.isEmpty()).isTrue();
    }
  }

  @Test
  void aCursorFileLeftEmptyStartsFromTheFirstRecordKept() throws IOException {
    try (DiskSpool spool = DiskSpool.open(directory, 1 << 20, true)) {
      spool.append(bytes("m0"));
      spool.append(bytes("m1"));
      spool.acknowledge(spool.peek(1));
    }
    Files.write(directory.resolve("cursor"), new byte[0]); // a rename that reached the disk before the data

    try (DiskSpool reopened = DiskSpool.open(directory, 1 << 20, true)) {
      assertThat(texts(reopened.peek(10))).as("at least once: the acknowledged one again").containsExactly("m0", "m1");
    }
  }

  private List<Path> segments() throws IOException {
    try (Stream<Path> files = Files.list(directory)) {
      return files.filter(p -> p.toString().endsWith(".spool")).sorted().toList();
    }
  }
}
