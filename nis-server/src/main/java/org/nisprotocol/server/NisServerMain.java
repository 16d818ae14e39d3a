package org.nisprotocol.server;

import java.util.Arrays;
import org.nisprotocol.core.Cache;
import org.nisprotocol.core.MessageBus;
import org.nisprotocol.core.ValidationException;
import org.nisprotocol.embedded.InMemoryCache;
import org.nisprotocol.embedded.InMemoryMessageBus;
import org.nisprotocol.embedded.InMemoryMessageBusConfig;
import org.nisprotocol.kafka.KafkaMessageBus;
import org.nisprotocol.redis.RedisCache;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Entry point of {@code bin/nis serve}: reads the settings, builds the backends, serves. */
public final class NisServerMain {
  private static final Logger log = LoggerFactory.getLogger(NisServerMain.class);

  private NisServerMain() {}

  public static void main(String[] args) {
    long start = System.nanoTime();
    ServiceConfig config;
    try {
      config = ServiceConfig.from(System.getenv(), Arrays.asList(args));
    } catch (ValidationException e) {
      System.err.println("nis: cannot start: " + String.join("; ", e.problems()));
      System.exit(2);
      return;
    }
    MessageBus bus = null;
    Cache cache = null;
    NisServer server;
    try {
      bus = config.kafka().<MessageBus>map(KafkaMessageBus::create).orElseGet(() -> InMemoryMessageBus.create(
          InMemoryMessageBusConfig.defaults().withMaxMessageBytes(config.maxMessageBytes())));
      cache = config.redis().<Cache>map(RedisCache::create).orElseGet(InMemoryCache::create);
      server = NisServer.start(config, bus, cache);
    } catch (RuntimeException | Error e) {
      System.err.println("nis: cannot start: " + (e.getMessage() == null ? e.toString() : e.getMessage()));
      log.debug("start failed", e);
      try {
        if (bus != null) {
          bus.close(); // delivers what it took in before the failure
        }
        if (cache != null) {
          cache.close();
        }
      } finally {
        System.exit(1);
      }
      return;
    }
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  log.info("shutting down: finishing accepted messages");
                  long stopping = System.nanoTime();
                  try {
                    server.close();
                    log.info("stopped in {} ms", (System.nanoTime() - stopping) / 1_000_000);
                  } catch (RuntimeException | Error e) {
                    log.error("stopped, but not cleanly: {}", e.toString(), e);
                    throw e;
                  }
                },
                "nis-shutdown"));
    log.info(
        "NIS service listening on {}:{} (message bus: {}, cache: {}) in {} ms",
        config.host(),
        server.port(),
        bus.name(),
        cache.name(),
        (System.nanoTime() - start) / 1_000_000);
  }
}
