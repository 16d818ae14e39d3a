package org.nisprotocol.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.stream.Stream;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import org.nisprotocol.testkit.TemporaryDirectory;

/**
 * The spool against a model, a plain list of the records waiting: whatever appends, deliveries
 * (read ahead in two batches, as the drainer does), restarts and kill -9s (with a record torn at
 * the tail) come in whatever order, the spool holds exactly the records appended and not
 * acknowledged, in order; its files never pass the bound, and keep delivered records of one segment
 * at most; and it refuses an append only when its files leave no room.
 */
class DiskSpoolPropertiesTest {
  private static final int BOUND = 2048; // segments of 256 bytes
  private static final int HEADER_BYTES = 8;

  sealed interface Step permits Append, Deliver, Restart, Crash {}

  /** Appends a record of this many bytes. */
  record Append(int size) implements Step {}

  /** Reads up to {@code first} records, then up to {@code second} after them, and acknowledges both batches. */
  record Deliver(int first, int second) implements Step {}

  /** Closes the spool and opens it again. */
  record Restart() implements Step {}

  /**
   * Drops the spool unclosed, as kill -9 or a power loss would, leaving {@code tornBytes} of a
   * record at the tail of its last segment: cut short, or whole but for its payload, whose
   * checksum then fails.
   */
  record Crash(int tornBytes, boolean wholeButCorrupt) implements Step {}

  @Provide
  Arbitrary<List<Step>> steps() {
    Arbitrary<Step> append = Arbitraries.frequencyOf(
            Tuple.of(6, Arbitraries.integers().between(1, 64)),
            Tuple.of(2, Arbitraries.integers().between(65, BOUND / 8)),
            Tuple.of(1, Arbitraries.integers().between(BOUND / 8, BOUND)))
        .map(Append::new);
    Arbitrary<Step> deliver = Combinators.combine(
            Arbitraries.integers().between(1, 8), Arbitraries.integers().between(0, 8))
        .as(Deliver::new);
    Arbitrary<Step> restart = Arbitraries.just(new Restart());
    Arbitrary<Step> crash = Combinators.combine(Arbitraries.integers().between(0, 40), Arbitraries.of(false, true))
        .as(Crash::new);
    return Arbitraries.frequencyOf(
            Tuple.of(12, append),
            Tuple.of(3, deliver),
            Tuple.of(1, restart),
            Tuple.of(1, crash))
        .list().ofMinSize(1).ofMaxSize(150);
  }

  @Property(tries = 300)
  void theSpoolHoldsWhatWasAppendedAndNotAcknowledgedInOrderWithinItsBound(@ForAll("steps") List<Step> steps)
      throws IOException {
    List<String> waiting = new ArrayList<>(); // the model
    List<DiskSpool> dropped = new ArrayList<>(); // crashed ones, never used again
    int appended = 0;
    long largestRecord = 0;
    try (TemporaryDirectory directory = TemporaryDirectory.create("spool-model")) {
      Path dir = directory.path();
      DiskSpool spool = DiskSpool.open(dir, BOUND, false);
      try {
        for (Step step : steps) {
          switch (step) {
            case Append(int size) -> {
              byte[] payload = payload(appended++, size);
              try {
                spool.append(payload);
                waiting.add(text(payload));
                largestRecord = Math.max(largestRecord, HEADER_BYTES + size);
              } catch (DiskSpool.SpoolFullException e) {
                assertThat(spool.fileBytes() + HEADER_BYTES + size)
                    .as("refused %s while its files hold %d bytes", step, spool.fileBytes())
                    .isGreaterThan(BOUND);
                assertThat(waiting.isEmpty() && HEADER_BYTES + size <= BOUND)
                    .as("an empty spool takes any record within its bound")
                    .isFalse();
              }
            }
            case Deliver(int first, int second) -> {
              List<DiskSpool.Entry> batch = spool.peek(first);
              List<DiskSpool.Entry> next = batch.isEmpty() || second == 0
                  ? List.of()
                  : spool.peekAfter(batch.getLast(), second, Long.MAX_VALUE);
              spool.acknowledge(batch);
              spool.acknowledge(next);
              assertThat(texts(batch, next)).isEqualTo(waiting.subList(0, batch.size() + next.size()));
              waiting.subList(0, batch.size() + next.size()).clear();
            }
            case Restart() -> {
              spool.close();
              spool = DiskSpool.open(dir, BOUND, false);
            }
            case Crash(int tornBytes, boolean wholeButCorrupt) -> {
              dropped.add(spool);
              tearTail(dir, tornBytes, wholeButCorrupt);
              spool = DiskSpool.open(dir, BOUND, false);
            }
          }
          assertThat(texts(spool.peek(Integer.MAX_VALUE), List.of())).as("after %s", step).isEqualTo(waiting);
          assertThat(spool.size()).isEqualTo(waiting.size());
          assertThat(spool.sizeBytes()).isEqualTo(waitingBytes(waiting));
          assertThat(segmentFileBytes(dir)).as("after %s", step).isLessThanOrEqualTo(BOUND).isEqualTo(spool.fileBytes());
          assertThat(spool.fileBytes() - spool.sizeBytes())
              .as("delivered records kept on disk after %s: those of one segment at most", step)
              .isLessThanOrEqualTo(Math.max(BOUND / 8, largestRecord));
        }
      } finally {
        spool.close();
        dropped.forEach(DiskSpool::close);
      }
    }
  }

  /** A record of the given size that no other record of the run equals. */
  private static byte[] payload(int sequence, int size) {
    byte[] payload = new byte[size];
    for (int i = 0; i < size; i++) {
      payload[i] = (byte) (sequence * 31 + i * 7 + (i < 4 ? sequence >>> (8 * i) : 0));
    }
    return payload;
  }

  private static String text(byte[] payload) {
    return Base64.getEncoder().encodeToString(payload);
  }

  private static List<String> texts(List<DiskSpool.Entry> batch, List<DiskSpool.Entry> next) {
    List<String> texts = new ArrayList<>();
    Stream.concat(batch.stream(), next.stream()).forEach(e -> texts.add(text(e.payload())));
    return texts;
  }

  private static long waitingBytes(List<String> waiting) {
    return waiting.stream().mapToLong(t -> HEADER_BYTES + Base64.getDecoder().decode(t).length).sum();
  }

  private static long segmentFileBytes(Path dir) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.filter(p -> p.getFileName().toString().endsWith(".spool")).mapToLong(p -> p.toFile().length()).sum();
    }
  }

  /**
   * What a crash in the middle of an append leaves at the end of the last segment: the first
   * {@code tornBytes} of a 50-byte record, or a record of {@code tornBytes} whose header reached
   * the file and whose payload did not (zeros, a checksum that fails).
   */
  private static void tearTail(Path dir, int tornBytes, boolean wholeButCorrupt) throws IOException {
    if (tornBytes == 0 || (wholeButCorrupt && tornBytes <= HEADER_BYTES)) {
      return;
    }
    Path last;
    try (Stream<Path> files = Files.list(dir)) {
      last = files.filter(p -> p.getFileName().toString().endsWith(".spool")).sorted().reduce((a, b) -> b).orElseThrow();
    }
    int claimed = wholeButCorrupt ? tornBytes - HEADER_BYTES : 50;
    ByteBuffer record = ByteBuffer.allocate(HEADER_BYTES + claimed).putInt(claimed).putInt(0x5eed5eed);
    try (RandomAccessFile file = new RandomAccessFile(last.toFile(), "rw")) {
      file.seek(file.length());
      file.write(record.array(), 0, Math.min(tornBytes, record.capacity()));
    }
  }
}
