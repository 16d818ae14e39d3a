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

  /** {@code parent.key}, or {@code parent["odd key"]} when the key is not a plain name. */
  static String field(String parent, String key) {
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
