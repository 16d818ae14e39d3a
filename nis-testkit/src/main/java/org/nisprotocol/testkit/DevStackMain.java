package org.nisprotocol.testkit;

import java.util.concurrent.CountDownLatch;

/**
 * {@code bin/nis dev-stack}: a real Kafka broker and a real Redis server on free loopback ports,
 * for running the service (or your agents) against real servers on a laptop. Prints the
 * environment to export, runs until interrupted (Ctrl-C), then stops both and deletes their data.
 */
public final class DevStackMain {
  private DevStackMain() {}

  public static void main(String[] args) throws InterruptedException {
    KafkaBroker kafka = KafkaBroker.builder().name("dev-kafka").build();
    RedisServer redis = RedisServer.builder().name("dev-redis").build();
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  kafka.close();
                  redis.close();
                  stopped.countDown();
                },
                "dev-stack-stop"));
    redis.start();
    kafka.start();
    System.out.println("# Kafka and Redis are running; in another shell:");
    System.out.println("export KAFKA_BOOTSTRAP_SERVERS=" + kafka.bootstrapServers());
    System.out.println("export REDIS_HOST=" + redis.host() + " REDIS_PORT=" + redis.port());
    System.out.println("bin/nis serve");
    System.out.println("# Ctrl-C here stops both and deletes their data.");
    System.out.flush();
    stopped.await();
  }
}
