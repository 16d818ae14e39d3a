package org.nisprotocol.kafka;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.nisprotocol.core.CircuitBreakerConfig;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.PublishReceipt;

/**
 * A process that publishes while the broker is down, says how many it spooled, then waits to be
 * killed: the crash half of {@link KafkaFaultIT}'s spool test.
 *
 * <p>Arguments: bootstrap servers, spool directory, topic, message count.
 */
public final class SpoolingPublisherMain {
  private SpoolingPublisherMain() {}

  public static void main(String[] args) throws InterruptedException {
    int count = Integer.parseInt(args[3]);
    KafkaMessageBus bus =
        KafkaMessageBus.create(
            KafkaBusConfig.builder(args[0])
                .spoolDirectory(Path.of(args[1]))
                .sendTimeout(Duration.ofSeconds(2))
                .circuitBreaker(new CircuitBreakerConfig(1, Duration.ofMinutes(10), 1))
                .build());
    int spooled = 0;
    for (int i = 0; i < count; i++) {
      NisMessage message =
          NisMessage.builder(MessageType.AGENT_COORDINATION, "crashing_agent")
              .topic(args[2])
              .targetAgent("agent-" + (i % 3))
              .content(Map.of("sequence", i))
              .build();
      if (bus.publish(message).status() == PublishReceipt.Status.SPOOLED) {
        spooled++;
      }
    }
    System.out.println("SPOOLED " + spooled);
    System.out.flush();
    Thread.sleep(Duration.ofMinutes(5)); // killed before this ends
  }
}
