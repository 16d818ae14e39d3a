package org.nisprotocol.core;

import com.fasterxml.jackson.databind.JsonNode;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Deep-immutable copies of JSON values as plain Java maps, lists and scalars. */
final class JsonValues {
  private JsonValues() {}

  static Map<String, Object> immutableObject(Map<String, ?> source) {
    return immutableMap(source, Path.root("content"));
  }

  // Paths name where a bad value sits; they are built only when one is found: a parent's path
  // and the key or index below it.
  private static Map<String, Object> immutableMap(Map<?, ?> source, Path path) {
    Map<String, Object> copy = new LinkedHashMap<>(Math.max(4, source.size() * 2));
    for (Map.Entry<?, ?> entry : source.entrySet()) {
      if (!(entry.getKey() instanceof String key)) {
        throw new InvalidMessageException(
            path + " has a key that is not a string: " + entry.getKey());
      }
      copy.put(key, immutableValue(entry.getValue(), path.key(key)));
    }
    return Collections.unmodifiableMap(copy);
  }

  private static Object immutableValue(Object value, Path path) {
    if (value == null
        || value instanceof String
        || value instanceof Boolean
        || value instanceof Integer
        || value instanceof Long
        || value instanceof Double
        || value instanceof BigInteger
        || value instanceof BigDecimal) {
      return value;
    }
    if (value instanceof Float || value instanceof Short || value instanceof Byte) {
      return value instanceof Float f ? (Object) f.doubleValue() : ((Number) value).intValue();
    }
    if (value instanceof Map<?, ?> map) {
      return immutableMap(map, path);
    }
    if (value instanceof List<?> list) {
      List<Object> copy = new ArrayList<>(list.size());
      for (int i = 0; i < list.size(); i++) {
        copy.add(immutableValue(list.get(i), path.index(i)));
      }
      return Collections.unmodifiableList(copy);
    }
    throw new InvalidMessageException(
        path
            + " holds a "
            + value.getClass().getName()
            + ", which is not a JSON value (use maps, lists, strings, numbers, booleans or null)");
  }

  private record Path(Path parent, String key, int index) {
    static Path root(String name) {
      return new Path(null, name, -1);
    }

    Path key(String name) {
      return new Path(this, name, -1);
    }

    Path index(int position) {
      return new Path(this, null, position);
    }

    @Override
    public String toString() {
      if (parent == null) {
        return key;
      }
      return parent + (key != null ? "." + key : "[" + index + "]");
    }
  }

  /** Converts a JSON object node in one pass, without re-validating. */
  static Map<String, Object> fromObjectNode(JsonNode node) {
    Map<String, Object> copy = new LinkedHashMap<>(Math.max(4, node.size() * 2));
    for (Map.Entry<String, JsonNode> field : node.properties()) {
      copy.put(field.getKey(), fromNode(field.getValue()));
    }
    return Collections.unmodifiableMap(copy);
  }

  private static Object asDouble(JsonNode node) {
    double value = node.doubleValue();
    return Double.isInfinite(value) ? node.decimalValue() : (Object) value;
  }

  private static Object fromNode(JsonNode node) {
    return switch (node.getNodeType()) {
      case OBJECT -> fromObjectNode(node);
      case ARRAY -> {
        List<Object> list = new ArrayList<>(node.size());
        for (JsonNode element : node) {
          list.add(fromNode(element));
        }
        yield Collections.unmodifiableList(list);
      }
      case STRING -> node.textValue();
      case BOOLEAN -> node.booleanValue();
      // Floats are read exactly (for timestamps); content holds them as doubles, but for those
      // beyond a double's range, which keep their exact value rather than become infinite.
      case NUMBER -> node.isBigDecimal() ? asDouble(node) : node.numberValue();
      case NULL, MISSING -> null;
      case BINARY, POJO -> node.toString();
    };
  }
}
