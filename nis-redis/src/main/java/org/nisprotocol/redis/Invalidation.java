package org.nisprotocol.redis;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Optional;

/**
 * A near-cache invalidation as published on the invalidation channel. Text, one field a line, so
 * that clients in other languages can publish and read it (namespaces and keys never hold control
 * characters, so a newline cannot occur inside a field):
 *
 * <pre>
 * nis-invalidate-v1
 * {origin: the id of the publishing instance}
 * keys | clear
 * {namespace}
 * {key}            (one line per key, for "keys")
 * </pre>
 *
 * @param origin the publishing instance, so that it can skip its own messages
 * @param namespace the namespace written
 * @param keys the keys written or deleted; empty when the whole namespace was cleared
 * @param clear whether the namespace was cleared
 */
record Invalidation(String origin, String namespace, List<String> keys, boolean clear) {
  static final String HEADER = "nis-invalidate-v1";

  Invalidation {
    keys = List.copyOf(keys);
  }

  static Invalidation ofKeys(String origin, String namespace, Collection<String> keys) {
    return new Invalidation(origin, namespace, List.copyOf(keys), false);
  }

  static Invalidation ofClear(String origin, String namespace) {
    return new Invalidation(origin, namespace, List.of(), true);
  }

  String encode() {
    StringBuilder text = new StringBuilder(64 + 32 * keys.size());
    text.append(HEADER).append('\n').append(origin).append('\n');
    text.append(clear ? "clear" : "keys").append('\n').append(namespace);
    for (String key : keys) {
      text.append('\n').append(key);
    }
    return text.toString();
  }

  /** The invalidation in the text, or empty when the text is not one (another publisher's noise). */
  static Optional<Invalidation> decode(String text) {
    if (text == null || !text.startsWith(HEADER + "\n")) {
      return Optional.empty();
    }
    String[] lines = text.split("\n", -1);
    if (lines.length < 4) {
      return Optional.empty();
    }
    boolean clear;
    switch (lines[2]) {
      case "clear" -> clear = true;
      case "keys" -> clear = false;
      default -> {
        return Optional.empty();
      }
    }
    List<String> keys = new ArrayList<>(lines.length - 4);
    for (int i = 4; i < lines.length; i++) {
      keys.add(lines[i]);
    }
    return Optional.of(new Invalidation(lines[1], lines[3], keys, clear));
  }
}
