package org.nisprotocol.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nisprotocol.agents.ScenarioSimulatorAgent;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.StreamingTopics;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.embedded.InMemoryCache;
import org.nisprotocol.embedded.InMemoryMessageBus;

/** POST /audit, POST /simulations, GET /agents, GET /infrastructure/status, audited POST /messages. */
class AgentEndpointsTest {
  private final HttpClient http = HttpClient.newHttpClient();
  private InMemoryMessageBus bus;
  private NisServer server;

  record Answer(int status, JsonNode body) {}

  @BeforeEach
  void start() {
    bus = InMemoryMessageBus.create();
    server = NisServer.start(ServiceConfig.embedded(0), bus, InMemoryCache.create());
  }

  @AfterEach
  void stop() {
    server.close();
  }

  private Answer send(String method, String path, String body) throws Exception {
    HttpRequest request =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path))
            .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
            .build();
    HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
    return new Answer(response.statusCode(), MessageCodec.parse(response.body().getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void auditingTextReportsViolationsScoreAndCorrection() throws Exception {
    Answer answer = send("POST", "/audit", "{\"text\": \"Our revolutionary system reaches 95% accuracy with zero hallucination.\"}");

    assertThat(answer.status()).isEqualTo(200);
    assertThat(answer.body().get("integrity_score").doubleValue()).isLessThan(100);
    assertThat(answer.body().get("status").textValue()).isNotBlank();
    JsonNode first = answer.body().get("violations").get(0);
    assertThat(first.has("type") && first.has("severity") && first.has("text")).isTrue();
    assertThat(answer.body().get("corrected").textValue()).doesNotContain("revolutionary");
  }

  @Test
  void auditingContentFlagsAHardCodedConfidence() throws Exception {
    Answer answer = send("POST", "/audit", "{\"content\": {\"confidence\": 0.95, \"accuracy\": \"calculated_from_test_data\"}}");

    assertThat(answer.status()).isEqualTo(200);
    assertThat(answer.body().get("violations").toString()).contains("confidence");
    assertThat(answer.body().at("/corrected/confidence").isNumber()).isFalse();
    assertThat(answer.body().at("/corrected/accuracy").textValue()).isEqualTo("calculated_from_test_data");
  }

  @Test
  void anAuditRequestWithoutTextOrContentIs400() throws Exception {
    Answer answer = send("POST", "/audit", "{\"words\": 1}");

    assertThat(answer.status()).isEqualTo(400);
    assertThat(answer.body().get("detail").textValue()).contains("\"text\"");
  }

  @Test
  void aSimulationIsComputedPublishedAndThenServedFromTheCache() throws Exception {
    List<Delivery> results = new CopyOnWriteArrayList<>();
    bus.subscribe(SubscriptionSpec.group("analysis").withTopics(StreamingTopics.SIMULATION), results::add);
    String request =
        """
        {"scenario_id": "archaeological_site_001", "scenario_type": "archaeological_excavation",
         "parameters": {"iterations": 500, "seed": 42}}
        """;

    Answer first = send("POST", "/simulations", request);
    Answer second = send("POST", "/simulations", request);

    assertThat(first.status()).isEqualTo(200);
    double probability = first.body().get("success_probability").doubleValue();
    assertThat(probability).isBetween(0.0, 1.0);
    JsonNode interval = first.body().get("confidence_interval");
    assertThat(interval.get(0).doubleValue()).isLessThanOrEqualTo(probability);
    assertThat(interval.get(1).doubleValue()).isGreaterThanOrEqualTo(probability);
    assertThat(first.body().get("from_cache").booleanValue()).isFalse();
    assertThat(second.body().get("from_cache").booleanValue()).isTrue();
    assertThat(second.body().get("success_probability").doubleValue()).isEqualTo(probability);
    await().atMost(Duration.ofSeconds(10)).until(() -> results.size() == 1);
    assertThat(results.get(0).message().content()).containsEntry("scenario_id", "archaeological_site_001");
  }

  @Test
  void simulationRequestsAcceptedBeforeShutdownAreStillAnswered() throws Exception {
    // Shutdown closes the bus first, which delivers what it accepted to the agents and lets them
    // publish their results; closing the agents first dropped the requests they had not reached.
    Set<Object> answered = ConcurrentHashMap.newKeySet();
    bus.subscribe(
        SubscriptionSpec.group("analysis").withTopics(StreamingTopics.SIMULATION),
        d -> answered.add(d.message().content().get("scenario_id")));
    Set<Object> asked = new HashSet<>();
    for (int i = 0; i < 300; i++) { // published straight to the bus, faster than the agent handles them
      bus.publish(NisMessage.builder(MessageType.AGENT_COORDINATION, "planner")
          .content(Map.of(
              "action", ScenarioSimulatorAgent.ACTION,
              "scenario_id", "site-" + i,
              "scenario_type", "archaeological_excavation",
              "parameters", Map.of("iterations", 2000, "seed", i)))
          .build());
      asked.add("site-" + i);
    }

    server.close();

    assertThat(answered).isEqualTo(asked);
  }

  @Test
  void aBadSimulationRequestIs400NamingEveryProblem() throws Exception {
    Answer answer = send("POST", "/simulations", "{\"scenario_id\": 7, \"scenario_type\": \"time_travel\", \"parameters\": {\"iterations\": -1}}");

    assertThat(answer.status()).isEqualTo(400);
    assertThat(answer.body().get("detail").textValue()).contains("time_travel").contains("scenario_id");
  }

  @Test
  void theAgentDirectoryListsTheScenarioSimulator() throws Exception {
    Answer answer = send("GET", "/agents", null);

    assertThat(answer.status()).isEqualTo(200);
    assertThat(answer.body().get("count").intValue()).isEqualTo(1);
    JsonNode simulator = answer.body().get("agents").get(0);
    assertThat(simulator.get("agent_id").textValue()).isEqualTo("scenario_simulator");
    assertThat(simulator.get("state").textValue()).isEqualTo("ready");
    assertThat(simulator.has("last_heartbeat")).isTrue();
  }

  @Test
  void theInfrastructureStatusHasTheGuidesShape() throws Exception {
    send("POST", "/messages", "{\"message_type\": \"system_health\", \"source_agent\": \"a\", \"content\": {\"status\": \"ok\"}}");

    Answer answer = send("GET", "/infrastructure/status", null);

    assertThat(answer.status()).isEqualTo(200);
    assertThat(answer.body().get("integration_status").textValue()).isEqualTo("fully_operational");
    assertThat(answer.body().get("overall_health").textValue()).isEqualTo("healthy");
    assertThat(answer.body().at("/services/message_bus/health").textValue()).isEqualTo("healthy");
    assertThat(answer.body().at("/metrics/total_messages").longValue()).isEqualTo(1);
    assertThat(answer.body().at("/agent_subscriptions/scenario_simulator").toString()).contains("agent_coordination");
    assertThat(answer.body().get("self_audit_enabled").booleanValue()).isTrue();
  }

  /** Content with a flagged value under a long key in each of thousands of places. */
  private static String flaggedEverywhere() {
    return "{\"" + "k".repeat(2_000) + "\": [" + String.join(",", java.util.Collections.nCopies(5_000, "\"perfect\"")) + "]}";
  }

  @Test
  void auditingContentFlaggedInThousandsOfPlacesAnswersInBrief() throws Exception {
    HttpRequest request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/audit"))
        .POST(HttpRequest.BodyPublishers.ofString("{\"content\": " + flaggedEverywhere() + "}"))
        .build();

    HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());

    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.body().length()).as("the request's own size, about").isLessThan(100_000);
    JsonNode body = MessageCodec.parse(response.body().getBytes(StandardCharsets.UTF_8));
    assertThat(body.get("violation_count").intValue()).isEqualTo(5_000);
    assertThat(body.get("violations")).hasSize(100);
    assertThat(body.get("violations_not_listed").intValue()).isEqualTo(4_900);
  }

  @Test
  void aMessageFlaggedInThousandsOfPlacesRaisesAnAlertOfReadableSize() throws Exception {
    List<NisMessage> alerts = new CopyOnWriteArrayList<>();
    bus.subscribe(SubscriptionSpec.group("watch").withTopics(StreamingTopics.AUDIT_ALERTS), d -> alerts.add(d.message()));

    Answer answer = send("POST", "/messages",
        "{\"message_type\": \"simulation_result\", \"source_agent\": \"a\", \"content\": " + flaggedEverywhere() + "}");

    assertThat(answer.status()).isEqualTo(202);
    await().atMost(Duration.ofSeconds(10)).until(() -> !alerts.isEmpty());
    Map<String, Object> alert = alerts.getFirst().content();
    assertThat((List<?>) alert.get("violations")).hasSize(100);
    assertThat(alert.get("violation_count")).isEqualTo(5_000);
    assertThat(alert.get("reasons").toString()).contains("4900 more violations, not listed");
    assertThat(MessageCodec.create().encode(alerts.getFirst()).length).isLessThan(100_000);
  }

  @Test
  void aHypedMessageIsAcceptedCorrectedAndSaysSo() throws Exception {
    Answer answer =
        send(
            "POST",
            "/messages",
            "{\"message_type\": \"simulation_result\", \"source_agent\": \"a\", \"content\": {\"summary\": \"revolutionary perfect robust comprehensive breakthrough, 99% accuracy\", \"confidence\": 0.95}}");

    assertThat(answer.status()).isEqualTo(202);
    assertThat(answer.body().get("audit").textValue()).isIn("corrected", "quarantined");
    assertThat(answer.body().get("integrity_score").doubleValue()).isLessThan(70);
  }
}
