package org.nisprotocol.kafka;

import java.nio.file.Path;
import java.time.Duration;
import org.nisprotocol.core.RetryPolicy;
import org.nisprotocol.core.SubscriptionSpec;

/**
 * A process whose handler ends it on a message whose content says {@code "halt": true}, and says
 * what it handles: the consumer half of {@link HandlerKillsProcessIT}. It runs until killed.
 *
 * <p>Arguments: bootstrap servers, spool directory, topic, group, and how the handler ends the
 * process: {@code halt} (as a native fault or a kill would: no shutdown hooks), {@code exit}
 * ({@code System.exit}, with a shutdown hook that closes the bus, as the service has) or {@code
 * oom} (an {@link OutOfMemoryError} the process survives for a second, then a halt); {@code
 * throw-then-halt} throws on the first attempt and halts on the others.
 */
public final class HaltingConsumerMain {
  static final int MAX_ATTEMPTS = 2;

  private HaltingConsumerMain() {}

  public static void main(String[] args) throws InterruptedException {
    String how = args[4];
    KafkaMessageBus bus =
        KafkaMessageBus.create(
            KafkaBusConfig.builder(args[0])
                .spoolDirectory(Path.of(args[1]))
                .retryPolicy(new RetryPolicy(MAX_ATTEMPTS, Duration.ofMillis(20), Duration.ofMillis(200), 0.5))
                .sessionTimeout(Duration.ofSeconds(6)) // the broker's least: a halted member is gone soon
                .shutdownTimeout(Duration.ofSeconds(4))
                .build());
    if (how.equals("exit")) {
      Runtime.getRuntime().addShutdownHook(new Thread(bus::close));
    }
    bus.subscribe(
        SubscriptionSpec.group(args[3]).withTopics(args[2]),
        delivery -> {
          Object sequence = delivery.message().content().get("sequence");
          if (Boolean.TRUE.equals(delivery.message().content().get("halt"))) {
            if (how.equals("throw-then-halt") && delivery.attempt() == 1) {
              System.out.println("THROWING " + sequence + " attempt 1");
              System.out.flush();
              throw new IllegalStateException("the handler failed on attempt 1");
            }
            System.out.println("HALTING " + sequence + " attempt " + delivery.attempt());
            System.out.flush();
            switch (how) {
              case "exit" -> System.exit(3);
              case "oom" -> {
                Thread.ofPlatform().start(() -> {
                  try {
                    Thread.sleep(1_000);
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                  Runtime.getRuntime().halt(3);
                });
                throw new OutOfMemoryError("the handler ran out of memory");
              }
              default -> Runtime.getRuntime().halt(3);
            }
          }
          System.out.println("HANDLED " + sequence);
          System.out.flush();
        });
    System.out.println("SUBSCRIBED");
    System.out.flush();
    Thread.sleep(Duration.ofMinutes(5)); // killed before this ends
  }
}
