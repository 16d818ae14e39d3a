package org.nisprotocol.redis;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Optional;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

class InvalidationTest {

  @Provide
  Arbitrary<String> namespaces() {
    return Arbitraries.strings().withChars("abcXYZ019_.-").ofMinLength(1).ofMaxLength(64);
  }

  /** Keys are any text without control characters, colons and unicode included. */
  @Provide
  Arbitrary<List<String>> keys() {
    return Arbitraries.strings()
        .all()
        .ofMinLength(1)
        .ofMaxLength(40)
        .filter(s -> s.chars().noneMatch(Character::isISOControl))
        .list()
        .ofMaxSize(20);
  }

  @Property(tries = 500)
  void keyInvalidationsSurviveTheWire(
      @ForAll("namespaces") String namespace, @ForAll("keys") List<String> keys) {
    Invalidation sent = Invalidation.ofKeys("origin-1", namespace, keys);

    assertThat(Invalidation.decode(sent.encode())).contains(sent);
  }

  @Property(tries = 100)
  void clearInvalidationsSurviveTheWire(@ForAll("namespaces") String namespace) {
    Invalidation sent = Invalidation.ofClear("origin-2", namespace);

    Optional<Invalidation> received = Invalidation.decode(sent.encode());

    assertThat(received).contains(sent);
    assertThat(received.orElseThrow().clear()).isTrue();
  }

  @Test
  void theWireFormatIsPlainLines() {
    assertThat(Invalidation.ofKeys("me", "memory", List.of("agent:1", "agent:2")).encode())
        .isEqualTo("nis-invalidate-v1\nme\nkeys\nmemory\nagent:1\nagent:2");
  }

  @Test
  void otherTrafficOnTheChannelIsIgnored() {
    assertThat(Invalidation.decode("hello")).isEmpty();
    assertThat(Invalidation.decode("nis-invalidate-v1\nme\nexplode\nns\nk")).isEmpty();
    assertThat(Invalidation.decode("nis-invalidate-v1\nme")).isEmpty();
    assertThat(Invalidation.decode(null)).isEmpty();
  }
}
