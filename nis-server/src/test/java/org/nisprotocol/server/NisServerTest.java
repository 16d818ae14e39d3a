package org.nisprotocol.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.MessagePriority;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NamespaceTtls;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.embedded.InMemoryCache;
import org.nisprotocol.embedded.InMemoryCacheConfig;
import org.nisprotocol.embedded.InMemoryMessageBus;
import org.nisprotocol.embedded.InMemoryMessageBusConfig;
import org.nisprotocol.testkit.ManualClock;

class NisServerTest {
  private final ManualClock clock = ManualClock.create();
  private final HttpClient http = HttpClient.newHttpClient();
  private NisServer server;
  private InMemoryMessageBus bus;
  private InMemoryCache cache;

  record Answer(int status, JsonNode body, HttpResponse<String> raw) {}

  @BeforeEach
  void startServer() {
    bus =
        InMemoryMessageBus.create(
            InMemoryMessageBusConfig.defaults().withCapacity(3).withPublishTimeout(Duration.ofMillis(50)));
    cache =
        InMemoryCache.create(
            InMemoryCacheConfig.defaults()
                .withClock(clock)
                .withNamespaceTtls(NamespaceTtls.defaults()));
    server = NisServer.start(ServiceConfig.embedded(0), bus, cache, clock);
  }

  @AfterEach
  void stopServer() {
    server.close();
  }

  private Answer send(String method, String path, String body) throws IOException, InterruptedException {
    return send(method, path, body, Map.of());
  }

  private Answer send(String method, String path, String body, Map<String, String> headers)
      throws IOException, InterruptedException {
    return send(server, method, path, body, headers);
  }

