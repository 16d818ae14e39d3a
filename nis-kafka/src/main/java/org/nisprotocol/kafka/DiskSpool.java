package org.nisprotocol.kafka;

import java.io.FileOutputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.stream.Stream;
import java.util.zip.CRC32C;
import org.nisprotocol.core.RetriableException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A durable first-in first-out queue of byte records on local disk: where accepted messages wait
 * while Kafka is unreachable.
 *
 * <h2>Format</h2>
 *
 * Records are appended to segment files {@code segment-NNNNNNNNNN.spool} (a new one past {@link
 * #SEGMENT_BYTES}, or past an eighth of the bound when that is less); each record is its length
 * (4 bytes), the CRC32C of its payload (4 bytes) and the payload. The file {@code cursor} holds
 * the segment and position of the first record not yet acknowledged; it is replaced atomically
 * (write, then rename). Fully acknowledged segments are deleted.
 *
 * <h2>Bound</h2>
 *
 * The bound holds for the files, not only for the records waiting: a segment's records already
 * delivered stay on disk until the segment is used up, so they count until then (at most a
 * segment's worth, an eighth of the bound or less, unless a single record is larger). Once every
 * record is delivered, the spool starts a new segment and the old one goes.
 *
 * <h2>Crash safety</h2>
 *
 * An append returns once the record was written to the file, so it survives a kill -9 of the
 * process (the operating system holds the data). With {@code fsync} it is also forced to the device
 * first, so it survives a power loss. On open, the records after the cursor are read back; a torn
 * or corrupt record at the tail (a write cut short by a crash) ends the log and is cut off. A
 * record acknowledged but not yet recorded in the cursor may be delivered again (at-least-once).
 * A record is never empty, so zeros the file system left at the end of a file after a power loss
 * (space given, never written) end the log too; a cursor file left empty or damaged that way
 * starts it from its first segment kept (at-least-once again).
 *
 * <p>Segments are written through {@link RandomAccessFile}, not a {@link FileChannel}: a channel
 * closes for good when a thread using it is interrupted, which would stop a publisher's caller
 * that cancels its tasks from spooling, and every publisher after it.
 *
 * <p>Thread-safe: appends and the reader may run on different threads.
 */
final class DiskSpool implements AutoCloseable {
  static final long SEGMENT_BYTES = 64L * 1024 * 1024;
  private static final Logger log = LoggerFactory.getLogger(DiskSpool.class);
  private static final int HEADER_BYTES = 8;
  private static final String CURSOR_FILE = "cursor";
  private static final long READ_CHUNK_BYTES = 1024 * 1024;

  /** A spooled record and where the next one starts, for {@link #acknowledge}. */
  record Entry(byte[] payload, long segment, long nextPosition) {}

  /** The spool holds as many bytes as it may. */
  static final class SpoolFullException extends RetriableException {
    private static final long serialVersionUID = 1L;

    SpoolFullException(String message) {
      super(message);
    }
  }

  /**
   * A record could not be written (or forced) to the spool's files: a full disk, say, which may
   * pass; the record was not accepted.
   */
  static final class SpoolWriteException extends RetriableException {
    private static final long serialVersionUID = 1L;

    SpoolWriteException(Path directory, IOException cause) {
      super("cannot write to the message spool in " + directory + " (" + cause + "); the message was not accepted",
          cause);
    }
  }

  private final Path directory;
  private final long maxBytes;
  private final long segmentBytes;
  private final boolean fsync;
  // segment index -> size in bytes of the valid records in it
  private final TreeMap<Long, Long> segments = new TreeMap<>();
  private long cursorSegment;
  private long cursorPosition;
  private volatile long pendingRecords; // read without the lock by isEmpty()
  private long pendingBytes;
  private RandomAccessFile writer;
  private long writerSegment;
  private boolean closed;

  private DiskSpool(Path directory, long maxBytes, boolean fsync) {
    this.directory = directory;
    this.maxBytes = maxBytes;
    this.segmentBytes = Math.min(SEGMENT_BYTES, Math.max(HEADER_BYTES + 1, maxBytes / 8));
    this.fsync = fsync;
  }

  /**
   * Opens the spool in the directory, recovering what an earlier process left there.
   *
   * @param maxBytes bound on the bytes of the spool's files; appends beyond it fail
   */
  static DiskSpool open(Path directory, long maxBytes, boolean fsync) {
    DiskSpool spool = new DiskSpool(directory, maxBytes, fsync);
    try {
      Files.createDirectories(directory);
      spool.recover();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot open the message spool in " + directory, e);
    }
    return spool;
  }

  /**
   * Appends a record.
   *
   * @throws SpoolFullException when it would take the spool past its bound
   */
  synchronized void append(byte[] payload) {
    appendUnforced(payload);
    force();
  }

  /**
   * Appends a record without forcing it to the device; {@link #force()} after the last of a
   * group makes them all durable with one flush (without fsync it does nothing).
   *
   * @throws SpoolFullException when it would take the spool past its bound
   */
  synchronized void appendUnforced(byte[] payload) {
    requireOpen();
    if (payload.length == 0) {
      throw new IllegalArgumentException("a spooled record is never empty");
    }
    long size = HEADER_BYTES + (long) payload.length;
    if (pendingBytes + size > maxBytes) {
      throw new SpoolFullException(
          "the local message spool is full ("
              + pendingBytes
              + " of "
              + maxBytes
              + " bytes wait for Kafka); the message was not accepted. Retry when Kafka is back");
    }
    try {
      long fileBytes = fileBytes();
      if (fileBytes + size > maxBytes) {
        startAfreshIfAllDelivered(); // when all is delivered, the files go
        fileBytes = fileBytes();
      }
      if (fileBytes + size > maxBytes) { // delivered records wait for their segment to be used up
        throw new SpoolFullException(
            "the local message spool is full (its files hold "
                + fileBytes
                + " of "
                + maxBytes
                + " bytes: "
                + pendingBytes
                + " wait for Kafka, the rest were delivered and go when their segment is); the message was not"
                + " accepted. Retry in a moment");
      }
      long segmentSize = segments.getOrDefault(writerSegment, 0L);
      if (segmentSize > 0 && segmentSize + size > segmentBytes) {
        rollSegment();
        segmentSize = 0;
      }
      ByteBuffer record = ByteBuffer.allocate((int) size);
      CRC32C crc = new CRC32C();
      crc.update(payload);
      record.putInt(payload.length).putInt((int) crc.getValue()).put(payload);
      writer.seek(segmentSize);
      try {
        writer.write(record.array());
      } catch (IOException e) {
        cutOffPartialWrite(segmentSize, e);
        throw e;
      }
      segments.put(writerSegment, segmentSize + size);
      pendingRecords++;
      pendingBytes += size;
    } catch (IOException e) {
      throw new SpoolWriteException(directory, e);
    }
  }

  /** Cuts off what a failed write left of its record, so that the file is as long as its records. */
  private void cutOffPartialWrite(long validEnd, IOException failure) {
    try {
      writer.setLength(validEnd);
    } catch (IOException alsoFailed) {
      failure.addSuppressed(alsoFailed); // the next open cuts the torn record off
    }
  }

  /**
   * With every record delivered, moves the cursor to a new segment, so that the files holding
   * only delivered records go. When a step fails, the spool is as it was, or (the cursor moved,
   * the old files not yet deleted) as it is after an acknowledgement whose deletion failed.
   */
  private void startAfreshIfAllDelivered() throws IOException {
    if (pendingRecords != 0 || fileBytes() == 0) {
      return;
    }
    if (writerSegment == cursorSegment || segments.get(writerSegment) != 0) {
      rollSegment(); // else an empty one is there already, from an attempt whose cursor was not written
    }
    writeCursor(writerSegment, 0);
    cursorSegment = writerSegment;
    cursorPosition = 0;
    deleteConsumedSegments();
  }

  /** With fsync, forces what was appended to the device. */
  synchronized void force() {
    if (!fsync) {
      return;
    }
    requireOpen();
    try {
      writer.getFD().sync();
    } catch (IOException e) {
      throw new SpoolWriteException(directory, e);
    }
  }

  /** Up to {@code max} records from the oldest unacknowledged one, without removing them. */
  List<Entry> peek(int max) {
    return peek(max, Long.MAX_VALUE);
  }

  /**
   * Records from the oldest unacknowledged one, without removing them: at most {@code maxRecords},
   * and no more payload bytes than {@code maxBytes} (but always at least one record).
   */
  synchronized List<Entry> peek(int maxRecords, long maxBytes) {
    return read(cursorSegment, cursorPosition, maxRecords, maxBytes);
  }

  /** Like {@link #peek(int, long)}, from the record after {@code last} (read earlier, not yet acknowledged). */
  synchronized List<Entry> peekAfter(Entry last, int maxRecords, long maxBytes) {
    return read(last.segment(), last.nextPosition(), maxRecords, maxBytes);
  }

  private static boolean wantsMore(List<Entry> entries, int maxRecords, long bytes, long maxBytes) {
    return entries.size() < maxRecords && (entries.isEmpty() || bytes < maxBytes);
  }

  /** Reads records from segment and position on, a chunk of the file at a time. */
  private List<Entry> read(long segment, long position, int maxRecords, long maxBytes) {
    requireOpen();
    List<Entry> entries = new ArrayList<>(Math.min(maxRecords, 1024));
    long bytes = 0;
    try {
      while (wantsMore(entries, maxRecords, bytes, maxBytes)) {
        Long size = segments.get(segment);
        if (size == null) {
          break;
        }
        if (position >= size) {
          Long next = segments.higherKey(segment);
          if (next == null) {
            break;
          }
          segment = next;
          position = 0;
          continue;
        }
        try (FileChannel channel = FileChannel.open(segmentPath(segment), StandardOpenOption.READ)) {
          long nextRecordBytes = HEADER_BYTES; // more when the last read ended inside a longer record
          while (wantsMore(entries, maxRecords, bytes, maxBytes) && position < size) {
            // One read for many records: as much as is left to read, within the bounds.
            long wanted =
                Math.min(size - position, Math.max(nextRecordBytes, Math.min(maxBytes - bytes, READ_CHUNK_BYTES)));
            ByteBuffer chunk = ByteBuffer.allocate((int) wanted);
            readFully(channel, chunk, position);
            chunk.flip();
            nextRecordBytes = HEADER_BYTES;
            while (chunk.remaining() >= HEADER_BYTES && wantsMore(entries, maxRecords, bytes, maxBytes)) {
              int length = chunk.getInt(chunk.position());
              if (chunk.remaining() < HEADER_BYTES + length) {
                nextRecordBytes = HEADER_BYTES + (long) length;
                break;
              }
              byte[] payload = new byte[length];
              chunk.position(chunk.position() + HEADER_BYTES).get(payload);
              position += HEADER_BYTES + length;
              bytes += length;
              entries.add(new Entry(payload, segment, position));
            }
            if (position < size && position + nextRecordBytes > size) {
              throw new IOException("spool file " + segmentPath(segment) + " ends inside the record at " + position);
            }
          }
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the message spool in " + directory, e);
    }
    return entries;
  }

  /**
   * Removes the records delivered: a prefix of what {@link #peek} returned, in order.
   *
   * @throws IllegalArgumentException when the entries do not start at the oldest record
   */
  synchronized void acknowledge(List<Entry> delivered) {
    requireOpen();
    if (delivered.isEmpty()) {
      return;
    }
    long bytes = 0;
    for (Entry entry : delivered) {
      bytes += HEADER_BYTES + (long) entry.payload().length;
    }
    Entry last = delivered.get(delivered.size() - 1);
    if (delivered.size() > pendingRecords || bytes > pendingBytes) {
      throw new IllegalArgumentException(
          "acknowledged " + delivered.size() + " records but only " + pendingRecords + " wait");
    }
    long segment = last.segment();
    long position = last.nextPosition();
    Long next = segments.higherKey(segment);
    if (next != null && position >= segments.get(segment)) {
      segment = next; // the segment is used up: its file can go
      position = 0;
    }
    try {
      writeCursor(segment, position);
    } catch (IOException e) {
      // The cursor kept here did not move: the records are still the oldest, and are sent again
      // (also when the rename was done and only forcing the directory failed: sent twice then).
      throw new UncheckedIOException("cannot update the message spool in " + directory, e);
    }
    cursorSegment = segment;
    cursorPosition = position;
    pendingRecords -= delivered.size();
    pendingBytes -= bytes;
    try {
      deleteConsumedSegments();
      startAfreshIfAllDelivered();
    } catch (IOException e) {
      log.warn("cannot delete used message spool files in {} yet (tried again on the next acknowledgement): {}", directory, e.toString());
    }
  }

  boolean isEmpty() {
    return pendingRecords == 0;
  }

  /** Records waiting. */
  synchronized long size() {
    return pendingRecords;
  }

  /** Bytes waiting (payloads and record headers). */
  synchronized long sizeBytes() {
    return pendingBytes;
  }

  long maxBytes() {
    return maxBytes;
  }

  /**
   * Bytes of the segment files: the records waiting, and delivered ones whose segment is not used
   * up (a few segments: at most an eighth of the bound each, unless a record is larger).
   */
  synchronized long fileBytes() {
    long bytes = 0;
    for (long size : segments.values()) {
      bytes += size;
    }
    return bytes;
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      if (fsync) {
        writer.getFD().sync();
      }
      writer.close();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot close the message spool in " + directory, e);
    }
  }

  private void recover() throws IOException {
    try (Stream<Path> files = Files.list(directory)) {
      files
          .map(path -> path.getFileName().toString())
          .filter(name -> name.startsWith("segment-") && name.endsWith(".spool"))
          .forEach(
              name ->
                  segments.put(
                      Long.parseLong(name.substring("segment-".length(), name.length() - ".spool".length())),
                      0L));
    }
    readCursor();
    // Drop segments wholly before the cursor (their deletion may have been cut short).
    for (Long segment : List.copyOf(segments.headMap(cursorSegment).keySet())) {
      Files.deleteIfExists(segmentPath(segment));
      segments.remove(segment);
    }
    for (Long segment : List.copyOf(segments.keySet())) {
      long validEnd = scanSegment(segment);
      segments.put(segment, validEnd);
    }
    if (segments.isEmpty()) {
      segments.put(cursorSegment, 0L);
      cursorPosition = 0;
    }
    if (!segments.containsKey(cursorSegment)) {
      cursorSegment = segments.firstKey();
      cursorPosition = 0;
    }
    writerSegment = segments.lastKey();
    boolean created = !Files.exists(segmentPath(writerSegment));
    RandomAccessFile opened = new RandomAccessFile(segmentPath(writerSegment).toFile(), "rw");
    try {
      opened.setLength(segments.get(writerSegment));
      if (created) {
        forceDirectory();
      }
    } catch (IOException e) {
      opened.close();
      throw e;
    }
    writer = opened;
  }

  /** Counts the valid records of a segment from the cursor on; returns where they end. */
  private long scanSegment(long segment) throws IOException {
    Path path = segmentPath(segment);
    long start = segment == cursorSegment ? cursorPosition : 0;
    try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      long fileSize = channel.size();
      if (start > fileSize) {
        start = fileSize;
        cursorPosition = fileSize;
      }
      long position = start;
      while (position + HEADER_BYTES <= fileSize) {
        ByteBuffer header = ByteBuffer.allocate(HEADER_BYTES);
        readFully(channel, header, position);
        header.flip();
        int length = header.getInt();
        int expectedCrc = header.getInt();
        if (length <= 0 || position + HEADER_BYTES + length > fileSize) {
          break;
        }
        ByteBuffer payload = ByteBuffer.allocate(length);
        readFully(channel, payload, position + HEADER_BYTES);
        CRC32C crc = new CRC32C();
        crc.update(payload.array());
        if ((int) crc.getValue() != expectedCrc) {
          break;
        }
        position += HEADER_BYTES + length;
        pendingRecords++;
        pendingBytes += HEADER_BYTES + length;
      }
      if (position < fileSize) {
        channel.truncate(position); // a torn or corrupt tail: cut it off
      }
      return position;
    }
  }

  /** Goes on in a new segment file; when it cannot be created, nothing changed. */
  private void rollSegment() throws IOException {
    Path next = Files.createFile(segmentPath(writerSegment + 1));
    RandomAccessFile nextWriter;
    try {
      nextWriter = new RandomAccessFile(next.toFile(), "rw");
    } catch (IOException e) {
      deleteQuietly(next, e);
      throw e;
    }
    try {
      if (fsync) {
        writer.getFD().sync();
        forceDirectory();
      }
      writer.close();
    } catch (IOException e) {
      nextWriter.close();
      deleteQuietly(next, e);
      throw e;
    }
    writer = nextWriter;
    writerSegment++;
    segments.put(writerSegment, 0L);
  }

  /** Deletes a segment just created, its failure added to the error that undoes it. */
  private static void deleteQuietly(Path segment, IOException error) {
    try {
      Files.deleteIfExists(segment);
    } catch (IOException alsoFailed) {
      error.addSuppressed(alsoFailed);
    }
  }

  /** With fsync, forces the directory's entries (files created, renamed) to the device. */
  private void forceDirectory() throws IOException {
    if (!fsync) {
      return;
    }
    // Through a channel, the one way to a directory; its interrupt is kept from it, then restored.
    boolean interrupted = Thread.interrupted();
    try (FileChannel entries = FileChannel.open(directory, StandardOpenOption.READ)) {
      entries.force(true);
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private void deleteConsumedSegments() throws IOException {
    for (Long segment : List.copyOf(segments.headMap(cursorSegment).keySet())) {
      Files.deleteIfExists(segmentPath(segment));
      segments.remove(segment);
    }
  }

  private void readCursor() throws IOException {
    Path cursor = directory.resolve(CURSOR_FILE);
    if (!Files.exists(cursor)) {
      cursorSegment = segments.isEmpty() ? 0 : segments.firstKey();
      cursorPosition = 0;
      return;
    }
    String text = Files.readString(cursor, StandardCharsets.US_ASCII);
    String[] parts = text.trim().split(" ");
    try {
      cursorSegment = Long.parseLong(parts[0]);
      cursorPosition = Long.parseLong(parts[1]);
    } catch (NumberFormatException | ArrayIndexOutOfBoundsException e) {
      // Written, then renamed, and only the rename reached the disk before a power loss.
      log.warn("the message spool's cursor in {} is damaged ({} bytes: {}); its messages are sent from its first"
          + " segment kept, some perhaps again", directory, text.length(), e.toString());
      cursorSegment = segments.isEmpty() ? 0 : segments.firstKey();
      cursorPosition = 0;
    }
  }

  private void writeCursor(long segment, long position) throws IOException {
    Path temporary = directory.resolve(CURSOR_FILE + ".tmp");
    try (FileOutputStream out = new FileOutputStream(temporary.toFile())) {
      out.write((segment + " " + position + "\n").getBytes(StandardCharsets.US_ASCII));
      if (fsync) {
        out.getFD().sync(); // before the rename: else the new name may reach the disk before the text
      }
    }
    Files.move(
        temporary,
        directory.resolve(CURSOR_FILE),
        StandardCopyOption.ATOMIC_MOVE,
        StandardCopyOption.REPLACE_EXISTING);
    forceDirectory();
  }

  private Path segmentPath(long segment) {
    return directory.resolve(String.format("segment-%010d.spool", segment));
  }

  private static void readFully(FileChannel channel, ByteBuffer buffer, long position)
      throws IOException {
    while (buffer.hasRemaining()) {
      int read = channel.read(buffer, position + buffer.position());
      if (read < 0) {
        throw new IOException("unexpected end of spool file at " + position);
      }
    }
  }

  private void requireOpen() {
    if (closed) {
      throw new IllegalStateException("the message spool in " + directory + " is closed");
    }
  }
}
