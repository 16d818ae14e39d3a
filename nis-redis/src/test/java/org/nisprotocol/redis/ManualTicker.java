package org.nisprotocol.redis;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

/** A local-tier ticker that moves only when a test says so. */
final class ManualTicker implements LocalTier.Ticker {
  private final AtomicLong nanos = new AtomicLong(1_000_000_000L);

  @Override
  public long read() {
    return nanos.get();
  }

  void advance(Duration duration) {
    nanos.addAndGet(duration.toNanos());
  }

  /** An entry expiring after the given time from now. */
  LocalTier.Entry entry(String json, Duration ttl) {
    return new LocalTier.Entry(json, read() + ttl.toNanos());
  }
}
