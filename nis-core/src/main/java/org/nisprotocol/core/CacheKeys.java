package org.nisprotocol.core;

import java.time.Duration;
import java.util.regex.Pattern;

/**
 * Rules for cache namespaces, keys and TTLs, and the key format shared with other NIS clients:
 * {@code nis:cache:{namespace}:{key}}.
 *
 * <p>A namespace is 1-64 letters, digits, '_', '-' or '.', so that a namespace prefix can be
 * matched safely. A key is 1-512 characters without control characters or lone surrogates (see
 * {@link Utf8Text}: Redis would hold '?' in their place, so that two keys could name one entry);
 * it may contain ':'. A value is any text without a lone surrogate, for the same reason.
 */
public final class CacheKeys {
  /** Prefix of every cache key in a shared store. */
  public static final String PREFIX = "nis:cache:";

  public static final int MAX_KEY_LENGTH = 512;

  private static final Pattern NAMESPACE = Pattern.compile("[A-Za-z0-9_.-]{1,64}");

  private CacheKeys() {}

  /** The shared-store key: {@code nis:cache:simulation:result_42}. */
  public static String storeKey(String namespace, String key) {
    return PREFIX + namespace + ':' + key;
  }

  /** The prefix all keys of a namespace share: {@code nis:cache:simulation:}. */
  public static String namespacePrefix(String namespace) {
    return PREFIX + namespace + ':';
  }

  /**
   * @throws ValidationException naming the namespace when it breaks the rules
   */
  public static String requireValidNamespace(String namespace) {
    if (namespace == null || !NAMESPACE.matcher(namespace).matches()) {
      throw new ValidationException(
          "namespace "
              + ErrorText.quoted(namespace)
              + " is not valid; use 1-64 letters, digits, '_', '-' or '.'");
    }
    return namespace;
  }

  /**
   * Whether the key keeps the rules: 1 to {@value #MAX_KEY_LENGTH} characters, none a control
   * character or a lone surrogate.
   */
  public static boolean isValidKey(String key) {
    if (key == null || key.isEmpty() || key.length() > MAX_KEY_LENGTH) {
      return false;
    }
    for (int i = 0; i < key.length(); i++) { // on every cache call: no stream
      char c = key.charAt(i);
      if (Character.isISOControl(c) || Character.isSurrogate(c)) {
        return Utf8Text.loneSurrogateIndex(key) < 0 && noControlCharacter(key);
      }
    }
    return true;
  }

  private static boolean noControlCharacter(String key) {
    for (int i = 0; i < key.length(); i++) {
      if (Character.isISOControl(key.charAt(i))) {
        return false;
      }
    }
    return true;
  }

  /**
   * @throws ValidationException naming the key when it breaks the rules
   */
  public static String requireValidKey(String key) {
    if (isValidKey(key)) {
      return key;
    }
    if (key == null || key.isEmpty()) {
      throw new ValidationException("key must not be empty");
    }
    if (key.length() > MAX_KEY_LENGTH) {
      throw new ValidationException(
          "key is " + key.length() + " characters long; at most " + MAX_KEY_LENGTH + " allowed");
    }
    int lone = Utf8Text.loneSurrogateIndex(key);
    if (lone >= 0) {
      throw new ValidationException(
          "key holds " + Utf8Text.describeLoneSurrogate(key, lone) + ", which a shared store cannot keep");
    }
    throw new ValidationException("key '" + key.replaceAll("\\p{Cntrl}", "?") + "' contains a control character");
  }

  /**
   * A value to store: not null, and without a lone surrogate, which Redis would hold as '?' while
   * the embedded cache kept it (one escaped in the JSON text, &#92;ud83d, is fine).
   *
   * @throws ValidationException naming the key and where the value breaks
   * @throws NullPointerException when the value is null
   */
  public static String requireStorableValue(String key, String json) {
    if (json == null) {
      throw new NullPointerException("json of key " + key);
    }
    int lone = Utf8Text.loneSurrogateIndex(json);
    if (lone >= 0) {
      throw new ValidationException(
          "value of key " + ErrorText.quoted(key) + " holds " + Utf8Text.describeLoneSurrogate(json, lone)
              + ", which a shared store cannot keep; escape it in the JSON text or complete the pair");
    }
    return json;
  }

  /**
   * @throws ValidationException naming the TTL when it is zero or negative
   */
  public static Duration requirePositiveTtl(Duration ttl) {
    return requirePositive("ttl", ttl);
  }

  /**
   * For the other lifetimes of stored entries (a dedupe window, a claim's lease).
   *
   * @throws ValidationException naming the duration when it is zero or negative
   */
  public static Duration requirePositive(String name, Duration duration) {
    if (duration == null || duration.isZero() || duration.isNegative()) {
      throw new ValidationException(name + " must be positive, got " + duration);
    }
    return duration;
  }
}
