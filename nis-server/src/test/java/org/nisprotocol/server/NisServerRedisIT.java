package org.nisprotocol.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.embedded.InMemoryMessageBus;
import org.nisprotocol.redis.RedisCache;
import org.nisprotocol.redis.RedisCacheConfig;
import org.nisprotocol.testkit.TestServers;

/** Two service instances on one real Redis: shared cache, one agent directory. */
class NisServerRedisIT {
  private final HttpClient http = HttpClient.newHttpClient();

  private record Answer(int status, JsonNode body) {}

  private Answer send(NisServer server, String method, String path, String body) throws Exception {
    HttpRequest request =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path))
            .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
            .build();
    HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
    return new Answer(response.statusCode(), MessageCodec.parse(response.body().getBytes(StandardCharsets.UTF_8)));
  }

  private static NisServer instance() {
    RedisCacheConfig redis =
        RedisCacheConfig.fromEnvironment(
                Map.of(
                    "REDIS_HOST", TestServers.redis().host(),
                    "REDIS_PORT", Integer.toString(TestServers.redis().port()),
                    // What two instances share is the subject, not timeouts: the default 250 ms is
                    // shorter than the pauses a loaded test machine gives this JVM.
                    "REDIS_COMMAND_TIMEOUT_MS", "5000"))
            .orElseThrow();
    return NisServer.start(ServiceConfig.embedded(0), InMemoryMessageBus.create(), RedisCache.create(redis));
  }

  @Test
  void twoInstancesShareTheCacheAndTheAgentDirectory() throws Exception {
    String namespace = "it-" + UUID.randomUUID().toString().substring(0, 8);
    try (NisServer first = instance();
        NisServer second = instance()) {
      assertThat(send(first, "PUT", "/cache/" + namespace + "/config", "{\"value\": {\"setting\": \"value\"}, \"ttl\": 60}").status())
          .isEqualTo(200);

      Answer read = send(second, "GET", "/cache/" + namespace + "/config", null);
      assertThat(read.status()).isEqualTo(200);
      assertThat(read.body().at("/value/setting").textValue()).isEqualTo("value");

      Answer agents = send(first, "GET", "/agents", null);
      assertThat(agents.body().get("agents").findValuesAsText("agent_id")).contains("scenario_simulator");
      assertThat(agents.body().get("agents").findValuesAsText("instance")).doesNotHaveDuplicates().hasSizeGreaterThanOrEqualTo(2);

      Answer status = send(second, "GET", "/infrastructure/status", null);
      assertThat(status.body().at("/services/redis/health").textValue()).isEqualTo("healthy");
    }
  }
}
