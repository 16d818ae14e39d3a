package org.nisprotocol.embedded;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.Expiry;
import java.time.Duration;
import java.util.Objects;
import org.nisprotocol.core.DeliveryLedger;

/**
 * A {@link DeliveryLedger} in this process's memory, bounded in entries: it recognises
 * redeliveries to this instance only (use the Redis ledger across instances).
 */
public final class InMemoryDeliveryLedger implements DeliveryLedger {
  private record Mark(String group, String messageId) {}

  private final Cache<Mark, Long> marks;

  private InMemoryDeliveryLedger(long maximumEntries) {
    this.marks =
        Caffeine.newBuilder()
            .maximumSize(maximumEntries)
            .expireAfter(
                new Expiry<Mark, Long>() {
                  @Override
                  public long expireAfterCreate(Mark key, Long windowNanos, long currentTime) {
                    return windowNanos;
                  }

                  @Override
                  public long expireAfterUpdate(
                      Mark key, Long windowNanos, long currentTime, long currentDuration) {
                    return windowNanos;
                  }

                  @Override
                  public long expireAfterRead(
                      Mark key, Long windowNanos, long currentTime, long currentDuration) {
                    return currentDuration;
                  }
                })
            .build();
  }

  /** A ledger remembering at most a million messages. */
  public static InMemoryDeliveryLedger create() {
    return create(1_000_000);
  }

  public static InMemoryDeliveryLedger create(long maximumEntries) {
    return new InMemoryDeliveryLedger(maximumEntries);
  }

  @Override
  public boolean isHandled(String group, String messageId) {
    return marks.getIfPresent(new Mark(group, messageId)) != null;
  }

  @Override
  public void markHandled(String group, String messageId, Duration window) {
    Objects.requireNonNull(window, "window");
    marks.put(new Mark(group, messageId), window.toNanos());
  }
}
