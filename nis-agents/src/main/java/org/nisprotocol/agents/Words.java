package org.nisprotocol.agents;

import java.util.ArrayList;
import java.util.List;

/**
 * Character rules shared by the rules and the matcher. A word is a run of letters or digits; a
 * phrase's words may be separated by spaces, '-' or '_' ("real-time", "real time", "real_time").
 * Lowercasing is done char by char, so offsets in the lowercased text are offsets in the original.
 */
final class Words {
  private static final boolean[] ASCII_WORD = new boolean[128];

  static {
    for (char c = '0'; c <= '9'; c++) {
      ASCII_WORD[c] = true;
    }
    for (char c = 'a'; c <= 'z'; c++) {
      ASCII_WORD[c] = true;
      ASCII_WORD[c - 32] = true;
    }
  }

  private Words() {}

  static boolean isWordChar(char c) {
    return c < 128 ? ASCII_WORD[c] : Character.isLetterOrDigit(c);
  }

  static boolean isSeparator(char c) {
    return c == ' ' || c == '-' || c == '_' || Character.isWhitespace(c);
  }

  static char lower(char c) {
    if (c < 128) {
      return c >= 'A' && c <= 'Z' ? (char) (c + 32) : c;
    }
    return Character.toLowerCase(c);
  }

  /** The text lowercased char by char: same length, same offsets. */
  static char[] lowerChars(String text) {
    char[] chars = new char[text.length()];
    text.getChars(0, chars.length, chars, 0);
    for (int i = 0; i < chars.length; i++) {
      char c = chars[i];
      if (c >= 'A' && c <= 'Z') {
        chars[i] = (char) (c + 32);
      } else if (c >= 128) {
        chars[i] = Character.toLowerCase(c);
      }
    }
    return chars;
  }

  static String lower(String text) {
    return new String(lowerChars(text));
  }

  /** The lowercase words of a text: "Real-Time processing" gives [real, time, processing]. */
  static List<String> split(String text) {
    List<String> words = new ArrayList<>();
    char[] lower = lowerChars(text);
    int i = 0;
    while (i < lower.length) {
      while (i < lower.length && !isWordChar(lower[i])) {
        i++;
      }
      int start = i;
      while (i < lower.length && isWordChar(lower[i])) {
        i++;
      }
      if (i > start) {
        words.add(new String(lower, start, i - start));
      }
    }
    return words;
  }

  /**
   * Whether a phrase is only words and separators, so that the matcher can find it: "zero
   * hallucination" and "state-of-the-art" are, "95%" is not.
   */
  static boolean isPhrase(String phrase) {
    if (phrase.isBlank()) {
      return false;
    }
    for (int i = 0; i < phrase.length(); i++) {
      char c = phrase.charAt(i);
      if (!isWordChar(c) && !isSeparator(c)) {
        return false;
      }
    }
    return true;
  }
}
