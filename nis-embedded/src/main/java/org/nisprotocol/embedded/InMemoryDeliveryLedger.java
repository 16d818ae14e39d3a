package org.nisprotocol.embedded;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.Expiry;
import java.time.Duration;
import org.nisprotocol.core.CacheKeys;
import org.nisprotocol.core.DeliveryLedger;

/**
 * A {@link DeliveryLedger} in this process's memory, bounded in entries: it recognises
 * redeliveries to this instance only (use the Redis ledger across instances). Thread-safe: a
 * claim is atomic among the threads of this process. Bounded: past its size, entries (claims
 * too) may be evicted before they lapse. {@link #release} removes the message's claim whoever
 * took it: a handler that outlived its lease and then failed releases the claim of the consumer
 * that took the message after the lapse (a lease as long as the longest handler avoids it).
 */
public final class InMemoryDeliveryLedger implements DeliveryLedger {
  private record Mark(String group, String messageId) {}

  /** A claim (until its lease ends) or a handled mark (until its window ends). */
  private record Entry(boolean handled, long forNanos) {}

  private final Cache<Mark, Entry> marks;

  private InMemoryDeliveryLedger(long maximumEntries) {
    this.marks =
        Caffeine.newBuilder()
            .maximumSize(maximumEntries)
            .expireAfter(
                new Expiry<Mark, Entry>() {
                  @Override
                  public long expireAfterCreate(Mark key, Entry entry, long currentTime) {
                    return entry.forNanos();
                  }

                  @Override
                  public long expireAfterUpdate(Mark key, Entry entry, long currentTime, long currentDuration) {
                    return entry.forNanos();
                  }

                  @Override
                  public long expireAfterRead(Mark key, Entry entry, long currentTime, long currentDuration) {
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
  public Claim claim(String group, String messageId, Duration lease) {
    Entry claim = new Entry(false, CacheKeys.requirePositive("lease", lease).toNanos());
    // The map view treats an expired entry as absent, atomically with the write.
    Entry found = marks.asMap().putIfAbsent(new Mark(group, messageId), claim);
    if (found == null) {
      return Claim.CLAIMED;
    }
    return found.handled() ? Claim.HANDLED : Claim.BUSY;
  }

  @Override
  public void markHandled(String group, String messageId, Duration window) {
    marks.put(new Mark(group, messageId), new Entry(true, CacheKeys.requirePositive("window", window).toNanos()));
  }

  @Override
  public void release(String group, String messageId) {
    marks.asMap().computeIfPresent(new Mark(group, messageId), (mark, entry) -> entry.handled() ? entry : null);
  }
}
