/**
 * The Redis backend of the cache port: {@link org.nisprotocol.redis.RedisCache} (configured by
 * {@link org.nisprotocol.redis.RedisCacheConfig}, with optional per-namespace {@link
 * org.nisprotocol.redis.NearCache}s), and {@link org.nisprotocol.redis.StrategyCache}, which gives
 * any cache the write-through, write-back and refresh-ahead strategies.
 */
package org.nisprotocol.redis;
