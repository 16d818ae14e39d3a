package org.nisprotocol.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.CharRange;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;
import org.junit.jupiter.api.Test;

/** The hand-written encoder writes JSON any parser reads back to the same message. */
class WireRoundTripPropertiesTest {
  private final MessageCodec codec = MessageCodec.create();

  @Provide
  Arbitrary<String> anyText() {
    // All of Unicode's UTF-16 units, control characters included; a lone surrogate, which UTF-8
    // cannot carry, is made a '?' (so the scan meets question marks as well).
    return Arbitraries.strings().all().ofMaxLength(200).map(WireRoundTripPropertiesTest::withoutLoneSurrogates);
  }

  @Property(tries = 500)
  void anyTextSurvivesTheRoundTrip(
      @ForAll("anyText") String text, @ForAll("anyText") String key, @ForAll long number, @ForAll double decimal) {
    // JSON numbers come back as the smallest fitting type (Integer, Long, ...) and -0.0 as 0.0,
    // so the content is compared as JSON, and exactly when no number is involved.
    Map<String, Object> content = new LinkedHashMap<>();
    content.put("text", text);
    content.put(key.isEmpty() ? "k" : key, List.of(text, number, Double.isFinite(decimal) ? decimal : 0.5, true));
    content.put("nested", Map.of("n", number, "none", "x"));
    NisMessage message =
        NisMessage.builder(MessageType.MEMORY_OPERATION, "agent").content(content).correlationId("c").build();

    byte[] json = codec.encode(message);

    NisMessage decoded = codec.decode(json);
    assertThat(MessageCodec.parse(codec.encode(decoded))).isEqualTo(MessageCodec.parse(json));
    assertThat(decoded.messageId()).isEqualTo(message.messageId());
    assertThat(decoded.timestamp()).isEqualTo(message.timestamp());
    JsonNode parsed = MessageCodec.parse(json);
    assertThat(parsed.at("/content/text").textValue()).isEqualTo(text);
  }

  @Property(tries = 500)
  void textWithALoneSurrogateAnywhereIsRefused(
      @ForAll("anyText") String text, @ForAll @IntRange(min = 0, max = 200) int at,
      @ForAll @CharRange(from = '\uD800', to = '\uDFFF') char half, @ForAll boolean inKey) {
    int where = Math.min(at, text.length());
    // the half is lone unless it lands next to its other half
    String broken = text.substring(0, where) + half + text.substring(where);
    Map<String, Object> content = inKey ? Map.of(broken, 1) : Map.of("text", broken);
    NisMessage message = NisMessage.builder(MessageType.MEMORY_OPERATION, "agent").content(content).build();

    if (wellFormed(broken)) {
      assertThat(codec.decode(codec.encode(message)).content()).isEqualTo(content);
    } else {
      assertThatThrownBy(() -> codec.encode(message))
          .isInstanceOf(InvalidMessageException.class)
          .hasMessageContaining("lone surrogate");
    }
  }

  @Provide
  Arbitrary<String> mostlyAsciiText() {
    // Texts either side of the short-text path's length limit, mostly plain ASCII with the odd
    // character that needs escaping or is not ASCII, anywhere in the text.
    return Arbitraries.strings().withChars("abcXYZ019 -_.:?\"\\\n\u0001\u001féł中").ofMaxLength(150);
  }

  @Property(tries = 1000)
  void mostlyAsciiTextsAndKeysSurviveTheRoundTrip(@ForAll("mostlyAsciiText") String text, @ForAll("mostlyAsciiText") String key) {
    Map<String, Object> content = new LinkedHashMap<>();
    content.put(key, text);
    NisMessage message =
        NisMessage.builder(MessageType.MEMORY_OPERATION, text.isBlank() ? "agent" : text).content(content).build();

    NisMessage decoded = codec.decode(codec.encode(message));

    assertThat(decoded.content()).isEqualTo(content);
    assertThat(decoded.sourceAgent()).isEqualTo(message.sourceAgent());
  }

  @Provide
  Arbitrary<java.time.Instant> anyInstant() {
    // 1970 (the decoder refuses earlier times) to 2200, to the microsecond: the wire's precision.
    return Arbitraries.longs()
        .between(0, 7_258_118_400_000_000L)
        .map(micros -> java.time.Instant.EPOCH.plus(micros, java.time.temporal.ChronoUnit.MICROS));
  }

