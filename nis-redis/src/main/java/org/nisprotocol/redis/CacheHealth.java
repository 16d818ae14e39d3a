package org.nisprotocol.redis;

import java.time.Instant;
import java.util.Locale;
import java.util.Optional;
import org.nisprotocol.core.CircuitBreaker;

/**
 * What the Redis cache can do right now, for the service's health report.
 *
 * @param status healthy, degraded or unhealthy (see {@link Status})
 * @param breaker the state of the breaker in front of Redis
 * @param consecutiveFailures Redis failures since its last success
 * @param lastFailureAt when Redis last failed, if ever
 * @param lastError what the last failure was, if any
 * @param nearCacheInvalidations whether invalidations from other instances are being received
 */
public record CacheHealth(
    Status status,
    CircuitBreaker.State breaker,
    int consecutiveFailures,
    Optional<Instant> lastFailureAt,
    Optional<String> lastError,
    boolean nearCacheInvalidations) {

  /** The service health vocabulary; on the wire lowercase ({@link #wireName()}). */
  public enum Status {
    /** Redis answers; the breaker is closed. */
    HEALTHY,
    /**
     * Redis is failing, unreachable or hung, or near-cache invalidations are not arriving: reads
     * are answered from the local tier and writes are refused (see {@link RedisCache}).
     */
    DEGRADED,
    /** The cache is closed. */
    UNHEALTHY;

    public String wireName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }
}
