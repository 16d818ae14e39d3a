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
 * as UTF-8. Text with a lone surrogate (half of a UTF-16 pair, not a character: UTF-8 cannot
 * carry it, and strict parsers refuse it escaped) is refused with {@link InvalidMessageException}
 * rather than altered. Non-finite doubles, which JSON cannot hold, are written
 * as null. Not thread-safe: a writer is used by one thread, for one message at a time, and {@link
 * #reset} for the next.
 */
final class JsonWriter {
  private static final byte[] HEX = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] NULL = {'n', 'u', 'l', 'l'};
  private static final byte[] TRUE = {'t', 'r', 'u', 'e'};
  private static final byte[] FALSE = {'f', 'a', 'l', 's', 'e'};

  /** Texts up to this many chars take the char-by-char path of {@link #string}. */
  private static final int SHORT_TEXT = 12;

  private byte[] buffer;
  private int length;

  JsonWriter(int capacity) {
    buffer = new byte[Math.max(64, capacity)];
  }

  /** Empties the writer for the next message. */
  JsonWriter reset() {
    length = 0;
    return this;
  }

  int capacity() {
    return buffer.length;
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

  /** Writes bytes prepared in advance: field names, punctuation, known values. */
  JsonWriter bytes(byte[] bytes) {
    ensure(bytes.length);
    System.arraycopy(bytes, 0, buffer, length, bytes.length);
    length += bytes.length;
    return this;
  }

  JsonWriter string(String text) {
    int size = text.length();
    ensure(size + 2);
    buffer[length++] = '"';
    if (size <= SHORT_TEXT) {
      // Short texts (ids, names, keys) are mostly plain ASCII: copied a char at a time, with no
      // intermediate array. The first char that is not falls through to the general path.
      int start = length;
      int i = 0;
      while (i < size) {
        char c = text.charAt(i);
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') {
          break;
        }
        buffer[length++] = (byte) c;
        i++;
      }
      if (i == size) {
        return raw('"');
      }
      length = start;
    }
    utf8(text);
    return raw('"');
  }

  /** Any text, as escaped UTF-8 without the quotes. */
  private void utf8(String text) {
    // The JDK's UTF-8 encoder is vectorised; escaping then needs one pass over bytes, since
    // every byte of a multi-byte sequence is >= 0x80 and never needs escaping.
    byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
    int found = scan(utf8);
    if ((found & QUESTION_MARK) != 0) {
      // the encoder wrote each lone surrogate as '?': tell them from question marks
      requireNoLoneSurrogate(text);
    }
    ensure(utf8.length);
    int start = 0;
    int i = 0;
    if ((found & NEEDS_ESCAPE) == 0) {
      i = utf8.length; // the common case: one copy below
    }
    for (; i < utf8.length; i++) {
      byte b = utf8[i];
      if (mustEscape(b)) {
        System.arraycopy(utf8, start, buffer, length, i - start);
        length += i - start;
        escape((char) b);
        ensure(utf8.length - i + 1);
        start = i + 1;
      }
    }
    System.arraycopy(utf8, start, buffer, length, utf8.length - start);
    length += utf8.length - start;
  }

  /** Writes a whole number's decimal digits straight into the buffer. */
  JsonWriter number(long value) {
    if (value == Long.MIN_VALUE) {
      return raw(Long.toString(value));
    }
    ensure(20);
    if (value < 0) {
      buffer[length++] = '-';
      value = -value;
    }
    int end = length + digitCount(value);
    for (int at = end - 1; at >= length; at--) {
      buffer[at] = (byte) ('0' + value % 10);
      value /= 10;
    }
    length = end;
    return this;
  }

  /** Writes {@code whole.fraction} with the fraction zero-padded to {@code fractionDigits}. */
  JsonWriter decimal(long whole, int fraction, int fractionDigits) {
    number(whole);
    ensure(fractionDigits + 1);
    buffer[length++] = '.';
    for (int at = length + fractionDigits - 1; at >= length; at--) {
      buffer[at] = (byte) ('0' + fraction % 10);
      fraction /= 10;
    }
    length += fractionDigits;
    return this;
  }

  private static int digitCount(long nonNegative) {
    int digits = 1;
    for (long bound = 10; digits < 19 && nonNegative >= bound; bound *= 10) {
      digits++;
    }
    return digits;
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
      // forEach, not an entry iterator: content maps are unmodifiable views, whose iterators
      // wrap every entry. A comma goes before every entry but the first, found right after '{'
      // (no value ends with one).
      map.forEach(
          (key, item) -> {
            if (buffer[length - 1] != '{') {
              raw(',');
            }
            field((String) key).value(item);
          });
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
    if (value instanceof Integer || value instanceof Long) {
      return number(((Number) value).longValue());
    }
    if (value instanceof BigInteger) {
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

  /** Bits of what {@link #scan} answers. */
  private static final int NEEDS_ESCAPE = 1;
  private static final int QUESTION_MARK = 2;

  /**
   * Whether any byte needs escaping ({@link #NEEDS_ESCAPE}) and whether any is a question mark
   * ({@link #QUESTION_MARK}). Reads eight bytes at a time and checks once at the end: a loop
   * without a branch per word, which the JIT compiles to a tight one. (Its bound is computed
   * before the loop: written as {@code i + 8 <= length} the same loop ran six times slower.) The
   * last word ends with the last byte, overlapping bytes already checked.
   */
  private static int scan(byte[] utf8) {
    int found = 0;
    if (utf8.length < 8) {
      for (byte b : utf8) {
        found |= (mustEscape(b) ? NEEDS_ESCAPE : 0) | (b == '?' ? QUESTION_MARK : 0);
      }
      return found;
    }
    long escapes = 0;
    long questionMarks = 0;
    int lastWord = utf8.length - 8;
    for (int i = 0; i < lastWord; i += 8) {
      long word = (long) LONGS.get(utf8, i);
      escapes |= unmaskedEscapeBits(word);
      questionMarks |= unmaskedZeroBits(word ^ (ONES * '?'));
    }
    long word = (long) LONGS.get(utf8, lastWord);
    escapes |= unmaskedEscapeBits(word);
    questionMarks |= unmaskedZeroBits(word ^ (ONES * '?'));
    return ((escapes & HIGHS) != 0 ? NEEDS_ESCAPE : 0) | ((questionMarks & HIGHS) != 0 ? QUESTION_MARK : 0);
  }

  /** Refuses text that holds half of a UTF-16 surrogate pair without the other half. */
  private static void requireNoLoneSurrogate(String text) {
    int lone = Utf8Text.loneSurrogateIndex(text);
    if (lone >= 0) {
      throw new InvalidMessageException(
          "the message holds " + Utf8Text.describeLoneSurrogate(text, lone)
              + ": UTF-8 JSON cannot carry it; remove it or complete the pair");
    }
  }

  private static boolean mustEscape(byte b) {
    return (b >= 0 && b < 0x20) || b == '"' || b == '\\';
  }

  /**
   * Whether any of the eight bytes is a control character (below 0x20), a quote or a backslash.
   * Bytes of multi-byte characters (0x80 and up) never match.
   */
  static boolean needsEscape(long bytes) {
    return (unmaskedEscapeBits(bytes) & HIGHS) != 0;
  }

  /**
   * Has the high bit set in each of the eight bytes that needs escaping (and possibly in bytes
   * after it), and garbage in the other bits: callers mask with {@link #HIGHS}, the scan once
   * after OR-ing all words.
   */
  private static long unmaskedEscapeBits(long bytes) {
    long below20 = (bytes - ONES * 0x20) & ~bytes;
    return below20 | unmaskedZeroBits(bytes ^ (ONES * '"')) | unmaskedZeroBits(bytes ^ (ONES * '\\'));
  }

  /** As {@link #unmaskedEscapeBits}, for the bytes that are zero. */
  private static long unmaskedZeroBits(long bytes) {
    return (bytes - ONES) & ~bytes;
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

  private void ensure(int more) {
    if (length + more > buffer.length) {
      buffer = Arrays.copyOf(buffer, Math.max(buffer.length * 2, length + more));
    }
  }
}