  @Property(tries = 1000)
  void anyTimestampSurvivesTheRoundTrip(@ForAll("anyInstant") java.time.Instant timestamp) {
    NisMessage message = NisMessage.builder(MessageType.MEMORY_OPERATION, "agent").timestamp(timestamp).build();

    assertThat(codec.decode(codec.encode(message)).timestamp()).isEqualTo(timestamp);
  }

  private static String withoutLoneSurrogates(String text) {
    StringBuilder out = new StringBuilder(text);
    for (int lone = Utf8Text.loneSurrogateIndex(out.toString()); lone >= 0; lone = Utf8Text.loneSurrogateIndex(out.toString())) {
      out.setCharAt(lone, '?');
    }
    return out.toString();
  }

  /** No lone surrogates: the text has a UTF-8 form. */
  private static boolean wellFormed(String text) {
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
        i++;
      } else if (Character.isSurrogate(c)) {
        return false;
      }
    }
    return true;
  }

  @Property(tries = 2000)
  void theEightByteScanFlagsExactlyTheBytesThatNeedEscaping(@ForAll @Size(8) byte[] eight) {
    long word = java.nio.ByteBuffer.wrap(eight, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
    boolean expected = false;
    for (int i = 0; i < 8; i++) {
      byte b = eight[i];
      expected |= (b >= 0 && b < 0x20) || b == '"' || b == '\\';
    }

    assertThat(JsonWriter.needsEscape(word)).isEqualTo(expected);
  }

  @Test
  void specialCharactersAreEscapedAsJsonRequires() {
    NisMessage message =
        NisMessage.builder(MessageType.MEMORY_OPERATION, "agent")
            .content(Map.of("s", "quote \" backslash \\ newline \n tab \t bell \u0007 é 中 😀 asked?"))
            .build();

    String json = codec.encodeToString(message);

    assertThat(json)
        .contains("quote \\\" backslash \\\\ newline \\n tab \\t bell \\u0007 é 中 😀 asked?");
    assertThat(codec.decode(json).content().get("s")).isEqualTo("quote \" backslash \\ newline \n tab \t bell \u0007 é 中 😀 asked?");
  }

  @Test
  void textWithALoneSurrogateIsRefusedNotAltered() {
    // Each would otherwise go out with a '?' in place of the lone half.
    List<String> lone = List.of(
        "ends high \uD83D", "\uDE00 starts low", "reversed \uDE00\uD83D pair", "short\uD800", "? \uDC00 ?", "\uD800");
    for (String text : lone) {
      NisMessage inValue = NisMessage.builder(MessageType.MEMORY_OPERATION, "agent").content(Map.of("s", text)).build();
      NisMessage inKey = NisMessage.builder(MessageType.MEMORY_OPERATION, "agent").content(Map.of(text, 1)).build();
      for (NisMessage message : List.of(inValue, inKey)) {
        assertThatThrownBy(() -> codec.encode(message))
            .as(text)
            .isInstanceOf(InvalidMessageException.class)
            .hasMessageContaining("lone surrogate \\u" + Integer.toHexString(text.chars().filter(c -> Character.isSurrogate((char) c)).findFirst().orElseThrow()))
            .hasMessageContaining("UTF-8 JSON cannot carry it");
      }
    }
    String paired = "why? 😀?";
    NisMessage fine = NisMessage.builder(MessageType.MEMORY_OPERATION, "agent").content(Map.of("s", paired)).build();
    assertThat(codec.decode(codec.encode(fine)).content()).isEqualTo(Map.of("s", paired));
  }

  @Test
  void numbersKeepTheirValueAndNonFiniteOnesBecomeNull() {
    Map<String, Object> content = new LinkedHashMap<>();
    content.put("int", 42);
    content.put("long", 9_007_199_254_740_993L);
    content.put("double", 0.847);
    content.put("tiny", 1.0E-10);
    content.put("nan", Double.NaN);
    NisMessage message = NisMessage.builder(MessageType.PERFORMANCE_METRIC, "agent").content(content).build();

    Map<String, Object> decoded = codec.decode(codec.encode(message)).content();

    assertThat(decoded).containsEntry("int", 42).containsEntry("long", 9_007_199_254_740_993L)
        .containsEntry("double", 0.847).containsEntry("tiny", 1.0E-10);
    assertThat(decoded.get("nan")).isNull();
  }
}
