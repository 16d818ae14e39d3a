package org.nisprotocol.embedded;

import java.time.InstantSource;
import java.util.Objects;
import org.nisprotocol.core.NamespaceTtls;
import org.nisprotocol.core.ValidationException;

/**
 * Settings of the in-process cache. Immutable; start from {@link #defaults()}.
 *
 * @param namespaceTtls default TTL of each namespace
 * @param maximumBytes bound on the approximate memory of all entries (keys and JSON text, two
 *     bytes a character); least recently used entries are evicted past it (default 256 MiB)
 * @param clock the time source of expiry (tests pass a manual clock)
 */
public record InMemoryCacheConfig(
    NamespaceTtls namespaceTtls, long maximumBytes, InstantSource clock) {
  public static final long DEFAULT_MAXIMUM_BYTES = 256L * 1024 * 1024;

  /**
   * @throws ValidationException when the bound is not positive
   */
  public InMemoryCacheConfig {
    Objects.requireNonNull(namespaceTtls, "namespaceTtls");
    Objects.requireNonNull(clock, "clock");
    if (maximumBytes < 1) {
      throw new ValidationException("maximumBytes must be positive, got " + maximumBytes);
    }
  }

  public static InMemoryCacheConfig defaults() {
    return new InMemoryCacheConfig(
        NamespaceTtls.defaults(), DEFAULT_MAXIMUM_BYTES, InstantSource.system());
  }

  public InMemoryCacheConfig withNamespaceTtls(NamespaceTtls namespaceTtls) {
    return new InMemoryCacheConfig(namespaceTtls, maximumBytes, clock);
  }

  public InMemoryCacheConfig withMaximumBytes(long maximumBytes) {
    return new InMemoryCacheConfig(namespaceTtls, maximumBytes, clock);
  }

  public InMemoryCacheConfig withClock(InstantSource clock) {
    return new InMemoryCacheConfig(namespaceTtls, maximumBytes, clock);
  }
}
