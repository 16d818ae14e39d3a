package org.nisprotocol.kafka;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;
import org.nisprotocol.core.NisException;

/**
 * A message on its way to Kafka, as it waits in the spool: topic, key, encoded value, headers and
 * whether it takes the urgent lane.
 */
record SpooledRecord(String topic, String key, byte[] value, Map<String, String> headers, boolean urgent) {
  private static final int FORMAT = 1;

  byte[] toBytes() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(value.length + 128);
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(FORMAT);
      out.writeUTF(topic);
      out.writeUTF(key);
      out.writeBoolean(urgent);
      out.writeShort(headers.size());
      for (Map.Entry<String, String> header : headers.entrySet()) {
        out.writeUTF(header.getKey());
        out.writeUTF(header.getValue());
      }
      out.writeInt(value.length);
      out.write(value);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  /** A spooled record this version cannot read: written by another, or damaged. */
  static final class UnreadableException extends NisException {
    private static final long serialVersionUID = 1L;

    UnreadableException(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /**
   * @throws UnreadableException when the bytes are not a record this version writes
   */
  static SpooledRecord fromBytes(byte[] bytes) {
    try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes))) {
      int format = in.readByte();
      if (format != FORMAT) {
        throw new UnreadableException("a spooled record has the unknown format " + format, null);
      }
      String topic = in.readUTF();
      String key = in.readUTF();
      boolean urgent = in.readBoolean();
      int headerCount = in.readShort();
      Map<String, String> headers = new LinkedHashMap<>();
      for (int i = 0; i < headerCount; i++) {
        headers.put(in.readUTF(), in.readUTF());
      }
      int length = in.readInt();
      if (length < 0 || length != in.available()) {
        throw new UnreadableException("a spooled record's value of " + length + " bytes is followed by "
            + in.available() + " bytes", null);
      }
      byte[] value = new byte[length];
      in.readFully(value);
      return new SpooledRecord(topic, key, value, headers, urgent);
    } catch (IOException e) {
      throw new UnreadableException("a spooled record is damaged: " + e, e);
    }
  }
}
