package org.nisprotocol.kafka;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;

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

  static SpooledRecord fromBytes(byte[] bytes) {
    try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes))) {
      int format = in.readByte();
      if (format != FORMAT) {
        throw new IllegalStateException("spooled record has unknown format " + format);
      }
      String topic = in.readUTF();
      String key = in.readUTF();
      boolean urgent = in.readBoolean();
      int headerCount = in.readShort();
      Map<String, String> headers = new LinkedHashMap<>();
      for (int i = 0; i < headerCount; i++) {
        headers.put(in.readUTF(), in.readUTF());
      }
      byte[] value = new byte[in.readInt()];
      in.readFully(value);
      return new SpooledRecord(topic, key, value, headers, urgent);
    } catch (IOException e) {
      throw new UncheckedIOException("a spooled record is damaged", e);
    }
  }
}
