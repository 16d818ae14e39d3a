package org.nisprotocol.agents;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import org.nisprotocol.core.MessageCodec;

/**
 * The canonical JSON of a simulation's inputs (object keys sorted, numbers as Java writes them,
 * no spaces) and its SHA-256: identical inputs, however they were spelled in the request, give
 * one text and one hash.
 */
final class CanonicalJson {
  private static final ObjectWriter SORTED =
      MessageCodec.mapper().writer().with(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS);

  private CanonicalJson() {}

  /** {@code {"parameters":{...},"scenario_type":"..."}}, optionally without the seed. */
  static String of(ScenarioType type, SimulationParameters parameters, boolean withSeed) {
    Map<String, Object> params = new LinkedHashMap<>(parameters.toJson());
    if (!withSeed) {
      params.remove("seed");
    }
    Map<String, Object> inputs = new LinkedHashMap<>();
    inputs.put("scenario_type", type.wireName());
    inputs.put("parameters", params);
    try {
      return SORTED.writeValueAsString(inputs);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("parameters could not be written as JSON: " + parameters, e);
    }
  }

  static byte[] sha256(String text) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java runtime has SHA-256", e);
    }
  }

  static String sha256Hex(String text) {
    return HexFormat.of().formatHex(sha256(text));
  }

  /** The first eight bytes of the SHA-256, as a seed. */
  static long seedOf(String text) {
    return ByteBuffer.wrap(sha256(text)).getLong();
  }
}
