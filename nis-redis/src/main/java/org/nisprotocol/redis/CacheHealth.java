package org.nisprotocol.redis;

import java.time.Instant;
import java.util.Optional;
import org.nisprotocol.core.CircuitBreaker;
import org.nisprotocol.core.HealthStatus;

/**
 * What the Redis cache can do right now, as it last saw it (no round trip: {@link
 * RedisCache#checkHealth} probes).
 *
 * @param status {@link HealthStatus#HEALTHY} while Redis answers and the breaker is closed; {@link
 *     HealthStatus#DEGRADED} while Redis fails, is unreachable or hung (reads are answered from the
 *     local tier, writes refused) or near-cache invalidations are not arriving; {@link
 *     HealthStatus#UNHEALTHY} once the cache is closed
 * @param breaker the state of the breaker in front of Redis
 * @param consecutiveFailures Redis failures since its last success
 * @param lastFailureAt when Redis last failed, if ever
 * @param lastError what the last failure was, if any
 * @param nearCacheInvalidations whether invalidations from other instances are being received
 */
public record CacheHealth(
    HealthStatus status,
    CircuitBreaker.State breaker,
    int consecutiveFailures,
    Optional<Instant> lastFailureAt,
    Optional<String> lastError,
    boolean nearCacheInvalidations) {}
