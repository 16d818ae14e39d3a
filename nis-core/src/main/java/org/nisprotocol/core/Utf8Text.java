package org.nisprotocol.core;

/**
 * Whether text has a UTF-8 form. A Java string may hold half of a UTF-16 surrogate pair without
 * the other half (a JSON escape such as &#92;ud83d can name one): no character, so UTF-8, the
 * encoding of messages and of what Redis stores, cannot carry it, and encoders put '?' in its
 * place. Messages, cache keys and the HTTP API's cache values with such text are refused instead.
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
