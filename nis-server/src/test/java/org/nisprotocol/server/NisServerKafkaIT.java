package org.nisprotocol.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nisprotocol.core.CircuitBreakerConfig;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.embedded.InMemoryCache;
import org.nisprotocol.kafka.KafkaBusConfig;
import org.nisprotocol.kafka.KafkaMessageBus;
import org.nisprotocol.testkit.TestServers;

/** POST /messages on the Kafka backend: sent, spooled, refused. */
class NisServerKafkaIT {
  private static final String TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  private final HttpClient http = HttpClient.newHttpClient();

  @TempDir Path temp;

  private record Answer(int status, JsonNode body) {}

  private Answer post(NisServer server, String body, String traceparent) throws Exception {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/messages"))
            .POST(HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8));
    if (traceparent != null) {
      request.header("traceparent", traceparent);
    }
    HttpResponse<String> response = http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    return new Answer(response.statusCode(), MessageCodec.parse(response.body().getBytes(StandardCharsets.UTF_8)));
  }

  private static String simulationResult(String topic, String filler) {
    return "{\"message_type\":\"simulation_result\",\"source_agent\":\"scenario_simulator\",\"topic\":\"" + topic
        + "\",\"content\":{\"success_probability\":0.847,\"filler\":\"" + filler + "\"}}";
  }

  @Test
  void aPostedMessageIsSentToKafkaWithItsTraceparent() throws Exception {
    String topic = "http-" + UUID.randomUUID();
    KafkaMessageBus bus =
        KafkaMessageBus.create(
            KafkaBusConfig.builder(TestServers.kafka().bootstrapServers())
                .spoolDirectory(temp.resolve("spool"))
                .maxContentBytes(4_000)
                .shutdownTimeout(Duration.ofSeconds(10))
                .build());
    try (NisServer server = NisServer.start(ServiceConfig.embedded(0), bus, InMemoryCache.create())) {
      List<Delivery> received = new CopyOnWriteArrayList<>();
      bus.subscribe(SubscriptionSpec.group("http-" + UUID.randomUUID()).withTopics(topic), received::add);

      Answer accepted = post(server, simulationResult(topic, "small"), TRACEPARENT);

      assertThat(accepted.status()).isEqualTo(202);
      assertThat(accepted.body().get("status").textValue()).isEqualTo("sent");
      assertThat(accepted.body().get("topic").textValue()).isEqualTo(topic);
      await().atMost(Duration.ofSeconds(30)).until(() -> received.size() == 1);
      assertThat(received.get(0).headers()).containsEntry("traceparent", TRACEPARENT);
      assertThat(received.get(0).message().messageId()).isEqualTo(accepted.body().get("message_id").textValue());

      Answer tooLarge = post(server, simulationResult(topic, "x".repeat(5_000)), null);
      assertThat(tooLarge.status()).isEqualTo(413);
      assertThat(tooLarge.body().get("error").textValue()).isEqualTo("message_too_large");

      Answer badTrace = post(server, simulationResult(topic, "small"), "not-a-trace");
      assertThat(badTrace.status()).isEqualTo(400);
      assertThat(badTrace.body().get("detail").textValue()).contains("traceparent");
    }
  }

  /** A message for a topic Kafka refuses to create (a replication factor above its brokers): 502, naming why. */
  @Test
  void aMessageForATopicKafkaRefusesToCreateIsAnsweredWith502() throws Exception {
    String topic = "http-refused-" + UUID.randomUUID();
    KafkaMessageBus bus =
        KafkaMessageBus.create(
            KafkaBusConfig.builder(TestServers.kafka().bootstrapServers())
                .spoolDirectory(temp.resolve("spool"))
                .replicationFactor(2)
                .shutdownTimeout(Duration.ofSeconds(5))
                .build());
    try (NisServer server = NisServer.start(ServiceConfig.embedded(0), bus, InMemoryCache.create())) {
      Answer refused = post(server, simulationResult(topic, "small"), null);

      assertThat(refused.status()).isEqualTo(502);
      assertThat(refused.body().get("error").textValue()).isEqualTo("backend_refused");
      assertThat(refused.body().get("detail").textValue())
          .startsWith("Kafka refused to create topic " + topic)
          .contains("replication factor");
      assertThat(bus.spooledMessages()).isZero();
    }
  }

  @Test
  void withKafkaUnreachableMessagesAreSpooledThenRefusedWhenTheSpoolIsFull() throws Exception {
    int deadPort;
    try (ServerSocket socket = new ServerSocket(0)) {
      deadPort = socket.getLocalPort();
    }
    KafkaMessageBus bus =
        KafkaMessageBus.create(
            KafkaBusConfig.builder("127.0.0.1:" + deadPort)
                .spoolDirectory(temp.resolve("spool"))
                .spoolMaxBytes(8_192)
                .sendTimeout(Duration.ofSeconds(1))
                .circuitBreaker(new CircuitBreakerConfig(1, Duration.ofMinutes(5), 1))
                .shutdownTimeout(Duration.ofSeconds(2))
                .build());
    try (NisServer server = NisServer.start(ServiceConfig.embedded(0), bus, InMemoryCache.create())) {
      Answer first = post(server, simulationResult("nis-simulation", "a"), null);
      assertThat(first.status()).isEqualTo(202);
      assertThat(first.body().get("status").textValue()).isEqualTo("spooled");

      Answer last = first;
      for (int i = 0; i < 100 && last.status() == 202; i++) {
        last = post(server, simulationResult("nis-simulation", "b".repeat(200)), null);
      }

      assertThat(last.status()).isEqualTo(503);
      assertThat(last.body().get("error").textValue()).isEqualTo("unavailable");
      assertThat(last.body().get("detail").textValue()).contains("spool is full");
    }
  }
}
