package org.nisprotocol.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.HealthCheck;
import org.nisprotocol.core.HealthStatus;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.embedded.InMemoryCache;
import org.nisprotocol.embedded.InMemoryMessageBus;
import org.nisprotocol.testkit.ForwardingMessageBus;

class HealthEndpointTest {
  private final HttpClient http = HttpClient.newHttpClient();

  @Test
  void healthReportsTheBackendsAsLastCheckedAndStays200() throws Exception {
    try (NisServer server = NisServer.start(
        ServiceConfig.embedded(0), new Unhealthy(InMemoryMessageBus.create()), InMemoryCache.create())) {
      HttpResponse<String> answer = get(server, "/health");

      assertThat(answer.statusCode()).as("still serving: messages go to the spool").isEqualTo(200);
      JsonNode body = MessageCodec.parse(answer.body().getBytes(StandardCharsets.UTF_8));
      assertThat(body.get("status").textValue()).isEqualTo("unhealthy");
      assertThat(body.get("services").get("message_bus").textValue()).isEqualTo("unhealthy");
      assertThat(body.get("services").get("cache").textValue()).isEqualTo("healthy");
      assertThat(get(server, "/health/ready").statusCode()).isEqualTo(200);
    }
  }

  @Test
  void healthIsHealthyWhenEveryBackendIs() throws Exception {
    try (NisServer server = NisServer.start(ServiceConfig.embedded(0), InMemoryMessageBus.create(), InMemoryCache.create())) {
      JsonNode body = MessageCodec.parse(get(server, "/health").body().getBytes(StandardCharsets.UTF_8));

      assertThat(body.get("status").textValue()).isEqualTo("healthy");
      assertThat(body.get("services").size()).isEqualTo(2);
    }
  }

  private HttpResponse<String> get(NisServer server, String path) throws Exception {
    return http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path)).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  /** A bus whose broker does not answer. */
  private static final class Unhealthy extends ForwardingMessageBus {
    Unhealthy(InMemoryMessageBus delegate) {
      super(delegate);
    }

    @Override
    public HealthCheck checkHealth(Duration timeout) {
      return HealthCheck.of(HealthStatus.UNHEALTHY, timeout, "broker not reachable");
    }
  }
}
