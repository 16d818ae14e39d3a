package org.nisprotocol.agents;

/** Paths of values in JSON content, as violations report them: {@code content.results[0].text}. */
final class JsonPaths {
  private JsonPaths() {}

  /** {@code parent.key} when key is given, else {@code parent[index]}. */
  static String child(String parent, String key, int index) {
    return key != null ? field(parent, key) : parent + '[' + index + ']';
  }

  /** A child path built only when asked for: most values have no violation to report. */
  static final class Lazy {
    private final String parent;
    private final String key;
    private final int index;
    private String path;

    Lazy(String parent, String key, int index) {
      this.parent = parent;
      this.key = key;
      this.index = index;
    }

    @Override
    public String toString() {
      if (path == null) {
        path = child(parent, key, index);
      }
      return path;
    }
  }

  /** Keys longer than this show only their start in paths, then their length. */
  static final int MAX_KEY_CHARS = 64;
  /** Paths longer than this are shortened in violations: their start and end, then their length. */
  static final int MAX_PATH_CHARS = 200;

  /**
   * {@code parent.key}, or {@code parent["odd key"]} when the key is not a plain name; a key
   * longer than {@value #MAX_KEY_CHARS} chars as {@code parent["its start…(N chars)"]}, so that a
   * path stays small whatever the content's keys (one built per flagged value).
   */
  static String field(String parent, String key) {
    if (key.length() > MAX_KEY_CHARS) {
      return field(parent, start(key, MAX_KEY_CHARS - 16) + "…(" + key.length() + " chars)");
    }
    if (isPlain(key)) {
      return parent + '.' + key;
    }
    StringBuilder out = new StringBuilder(parent.length() + key.length() + 6).append(parent).append("[\"");
    for (int i = 0; i < key.length(); i++) {
      char c = key.charAt(i);
      if (c == '"' || c == '\\') {
        out.append('\\').append(c);
      } else if (c < 0x20) {
        out.append(String.format("\\u%04x", (int) c));
      } else {
        out.append(c);
      }
    }
    return out.append("\"]").toString();
  }

  /** The path, or for one longer than {@value #MAX_PATH_CHARS} chars its start and end with its length between. */
  static String shortened(String path) {
    if (path.length() <= MAX_PATH_CHARS) {
      return path;
    }
    String end = path.substring(path.length() - 70);
    if (Character.isLowSurrogate(end.charAt(0))) {
      end = end.substring(1);
    }
    return start(path, 100) + "…(" + path.length() + " chars)…" + end;
  }

  /** The first chars of a text, not ending inside a surrogate pair. */
  private static String start(String text, int chars) {
    return text.substring(0, Character.isHighSurrogate(text.charAt(chars - 1)) ? chars - 1 : chars);
  }

  private static boolean isPlain(String key) {
    if (key.isEmpty()) {
      return false;
    }
    for (int i = 0; i < key.length(); i++) {
      char c = key.charAt(i);
      boolean ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
          || c == '_' || c == '-';
      if (!ok) {
        return false;
      }
    }
    return true;
  }
}
