package org.nisprotocol.redis;

import org.nisprotocol.core.Cache;
import org.nisprotocol.core.NamespaceTtls;
import org.nisprotocol.testkit.CacheContract;
import org.nisprotocol.testkit.RedisServer;
import org.nisprotocol.testkit.TestServers;

/** The cache contract against the shared real Redis; Redis expires entries in real time. */
class RedisCacheContractIT extends CacheContract {

  @Override
  protected Cache createCache(NamespaceTtls namespaceTtls) {
    RedisServer redis = TestServers.redis();
    return RedisCache.create(
        PatientConfig.builder(redis)
            .namespaceTtls(namespaceTtls)
            .build());
  }
}
