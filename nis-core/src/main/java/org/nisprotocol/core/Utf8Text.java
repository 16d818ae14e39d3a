package org.nisprotocol.core;

import java.util.Map;

/**
 * Whether text has a UTF-8 form. A Java string may hold half of a UTF-16 surrogate pair without
 * the other half (a JSON escape such as &#92;ud83d can name one): no character, so UTF-8, the
 * encoding of messages and of what Redis stores, cannot carry it, and encoders put '?' in its
 * place. Messages, their transport headers, cache keys and cache values with such text are refused
 * instead.
 */
public final class Utf8Text {
  private static final int SHOWN_BEFORE = 20;

  private Utf8Text() {}

  /** The index of the first lone surrogate in the text, or -1 when it has none. */
  public static int loneSurrogateIndex(String text) {
    for (int i = 0, n = text.length(); i < n; i++) {
      char c = text.charAt(i);
      if (!Character.isSurrogate(c)) {
        continue;
      }
      if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(text.charAt(i + 1))) {
        i++;
      } else {
        return i;
      }
    }
    return -1;
  }

  /**
   * The headers, if every name and value has a UTF-8 form: Kafka carries headers as UTF-8, so a
   * lone surrogate would arrive as '?' there while the embedded bus kept it.
   *
   * @throws InvalidMessageException naming the header and where its text breaks
   */
  public static Map<String, String> requireUtf8Headers(Map<String, String> headers) {
    headers.forEach((name, value) -> {
      int lone = loneSurrogateIndex(name);
      if (lone >= 0) {
        throw new InvalidMessageException(
            "a header name holds " + describeLoneSurrogate(name, lone) + ": UTF-8 cannot carry it");
      }
      lone = value == null ? -1 : loneSurrogateIndex(value);
      if (lone >= 0) {
        throw new InvalidMessageException(
            "header " + ErrorText.quoted(name) + " holds " + describeLoneSurrogate(value, lone)
                + ": UTF-8 cannot carry it");
      }
    });
    return headers;
  }

  /**
   * For an error message: the lone surrogate at {@code index} and the text before it, e.g. "a lone
   * surrogate &#92;ud83d (half of a UTF-16 pair, not a character) at char 4, after "cut "".
   */
  public static String describeLoneSurrogate(String text, int index) {
    int from = Math.max(0, index - SHOWN_BEFORE);
    if (from > 0 && Character.isLowSurrogate(text.charAt(from))) {
      from++; // not the second half of a pair without its first
    }
    return String.format(
        "a lone surrogate \\u%04x (half of a UTF-16 pair, not a character) at char %d, after \"%s\"",
        (int) text.charAt(index), index, text.substring(from, index));
  }
}
