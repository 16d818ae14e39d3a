package org.nisprotocol.core;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Objects;
import java.util.UUID;

/**
 * A {@link DeliveryLedger} kept in a {@link Cache}, namespace {@value #NAMESPACE}, key {@code
 * <length of group>:<group>:<message_id>} (the length keeps group {@code a:b} with id {@code c}
 * apart from group {@code a} with id {@code b:c}; a pair that would not make a valid key, too long
 * or with a control character, is keyed {@code sha256:<hex of both>}): shared by every instance of
 * the service when the cache is Redis, so a message redelivered to another instance is recognised too. A handled message's entry holds
 * {@code 1}; a claim holds {@code {"claimed_by":"<ledger id>"}} until its lease ends, taken with
 * the cache's atomic put-if-absent. Every instance of a group must run this version of the ledger:
 * an older one, which knew only handled marks, takes a claim for a handled mark.
 *
 * <p>One ledger's claims all hold the same mark, so a handler that outlived its lease and then
 * failed releases a claim another consumer of this instance took after the lapse (a lease as
 * long as the longest handler avoids it).
 */
public final class CacheDeliveryLedger implements DeliveryLedger {
  public static final String NAMESPACE = "dedupe";

  private static final String HANDLED = "1";

  private final Cache cache;

  /** This ledger's claims: release() removes only an entry that still holds one of them. */
  private final String claimMark;

  private CacheDeliveryLedger(Cache cache) {
    this.cache = cache;
    this.claimMark = "{\"claimed_by\":\"" + UUID.randomUUID() + "\"}";
  }

  public static CacheDeliveryLedger of(Cache cache) {
    return new CacheDeliveryLedger(Objects.requireNonNull(cache, "cache"));
  }

  @Override
  public Claim claim(String group, String messageId, Duration lease) {
    String key = key(group, messageId);
    if (cache.putIfAbsent(NAMESPACE, key, claimMark, lease)) {
      return Claim.CLAIMED;
    }
    // Absent now: the claim lapsed or was released since, or the read could not reach the store.
    // Busy either way: the caller tries again after a wait.
    return cache.get(NAMESPACE, key).filter(HANDLED::equals).isPresent() ? Claim.HANDLED : Claim.BUSY;
  }

  @Override
  public void markHandled(String group, String messageId, Duration window) {
    cache.put(NAMESPACE, key(group, messageId), HANDLED, window);
  }

  /**
   * Removes the entry if it still holds this ledger's claim (read, then deleted: a claim of another
   * consumer taken in between, after this one's lease ended, could be removed with it).
   */
  @Override
  public void release(String group, String messageId) {
    String key = key(group, messageId);
    if (cache.get(NAMESPACE, key).filter(claimMark::equals).isPresent()) {
      cache.delete(NAMESPACE, key);
    }
  }

  static String key(String group, String messageId) {
    String readable = group.length() + ":" + group + ":" + messageId;
    if (CacheKeys.isValidKey(readable)) {
      return readable;
    }
    try {
      MessageDigest sha256 = MessageDigest.getInstance("SHA-256");
      if (Utf8Text.loneSurrogateIndex(readable) < 0) {
        sha256.update(readable.getBytes(StandardCharsets.UTF_8));
      } else {
        // every charset encoder replaces a lone surrogate (UTF-8 with '?'), so that two such ids
        // would share an entry: the UTF-16 units themselves are hashed
        ByteBuffer units = ByteBuffer.allocate(readable.length() * 2);
        units.asCharBuffer().put(readable);
        sha256.update(units.array());
      }
      return "sha256:" + HexFormat.of().formatHex(sha256.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java platform has SHA-256", e);
    }
  }
}
