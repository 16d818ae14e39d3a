package org.nisprotocol.core;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Writes JSON straight into a UTF-8 byte array: the hot path of encoding a message, where a
 * general-purpose generator's set-up and buffers cost more than the writing. Handles exactly the
 * values message content holds (maps with string keys, lists, strings, numbers, booleans, null).
 * Escapes as JSON requires: quote, backslash and control characters; everything else is written
 * as UTF-8. A lone surrogate (not text in any encoding) becomes '?', as in {@link
 * String#getBytes}; JSON parsers refuse it otherwise. Non-finite doubles, which JSON cannot hold, are written
 * as null. Not thread-safe: one writer per message.
 */
final class JsonWriter {
  private static final byte[] HEX = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] NULL = {'n', 'u', 'l', 'l'};
  private static final byte[] TRUE = {'t', 'r', 'u', 'e'};
  private static final byte[] FALSE = {'f', 'a', 'l', 's', 'e'};

  private byte[] buffer;
  private int length;

  JsonWriter(int capacity) {
    buffer = new byte[Math.max(64, capacity)];
  }

  byte[] toBytes() {
    return Arrays.copyOf(buffer, length);
  }

  JsonWriter raw(char ascii) {
    ensure(1);
    buffer[length++] = (byte) ascii;
    return this;
  }

  JsonWriter raw(String ascii) {
    ensure(ascii.length());
    for (int i = 0; i < ascii.length(); i++) {
      buffer[length++] = (byte) ascii.charAt(i);
    }
    return this;
  }

  /** Writes {@code "name":}. */
  JsonWriter field(String name) {
    string(name);
    return raw(':');
  }

  JsonWriter nullValue() {
    return bytes(NULL);
  }

  JsonWriter string(String text) {
    // The JDK's UTF-8 encoder is vectorised; escaping then needs one pass over bytes, since
    // every byte of a multi-byte sequence is >= 0x80 and never needs escaping.
    byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
    ensure(utf8.length + 2);
    buffer[length++] = '"';
    int start = 0;
    int i = 0;
    // Eight bytes at a time while none needs escaping: the common case of a long text.
    while (i + 8 <= utf8.length && !needsEscape((long) LONGS.get(utf8, i))) {
      i += 8;
    }
    for (; i < utf8.length; i++) {
      byte b = utf8[i];
      if ((b >= 0 && b < 0x20) || b == '"' || b == '\\') {
        System.arraycopy(utf8, start, buffer, length, i - start);
        length += i - start;
        escape((char) b);
        ensure(utf8.length - i + 1);
        start = i + 1;
      }
    }
    System.arraycopy(utf8, start, buffer, length, utf8.length - start);
    length += utf8.length - start;
    return raw('"');
  }

  /** Any value message content may hold. */
  JsonWriter value(Object value) {
    if (value == null) {
      return nullValue();
    }
    if (value instanceof String text) {
      return string(text);
    }
    if (value instanceof Map<?, ?> map) {
      raw('{');
      boolean first = true;
      for (Map.Entry<?, ?> entry : map.entrySet()) {
        if (!first) {
          raw(',');
        }
        first = false;
        field((String) entry.getKey()).value(entry.getValue());
      }
      return raw('}');
    }
    if (value instanceof List<?> list) {
      raw('[');
      for (int i = 0; i < list.size(); i++) {
        if (i > 0) {
          raw(',');
        }
        value(list.get(i));
      }
      return raw(']');
    }
    if (value instanceof Integer || value instanceof Long || value instanceof BigInteger) {
      return raw(value.toString());
    }
    if (value instanceof Double number) {
      return number.isNaN() || number.isInfinite() ? nullValue() : raw(number.toString());
    }
    if (value instanceof BigDecimal number) {
      return raw(number.toString());
    }
    if (value instanceof Boolean bool) {
      return bytes(bool ? TRUE : FALSE);
    }
    return string(value.toString());
  }

  private static final java.lang.invoke.VarHandle LONGS =
      java.lang.invoke.MethodHandles.byteArrayViewVarHandle(long[].class, java.nio.ByteOrder.LITTLE_ENDIAN);
  private static final long ONES = 0x0101010101010101L;
  private static final long HIGHS = 0x8080808080808080L;

  /**
   * Whether any of the eight bytes is a control character (below 0x20), a quote or a backslash.
   * Bytes of multi-byte characters (0x80 and up) never match.
   */
  static boolean needsEscape(long bytes) {
    long below20 = (bytes - ONES * 0x20) & ~bytes;
    long quote = bytes ^ (ONES * '"');
    long backslash = bytes ^ (ONES * '\\');
    return ((below20 | ((quote - ONES) & ~quote) | ((backslash - ONES) & ~backslash)) & HIGHS) != 0;
  }

  private void escape(char c) {
    switch (c) {
      case '"' -> raw("\\\"");
      case '\\' -> raw("\\\\");
      case '\n' -> raw("\\n");
      case '\r' -> raw("\\r");
      case '\t' -> raw("\\t");
      case '\b' -> raw("\\b");
      case '\f' -> raw("\\f");
      default -> unicodeEscape(c);
    }
  }

  private void unicodeEscape(char c) {
    ensure(6);
    buffer[length++] = '\\';
    buffer[length++] = 'u';
    buffer[length++] = HEX[(c >> 12) & 0xF];
    buffer[length++] = HEX[(c >> 8) & 0xF];
    buffer[length++] = HEX[(c >> 4) & 0xF];
    buffer[length++] = HEX[c & 0xF];
  }

  private JsonWriter bytes(byte[] bytes) {
    ensure(bytes.length);
    System.arraycopy(bytes, 0, buffer, length, bytes.length);
    length += bytes.length;
    return this;
  }

  private void ensure(int more) {
    if (length + more > buffer.length) {
      buffer = Arrays.copyOf(buffer, Math.max(buffer.length * 2, length + more));
    }
  }
}
