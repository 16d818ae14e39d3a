package org.nisprotocol.core;

import java.time.Duration;
import java.util.Objects;

/**
 * A {@link DeliveryLedger} kept in a {@link Cache}, namespace {@value #NAMESPACE}, key {@code
 * group:message_id}: shared by every instance of the service when the cache is Redis, so a
 * message redelivered to another instance is recognised too.
 */
public final class CacheDeliveryLedger implements DeliveryLedger {
  public static final String NAMESPACE = "dedupe";

  private final Cache cache;

  private CacheDeliveryLedger(Cache cache) {
    this.cache = cache;
  }

  public static CacheDeliveryLedger of(Cache cache) {
    return new CacheDeliveryLedger(Objects.requireNonNull(cache, "cache"));
  }

  @Override
  public boolean isHandled(String group, String messageId) {
    return cache.get(NAMESPACE, group + ':' + messageId).isPresent();
  }

  @Override
  public void markHandled(String group, String messageId, Duration window) {
    cache.put(NAMESPACE, group + ':' + messageId, "1", window);
  }
}