  private Answer send(NisServer to, String method, String path, String body, Map<String, String> headers)
      throws IOException, InterruptedException {
    HttpRequest.Builder builder = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + to.port() + path));
    headers.forEach(builder::header);
    HttpRequest request =
        builder
            .method(
                method,
                body == null
                    ? HttpRequest.BodyPublishers.noBody()
                    : HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8))
            .header("Content-Type", "application/json")
            .build();
    HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
    JsonNode json = MessageCodec.parse(response.body().getBytes(StandardCharsets.UTF_8));
    return new Answer(response.statusCode(), json, response);
  }

  private static void assertError(Answer answer, int status, String error, String detailPart) {
    assertThat(answer.status()).isEqualTo(status);
    assertThat(answer.raw().headers().firstValue("Content-Type")).hasValueSatisfying(v -> assertThat(v).contains("application/json"));
    assertThat(answer.body().get("error").textValue()).isEqualTo(error);
    assertThat(answer.body().get("detail").textValue()).contains(detailPart);
  }

  @Test
  void requestsJettyRefusesBeforeAnyRouteGetJsonErrorsToo() throws Exception {
    for (String method : List.of("POST", "PUT", "DELETE")) {
      HttpRequest hugeHeader =
          HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/cache/memory/k"))
              .method(method, HttpRequest.BodyPublishers.ofString("{}"))
              .header("X-Long", "x".repeat(20_000))
              .build();
      HttpResponse<String> response = http.send(hugeHeader, HttpResponse.BodyHandlers.ofString());
      JsonNode body = MessageCodec.parse(response.body().getBytes(StandardCharsets.UTF_8));

      assertError(new Answer(response.statusCode(), body, response), 431, "request_header_fields_too_large",
          "the request's headers went over the 8,192 bytes the service takes");
    }
  }

  @Test
  void aUriJettyCannotDecodeGets400SayingWhy() throws Exception {
    assertThat(rawAnswer("GET /cache/memory/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
        .startsWith("HTTP/1.1 400 ")
        .contains("application/json")
        .endsWith("{\"error\":\"bad_request\",\"detail\":\"the request URI holds a '%' that is not followed by two hex digits\"}");
    assertThat(rawAnswer("GET /cache/memory/a%00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
        .startsWith("HTTP/1.1 400 ")
        .endsWith("{\"error\":\"bad_request\",\"detail\":\"the request is not valid HTTP/1.1: Illegal character in path\"}");
  }

  @Test
  void aBodyCutShortOrBadlyChunkedGets400SayingSo() throws Exception {
    String chunked = " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    for (String path : List.of("PUT /cache/memory/k", "POST /messages")) {
      assertThat(rawAnswer(path + chunked + "zz\r\n"))
          .startsWith("HTTP/1.1 400 ")
          .contains("application/json")
          .contains("{\"error\":\"bad_request\",\"detail\":\"the request body could not be read: ");
      assertThat(rawAnswer(path + chunked + "9\r\n{\"value\":\r\nzz\r\n"))
          .startsWith("HTTP/1.1 400 ")
          .contains("{\"error\":\"bad_request\",\"detail\":\"the request body could not be read: ");
      assertThat(rawAnswer(path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"value\":", true))
          .startsWith("HTTP/1.1 400 ")
          .contains("{\"error\":\"bad_request\",\"detail\":\"the request body could not be read: ");
    }
    assertThat(cache.get("memory", "k")).isEmpty();
  }

  @Test
  void aBodyThatStopsComingGets408SayingSoOnceTheIdleTimeoutPasses() throws Exception {
    server.idleTimeout(Duration.ofMillis(500));
    for (String path : List.of("PUT /cache/memory/k", "POST /messages", "POST /audit")) {
      assertThat(rawAnswer(path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"value\":"))
          .startsWith("HTTP/1.1 408 ")
          .contains("application/json")
          .contains("{\"error\":\"request_timeout\",\"detail\":\"the request body stopped coming before it was whole:"
              + " nothing arrived for the server's idle timeout (0.5 s)\"}");
    }
    assertThat(cache.get("memory", "k")).isEmpty();
  }

  @Test
  void headAnswersWithTheStatusGetWould() throws Exception {
    send("PUT", "/cache/memory/there", "{\"value\": 1}");

    assertThat(headStatus("/cache/memory/there")).isEqualTo(200);
    assertThat(headStatus("/cache/memory/never-there")).isEqualTo(404);
    assertThat(headStatus("/cache/bad%20namespace/k")).isEqualTo(400);
    assertThat(headStatus("/health/ready")).isEqualTo(200);
    server.beginShutdown();
    assertThat(headStatus("/health/ready")).as("a load balancer asking with HEAD").isEqualTo(503);
  }

  private int headStatus(String path) throws IOException, InterruptedException {
    HttpRequest head = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path))
        .method("HEAD", HttpRequest.BodyPublishers.noBody())
        .build();
    HttpResponse<String> response = http.send(head, HttpResponse.BodyHandlers.ofString());
    assertThat(response.body()).isEmpty();
    return response.statusCode();
  }

  @Test
  void auditsAndSimulationsOfTextWithALoneSurrogateAreRefusedNotAnsweredWithAQuestionMark() throws Exception {
    assertError(send("POST", "/audit", "{\"text\": \"\\ud83d revolutionary\"}"), 400, "invalid_request",
        "'text' holds a lone surrogate \\ud83d");
    assertError(send("POST", "/audit", "{\"content\": {\"notes\": [\"fine\", \"cut \\ude00\"]}}"), 400, "invalid_request",
        "'content/notes/1' holds a lone surrogate \\ude00");
    String simulation = "{\"scenario_id\": \"%s\", \"scenario_type\": \"archaeological_excavation\","
        + " \"parameters\": {\"iterations\": 10}}";
    assertThat(send("POST", "/simulations", simulation.formatted("x")).status()).isEqualTo(200);
    assertError(send("POST", "/simulations", simulation.formatted("x\\ud83d")), 400, "invalid_request",
        "'scenario_id' holds a lone surrogate \\ud83d (half of a UTF-16 pair, not a character) at char 1, after \"x\"");
  }

  @Test
  void aMessageForADeadLetterTopicIsRefused() throws Exception {
    Answer answer = send("POST", "/messages",
        "{\"message_type\":\"goal_generation\",\"source_agent\":\"a\",\"topic\":\"nis-goals.dlt\",\"content\":{}}");

    assertError(answer, 400, "invalid_message", "topic 'nis-goals.dlt' is the dead-letter topic of 'nis-goals'");
    assertThat(bus.pending()).isZero();
  }

  /** Sends bytes no HTTP client would (java.net.URI refuses such a path) and reads the whole answer. */
  private String rawAnswer(String request) throws IOException {
    return rawAnswer(request, false);
  }

  /** As {@link #rawAnswer(String)}; with {@code endWrites}, the client then closes its side for writing. */
  private String rawAnswer(String request, boolean endWrites) throws IOException {
    try (java.net.Socket socket = new java.net.Socket("127.0.0.1", server.port())) {
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
      if (endWrites) {
        socket.shutdownOutput();
      }
      return new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  @Test
  void aUriOverTheLimitGets414NamingTheLimit() throws Exception {
    Answer answer = send("GET", "/cache/memory/" + "k".repeat(20_000), null);

    assertError(answer, 414, "uri_too_long", "the request line (method, URI, version) went over the 8,192 bytes");
  }

  @Test
  void healthSaysHealthyWithVersionAndBackends() throws Exception {
    Answer health = send("GET", "/health", null);

    assertThat(health.status()).isEqualTo(200);
    assertThat(health.body().get("status").textValue()).isEqualTo("healthy");
    assertThat(health.body().get("version").textValue()).isNotBlank().isNotEqualTo("unknown");
    assertThat(health.body().at("/backends/message_bus").textValue()).isEqualTo("embedded");
    assertThat(send("GET", "/health/live", null).status()).isEqualTo(200);
    assertThat(send("GET", "/health/ready", null).status()).isEqualTo(200);
  }

  @Test
  void aPostedMessageIsAcceptedAndDelivered() throws Exception {
    List<Delivery> received = new CopyOnWriteArrayList<>();
    bus.subscribe(SubscriptionSpec.group("analysis_group").withTopics("nis-simulation"), received::add);

    Answer answer =
        send(
            "POST",
            "/messages",
            """
            {"message_type": "simulation_result", "source_agent": "scenario_simulator",
             "target_agent": "coordination_agent", "priority": 3, "correlation_id": "c-1",
             "content": {"scenario_id": "archaeological_site_001", "success_probability": 0.847}}
            """);

    assertThat(answer.status()).isEqualTo(202);
    assertThat(answer.body().get("topic").textValue()).isEqualTo("nis-simulation");
    assertThat(answer.body().get("status").textValue()).isEqualTo("sent");
    String id = answer.body().get("message_id").textValue();
    await().atMost(Duration.ofSeconds(10)).until(() -> received.size() == 1);
    var message = received.get(0).message();
    assertThat(message.messageId()).isEqualTo(id);
    assertThat(message.messageType()).isEqualTo(MessageType.SIMULATION_RESULT);
    assertThat(message.priority()).isEqualTo(MessagePriority.HIGH);
    assertThat(message.targetAgent()).contains("coordination_agent");
    assertThat(message.correlationId()).contains("c-1");
    assertThat(message.content()).containsEntry("success_probability", 0.847);
  }

  @Test
  void anInvalidMessageGets400NamingEveryProblem() throws Exception {
    Answer answer = send("POST", "/messages", "{\"message_type\":\"telepathy\",\"content\":[1]}");

    assertError(answer, 400, "invalid_message", "unknown message_type 'telepathy'");
    assertThat(answer.body().get("problems")).hasSize(3);
    assertThat(answer.body().get("problems").toString())
        .contains("source_agent is required")
        .contains("content must be a JSON object");

    Answer huge = send("POST", "/messages",
        "{\"message_type\":\"" + "t".repeat(100_000) + "\",\"source_agent\":\"a\",\"content\":{}}");
    assertError(huge, 400, "invalid_message", "(100000 characters)");
    assertThat(huge.raw().body()).as("the value is shown by its start, not sent back whole").hasSizeLessThan(1_000);
  }

  @Test
  void textWithALoneSurrogateGets400NotAQuestionMark() throws Exception {
    // JSON's escape can name half of a UTF-16 pair; UTF-8, the wire's encoding, cannot carry it.
    Answer answer = send("POST", "/messages",
        "{\"message_type\":\"system_health\",\"source_agent\":\"a\",\"content\":{\"text\":\"cut \\ud83d here\"}}");

    assertError(answer, 400, "invalid_message", "lone surrogate \\ud83d");
    assertThat(answer.body().get("detail").textValue()).contains("after \"cut \"");

    assertError(send("PUT", "/cache/memory/k", "{\"value\":{\"text\":\"cut \\ud83d here\"}}"),
        400, "invalid_request", "value of key 'k' holds a lone surrogate \\ud83d");
    assertThat(send("PUT", "/cache/memory/k", "{\"value\":\"paired \\ud83d\\ude00\"}").status()).isEqualTo(200);
    assertThat(send("GET", "/cache/memory/k", null).body().get("value").textValue()).isEqualTo("paired \uD83D\uDE00");
  }

  @Test
  void aMessageOverTheSizeLimitGets413OnTheEmbeddedBusAsOnKafka() throws Exception {
    Answer answer = send("POST", "/messages",
        "{\"message_type\":\"system_health\",\"source_agent\":\"a\",\"content\":{\"blob\":\"" + "x".repeat(1_100_000) + "\"}}");

    assertError(answer, 413, "message_too_large", "at most 1048576");
  }

  @Test
  void aTraceparentThatIsNotATraceContextGets400ShowingItsStartOnly() throws Exception {
    String body = "{\"message_type\":\"system_health\",\"source_agent\":\"a\",\"content\":{}}";
    String longTrace = "00-" + "z".repeat(4_000);

    Answer answer = send("POST", "/messages", body, Map.of("traceparent", longTrace));

    assertError(answer, 400, "invalid_request", "traceparent '00-zzz");
    assertThat(answer.body().get("detail").textValue())
        .as("the detail shows the header's start, not its 4,003 characters")
        .hasSizeLessThan(200)
        .contains("4003 characters");
    assertError(send("POST", "/messages", body, Map.of("traceparent", "00-abc")), 400, "invalid_request", "traceparent '00-abc'");
  }

  @Test
  void malformedJsonGets400() throws Exception {
    assertError(send("POST", "/messages", "{\"message_type\": "), 400, "malformed_json", "not valid JSON");
    assertError(send("PUT", "/cache/memory/k", "{value"), 400, "malformed_json", "not valid JSON");
    assertError(send("POST", "/messages", ""), 400, "malformed_json", "empty");
    assertError(send("POST", "/messages",
        "{\"message_type\":\"system_health\",\"source_agent\":\"a\",\"content\":{}} garbage"),
        400, "malformed_json", "not valid JSON");
  }

  @Test
  void aFullBusGets503AndTheCallerCanRetry() throws Exception {
    String body = "{\"message_type\":\"memory_operation\",\"source_agent\":\"a\",\"content\":{}}";
    for (int i = 0; i < 3; i++) {
      assertThat(send("POST", "/messages", body).status()).isEqualTo(202);
    }

    Answer full = send("POST", "/messages", body);

    assertError(full, 503, "unavailable", "message bus is full");
    assertThat(full.raw().headers().firstValue("Retry-After")).isPresent();
  }

  @Test
  void cacheEntriesAreStoredReadDeletedAndCleared() throws Exception {
    Answer stored = send("PUT", "/cache/simulation/config_1", "{\"value\": {\"iterations\": 1000, \"tags\": [\"a\"]}}");
    assertThat(stored.status()).isEqualTo(200);
    send("PUT", "/cache/simulation/config_2", "{\"value\": \"text\", \"ttl\": 60}");

    Answer read = send("GET", "/cache/simulation/config_1", null);
    assertThat(read.status()).isEqualTo(200);
    assertThat(read.body().get("value").toString()).isEqualTo("{\"iterations\":1000,\"tags\":[\"a\"]}");

    Answer deleted = send("DELETE", "/cache/simulation/config_1", null);
    assertThat(deleted.raw().body()).as("fields in the README's order")
        .isEqualTo("{\"namespace\":\"simulation\",\"key\":\"config_1\",\"deleted\":true}");
    assertError(send("GET", "/cache/simulation/config_1", null), 404, "not_found", "config_1");
    Answer longKeyMissing = send("GET", "/cache/simulation/" + "k".repeat(500), null);
    assertError(longKeyMissing, 404, "not_found", "(500 characters)");
    assertThat(longKeyMissing.body().get("detail").textValue()).hasSizeLessThan(200);

    Answer cleared = send("DELETE", "/cache/simulation", null);
    assertThat(cleared.raw().body()).isEqualTo("{\"namespace\":\"simulation\",\"cleared\":1}");
    assertThat(send("GET", "/cache/simulation/config_2", null).status()).isEqualTo(404);
  }

  @Test
  void anEntryAnotherProgramWroteThatIsNotJsonGets502NamingIt() throws Exception {
    cache.put("memory", "from-python", "{\"x\": NaN}");

    assertError(send("GET", "/cache/memory/from-python", null), 502, "corrupt_entry",
        "entry 'from-python' in namespace 'memory' is not JSON");
  }

  /** The in-memory cache, except that reading namespace "overflow" throws a StackOverflowError. */
  private static final class OverflowingCache implements org.nisprotocol.core.Cache {
    private final InMemoryCache delegate = InMemoryCache.create();

    @Override public java.util.Optional<String> get(String namespace, String key) {
      if (namespace.equals("overflow")) {
        throw new StackOverflowError();
      }
      return delegate.get(namespace, key);
    }
    @Override public Map<String, String> getAll(String namespace, java.util.Collection<String> keys) { return delegate.getAll(namespace, keys); }
    @Override public void put(String namespace, String key, String json) { delegate.put(namespace, key, json); }
    @Override public void put(String namespace, String key, String json, Duration ttl) { delegate.put(namespace, key, json, ttl); }
    @Override public boolean putIfAbsent(String namespace, String key, String json, Duration ttl) { return delegate.putIfAbsent(namespace, key, json, ttl); }
    @Override public void putAll(String namespace, Map<String, String> entries) { delegate.putAll(namespace, entries); }
    @Override public void putAll(String namespace, Map<String, String> entries, Duration ttl) { delegate.putAll(namespace, entries, ttl); }
    @Override public Map<String, String> entries(String namespace, int limit) { return delegate.entries(namespace, limit); }
    @Override public boolean delete(String namespace, String key) { return delegate.delete(namespace, key); }
    @Override public long clear(String namespace) { return delegate.clear(namespace); }
    @Override public String name() { return "overflowing"; }
    @Override public void close() { delegate.close(); }
  }

  @Test
  void anErrorOutOfAHandlerGetsAJson500() throws Exception {
    InMemoryMessageBus otherBus = InMemoryMessageBus.create();
    NisServer overflowing = NisServer.start(ServiceConfig.embedded(0), otherBus, new OverflowingCache(), clock);
    try {
      Answer answer = send(overflowing, "GET", "/cache/overflow/k", null, Map.of());

      assertError(answer, 500, "internal_error", "unexpected StackOverflowError");
      assertThat(send(overflowing, "GET", "/health", null, Map.of()).status()).as("still serving").isEqualTo(200);
    } finally {
      overflowing.close();
    }
  }

  @Test
  void aCacheEntryIsGoneAfterItsTtl() throws Exception {
    send("PUT", "/cache/memory/short", "{\"value\": 1, \"ttl\": 1.5}");
    send("PUT", "/cache/system/default", "{\"value\": 2}");

    clock.advance(Duration.ofMillis(1400));
    assertThat(send("GET", "/cache/memory/short", null).status()).isEqualTo(200);
    clock.advance(Duration.ofMillis(200));
    assertError(send("GET", "/cache/memory/short", null), 404, "not_found", "expired");

    clock.advance(Duration.ofSeconds(299));
    assertThat(send("GET", "/cache/system/default", null).status()).as("system namespace lives 300 s").isEqualTo(404);
  }

  @Test
  void badCacheRequestsGet400NamingTheProblem() throws Exception {
    assertError(send("PUT", "/cache/memory/k", "{\"ttl\": 5}"), 400, "invalid_request", "value is required");
    assertError(send("PUT", "/cache/memory/k", "{\"value\": 1, \"ttl\": -5}"), 400, "invalid_request", "-5");
    assertError(send("PUT", "/cache/memory/k", "{\"value\": 1, \"ttl\": \"soon\"}"), 400, "invalid_request", "ttl must be a number");
    assertError(send("PUT", "/cache/memory/k", "[1]"), 400, "invalid_request", "JSON object");
    assertError(send("PUT", "/cache/bad%20space/k", "{\"value\": 1}"), 400, "invalid_request", "bad space");
    assertError(send("PUT", "/cache/memory/k", "{\"value\": 1, \"ttl\": 1e999999999}"), 400, "invalid_request",
        "at most ten years of seconds, got 1E+999999999");
    assertError(send("PUT", "/cache/memory/k", "{\"value\": 1, \"ttl\": 1e-999999999}"), 400, "invalid_request",
        "at least 0.001 seconds, got 1E-999999999");
    Answer longTtl = send("PUT", "/cache/memory/k", "{\"value\": 1, \"ttl\": \"" + "9".repeat(10_000) + "\"}");
    assertError(longTtl, 400, "invalid_request", "(10002 characters)");
    assertThat(longTtl.body().get("detail").textValue()).hasSizeLessThan(200);
  }

  @Test
  void aPathWithATrailingSlashIsNotThePathWithout() throws Exception {
    send("PUT", "/cache/simulation/config_1", "{\"value\": 1}");

    assertError(send("DELETE", "/cache/simulation/", null), 404, "not_found", "/cache/simulation/");

    assertThat(send("GET", "/cache/simulation/config_1", null).status())
        .as("an empty key deletes nothing, not the namespace")
        .isEqualTo(200);
  }

  @Test
  void unknownPathsAndMethodsGetJsonErrors() throws Exception {
    assertError(send("GET", "/no/such/thing", null), 404, "not_found", "/no/such/thing");
    Answer wrongMethod = send("PATCH", "/health", null);
    assertError(wrongMethod, 405, "method_not_allowed", "PATCH is not allowed on /health; it takes GET");
    assertThat(wrongMethod.raw().headers().firstValue("Allow")).hasValueSatisfying(allow -> assertThat(allow).contains("GET", "HEAD"));
    HttpResponse<Void> head = http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/health")).method("HEAD", HttpRequest.BodyPublishers.noBody()).build(),
        HttpResponse.BodyHandlers.discarding());
    assertThat(head.statusCode()).as("HEAD, which Allow names, is answered").isEqualTo(200);
  }

  @Test
  void anOversizedBodyGets413() throws Exception {
    String huge = "{\"value\": \"" + "x".repeat((int) NisServer.MAX_REQUEST_BYTES) + "\"}";

    Answer answer = send("PUT", "/cache/memory/huge", huge);

    assertError(answer, 413, "content_too_large",
        "the request body (" + String.format(Locale.ROOT, "%,d", huge.length()) + " bytes) is over the 2,097,152 bytes");
  }

  @Test
  void anOversizedBodyOfUnknownLengthGets413Too() throws Exception {
    byte[] chunk = "x".repeat(64 * 1024).getBytes(StandardCharsets.UTF_8);
    // A stream of unknown length: sent chunked, with no Content-Length to refuse it by.
    HttpRequest chunked = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/cache/memory/huge"))
        .PUT(HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.SequenceInputStream(
            java.util.Collections.enumeration(java.util.stream.IntStream.range(0, 64)
                .mapToObj(i -> (java.io.InputStream) new java.io.ByteArrayInputStream(chunk)).toList()))))
        .build();
    HttpResponse<String> response = http.send(chunked, HttpResponse.BodyHandlers.ofString());
    JsonNode body = MessageCodec.parse(response.body().getBytes(StandardCharsets.UTF_8));

    assertError(new Answer(response.statusCode(), body, response), 413, "content_too_large",
        "the request body is over the 2,097,152 bytes the service takes");
    assertThat(cache.get("memory", "huge")).isEmpty();
  }

  @Test
  void duringTheShutdownDelayReadinessIs503AndRequestsAreStillServed() throws Exception {
    InMemoryMessageBus ownBus = InMemoryMessageBus.create();
    List<Delivery> received = new CopyOnWriteArrayList<>();
    ownBus.subscribe(SubscriptionSpec.group("analysis_group").withTopics("nis-simulation"), received::add);
    NisServer delayed = NisServer.start(
        ServiceConfig.embedded(0).withShutdownDelay(Duration.ofSeconds(4)), ownBus, InMemoryCache.create(), clock);
    Thread closing = Thread.ofPlatform().start(delayed::close);
    try {
      await().atMost(Duration.ofSeconds(3)).until(() -> send(delayed, "GET", "/health/ready", null, Map.of()).status() == 503);
      Answer late = send(delayed, "POST", "/messages",
          "{\"message_type\": \"simulation_result\", \"source_agent\": \"s\", \"content\": {\"late\": true}}", Map.of());
      assertThat(late.status()).as("a request a load balancer still sends is served").isEqualTo(202);
    } finally {
      closing.join();
    }
    assertThat(received).as("and what it accepted is delivered").hasSize(1);
  }

  @Test
  void readinessFailsOnceShutdownBegins() throws Exception {
    assertThat(send("GET", "/health/ready", null).status()).isEqualTo(200);

    server.beginShutdown();

    assertError(send("GET", "/health/ready", null), 503, "shutting_down", "shutting down");
    assertThat(send("GET", "/health/live", null).status()).isEqualTo(200);
  }
}
