package org.nisprotocol.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.javalin.Javalin;
import io.javalin.http.Context;
import io.javalin.http.HttpResponseException;
import io.javalin.http.HttpStatus;
import io.javalin.http.MethodNotAllowedResponse;
import io.javalin.json.JavalinJackson;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.locks.ReentrantLock;
import org.nisprotocol.agents.AgentRuntime;
import org.nisprotocol.agents.CoordinatorConfig;
import org.nisprotocol.agents.InfrastructureCoordinator;
import org.nisprotocol.agents.ScenarioSimulatorAgent;
import org.nisprotocol.agents.ScenarioSimulatorService;
import org.nisprotocol.agents.SelfAuditEngine;
import org.nisprotocol.agents.SendResult;
import org.nisprotocol.core.BackendRefusedException;
import org.nisprotocol.core.Cache;
import org.nisprotocol.core.ClosedException;
import org.nisprotocol.core.ErrorText;
import org.nisprotocol.core.InvalidMessageException;
import org.nisprotocol.core.MalformedJsonException;
import org.nisprotocol.core.MessageBus;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.MessageTooLargeException;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.RetriableException;
import org.nisprotocol.core.Utf8Text;
import org.nisprotocol.core.ValidationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The NIS HTTP service: health, messages and cache over the ports it is given. Handlers run on
 * virtual threads. Every error is answered with a JSON body {@code {"error", "detail"}}.
 *
 * <p>Start with {@link #start(ServiceConfig, MessageBus, Cache)}; {@link #close()} answers
 * readiness with 503 (serving on for the configured shutdown delay), stops taking requests, then
 * closes the bus (delivering what it accepted, to the agents too), the agents and the cache.
 */
public final class NisServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(NisServer.class);
  /** Largest request body accepted; bigger ones get 413. */
  static final long MAX_REQUEST_BYTES = 2L * 1024 * 1024;

  private static final com.fasterxml.jackson.core.type.TypeReference<Map<String, Object>> JSON_OBJECT =
      new com.fasterxml.jackson.core.type.TypeReference<>() {};
  private static final java.util.regex.Pattern TRACEPARENT =
      java.util.regex.Pattern.compile("[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}");

  private final MessageBus bus;
  private final Cache cache;
  private final MessageCodec codec;
  private final ScheduledExecutorService scheduler;
  private final InfrastructureCoordinator coordinator;
  private final AgentRuntime agents;
  private final ScenarioSimulatorService simulations;
  private final SelfAuditEngine auditEngine;
  private final InstantSource clock;
  private final Instant startedAt;
  private final String version = readVersion();
  private final ObjectMapper json = MessageCodec.mapper();
  private volatile boolean shuttingDown;
  private final Duration shutdownDelay;
  private final ReentrantLock closing = new ReentrantLock();
  private Javalin app;
  /** Jetty's idle timeout of a connection, as its connectors have it. */
  private volatile Duration idleTimeout = Duration.ofSeconds(30);

  private NisServer(ServiceConfig config, MessageBus bus, Cache cache, InstantSource clock) {
    this.shutdownDelay = config.shutdownDelay();
    this.bus = bus;
    this.cache = cache;
    this.clock = clock;
    this.codec = MessageCodec.create(clock);
    this.startedAt = clock.instant();
    this.scheduler =
        Executors.newSingleThreadScheduledExecutor(
            runnable -> Thread.ofPlatform().daemon().name("nis-scheduler").unstarted(runnable));
    this.coordinator =
        InfrastructureCoordinator.create(
            CoordinatorConfig.defaults()
                .withSelfAuditEnabled(config.selfAudit())
                .withHealthCheckInterval(config.healthCheckInterval()),
            bus,
            cache,
            clock,
            scheduler);
    this.auditEngine = coordinator.selfAudit().orElseGet(SelfAuditEngine::create);
    this.simulations = ScenarioSimulatorService.create(cache, bus);
    this.agents = AgentRuntime.create(coordinator, scheduler, AgentRuntime.newInstanceId());
    agents.start(new ScenarioSimulatorAgent(simulations));
  }

  /** Starts serving on the configured host and port with the given backends. */
  public static NisServer start(ServiceConfig config, MessageBus bus, Cache cache) {
    return start(config, bus, cache, InstantSource.system());
  }

  static NisServer start(ServiceConfig config, MessageBus bus, Cache cache, InstantSource clock) {
    NisServer server =
        new NisServer(
            config, Objects.requireNonNull(bus, "bus"), Objects.requireNonNull(cache, "cache"), clock);
    try {
      server.app = server.createApp(config);
      server.app.start();
    } catch (RuntimeException | Error e) {
      // Not serving (the port is taken, say): what this server started must not keep the process
      // alive. The backends stay open: they belong to the caller.
      try {
        server.closeOwnParts();
      } catch (RuntimeException | Error closing) {
        e.addSuppressed(closing);
      }
      throw e;
    }
    return server;
  }

  /**
   * Sets how long a connection may send nothing (Jetty's idle timeout, 30 s unless set here) for
   * connections accepted from now on; a body that stops coming for that long gets a 408 naming it.
   */
  void idleTimeout(Duration timeout) {
    for (var connector : app.jettyServer().server().getConnectors()) {
      ((org.eclipse.jetty.server.AbstractConnector) connector).setIdleTimeout(timeout.toMillis());
    }
    idleTimeout = timeout;
  }

  /** The port the service listens on (the chosen one when configured with 0). */
  public int port() {
    return app.port();
  }

  /** From now on readiness answers 503, so load balancers stop sending traffic here. */
  void beginShutdown() {
    shuttingDown = true;
  }

  /**
   * Answers readiness with 503 and goes on serving for the configured shutdown delay, so that load
   * balancers stop sending requests first; then stops taking requests and closes the bus, which
   * lets the agents finish what it accepted for them (their answers still go out) within its one
   * shutdown window; then the agents, and last the cache, which handlers use until the bus is closed.
   */
  @Override
  public void close() {
    closing.lock(); // a second close() waits for the first, delay included
    try {
      boolean begunBefore = shuttingDown;
      beginShutdown();
      if (!begunBefore) {
        awaitShutdownDelay();
      }
      closeInOrder();
    } finally {
      closing.unlock();
    }
  }

  private void closeInOrder() {
    try {
      stopServing();
    } finally {
      try {
        bus.close();
      } finally {
        try {
          closeAgents();
        } finally {
          cache.close();
        }
      }
    }
  }

  /** Stops the HTTP server, the agents, the coordinator and the scheduler: all but the backends. */
  private void closeOwnParts() {
    try {
      stopServing();
    } finally {
      closeAgents();
    }
  }

  /** Serves on, with readiness at 503, for the shutdown delay (an interrupt ends it early). */
  private void awaitShutdownDelay() {
    if (shutdownDelay.isZero() || app == null) {
      return;
    }
    log.info("readiness answers 503; serving {} s more before stopping", shutdownDelay.toSeconds());
    try {
      Thread.sleep(shutdownDelay);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void stopServing() {
    if (app != null) {
      app.stop();
    }
  }

  /** Closes the agents (their subscriptions, their directory entries), the coordinator and the scheduler. */
  private void closeAgents() {
    try {
      agents.close();
    } finally {
      coordinator.close();
      scheduler.shutdownNow();
    }
  }

  private Javalin createApp(ServiceConfig config) {
    return Javalin.create(
        javalin -> {
          javalin.jetty.host = config.host();
          javalin.jetty.port = config.port();
          javalin.jetty.modifyServer(server -> server.setErrorHandler(new JsonErrorHandler(json)));
          javalin.concurrency.useVirtualThreads = true;
          javalin.startup.showJavalinBanner = false;
          javalin.startup.showOldJavalinVersionWarning = false;
          javalin.http.maxRequestSize = MAX_REQUEST_BYTES;
          javalin.http.defaultContentType = "application/json";
          javalin.http.prefer405over404 = true; // a known path with another method: 405, naming those it takes
          // A path is taken as written: DELETE /cache/ns/ (a client's empty key) is not DELETE /cache/ns.
          javalin.router.ignoreTrailingSlashes = false;
          javalin.jsonMapper(new JavalinJackson(json, true));

          // HEAD runs the GET handler (Jetty leaves the body out): else Javalin answers it 200 unasked,
          // where GET would say 404, or 503 from readiness while shutting down.
          Map<String, io.javalin.http.Handler> reads = new LinkedHashMap<>();
          reads.put("/health", this::health);
          reads.put("/health/live", ctx -> ctx.json(Map.of("status", "alive")));
          reads.put("/health/ready", this::ready);
          reads.put("/cache/{namespace}/{key}", this::getCacheEntry);
          reads.put("/agents", this::listAgents);
          reads.put("/infrastructure/status", ctx -> ctx.json(coordinator.comprehensiveStatus()));
          reads.forEach((path, handler) -> {
            javalin.routes.get(path, handler);
            javalin.routes.head(path, handler);
          });
          javalin.routes.post("/messages", this::publish);
          javalin.routes.put("/cache/{namespace}/{key}", this::putCacheEntry);
          javalin.routes.delete("/cache/{namespace}/{key}", this::deleteCacheEntry);
          javalin.routes.delete("/cache/{namespace}", this::clearNamespace);
          javalin.routes.post("/audit", this::audit);
          javalin.routes.post("/simulations", this::simulate);

          javalin.routes.exception(ApiError.Failure.class, (e, ctx) -> answer(ctx, e.error));
          javalin.routes.exception(
              HttpResponseException.class, (e, ctx) -> answer(ctx, errorFor(e, ctx)));
          javalin.routes.exception(Exception.class, (e, ctx) -> answer(ctx, errorFor(e, ctx)));
          javalin.router.javaLangErrorHandler(this::answerError);
        });
  }

  /** An Error out of a handler (a StackOverflowError, say): a JSON 500 as for any unexpected failure. */
  private void answerError(jakarta.servlet.http.HttpServletResponse response, Error error) {
    log.error("unexpected error answering a request", error);
    ApiError answer = unexpected(error);
    try {
      response.setStatus(answer.status());
      response.setContentType("application/json");
      response.getOutputStream().write(json.writeValueAsBytes(answer.body()));
    } catch (IOException | IllegalStateException e) {
      log.warn("could not answer the error: {}", e.toString());
    }
  }

  /**
   * The backends' health as the coordinator last checked it (at start and every health-check
   * interval; the worst of them is the status), answered with 200 whatever it is: with Kafka down
   * this instance still takes messages (into its spool), so it stays in service; readiness says
   * when it should not get traffic.
   */
  private void health(Context ctx) {
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("status", coordinator.overallHealth().wireName());
    body.put("version", version);
    body.put("uptime_seconds", Duration.between(startedAt, clock.instant()).toMillis() / 1000.0);
    body.put("backends", Map.of("message_bus", bus.name(), "cache", cache.name()));
    Map<String, String> services = new LinkedHashMap<>();
    coordinator.serviceHealth().forEach((service, health) -> services.put(service, health.wireName()));
    body.put("services", services);
    ctx.json(body);
  }

  private void ready(Context ctx) {
    if (shuttingDown) {
      answer(ctx, ApiError.of(503, "shutting_down", "the service is shutting down"));
      return;
    }
    ctx.json(Map.of("status", "ready"));
  }

  private void publish(Context ctx) {
    NisMessage message = codec.decode(bodyBytes(ctx));
    SendResult result = coordinator.sendMessage(message, traceHeaders(ctx));
    Map<String, Object> body = new LinkedHashMap<>(result.toJson());
    body.put("message_type", message.messageType().wireName());
    body.put("priority", message.priority().wireName());
    body.put("timestamp", epochSeconds(message.timestamp()));
    ctx.status(HttpStatus.ACCEPTED).json(body);
  }

  private void audit(Context ctx) {
    JsonNode body = requestBody(ctx);
    JsonNode text = body.path("text");
    JsonNode content = body.path("content");
    if (text.isTextual() == content.isObject()) {
      throw ApiError.badRequest(
          "give either \"text\": a string, or \"content\": a JSON object (not both, not neither)");
    }
    ctx.json(
        text.isTextual()
            ? auditEngine.reportJson(text.textValue())
            : auditEngine.reportJson(json.convertValue(content, JSON_OBJECT)));
  }

  private void simulate(Context ctx) {
    JsonNode body = requestBody(ctx);
    if (!body.isObject()) {
      throw ApiError.badRequest("body must be a JSON object {\"scenario_id\", \"scenario_type\", \"parameters\"}");
    }
    ctx.json(simulations.simulateJson(json.convertValue(body, JSON_OBJECT)));
  }

  private void listAgents(Context ctx) {
    var directory = agents.directory();
    Map<String, Object> answer = new LinkedHashMap<>();
    answer.put("agents", directory);
    answer.put("count", directory.size());
    ctx.json(answer);
  }

  /**
   * The request's JSON body (of an audit or a simulation), if all its text has a UTF-8 form: the
   * answer would carry a lone surrogate as '?', and what is computed from it (an audit, a
   * simulation's cache key) would be of something the client did not send.
   *
   * @throws ValidationException naming where the body holds a lone surrogate
   */
  private JsonNode requestBody(Context ctx) {
    JsonNode body = MessageCodec.parse(bodyBytes(ctx));
    requireUtf8(body, "");
    return body;
  }

  private static void requireUtf8(JsonNode node, String path) {
    if (node.isTextual()) {
      requireUtf8(node.textValue(), path.isEmpty() ? "the body" : ErrorText.quoted(path));
    } else if (node.isArray()) {
      for (int i = 0; i < node.size(); i++) {
        requireUtf8(node.get(i), path + "/" + i);
      }
    } else if (node.isObject()) {
      for (var field : node.properties()) {
        requireUtf8(field.getKey(), "a field name in " + (path.isEmpty() ? "the body" : ErrorText.quoted(path)));
        requireUtf8(field.getValue(), path.isEmpty() ? field.getKey() : path + "/" + field.getKey());
      }
    }
  }

  private static void requireUtf8(String text, String where) {
    int lone = Utf8Text.loneSurrogateIndex(text);
    if (lone >= 0) {
      throw new ValidationException(
          where + " holds " + Utf8Text.describeLoneSurrogate(text, lone) + ": UTF-8 cannot carry it");
    }
  }

  /** A W3C traceparent on the request travels with the message. */
  private static Map<String, String> traceHeaders(Context ctx) {
    String traceparent = ctx.header("traceparent");
    if (traceparent == null) {
      return Map.of();
    }
    if (!TRACEPARENT.matcher(traceparent).matches()) {
      throw ApiError.badRequest(
          "traceparent " + ErrorText.quoted(traceparent) + " is not a W3C trace context (00-<32 hex>-<16 hex>-<2 hex>)");
    }
    return Map.of("traceparent", traceparent);
  }

  private void putCacheEntry(Context ctx) {
    String namespace = ctx.pathParam("namespace");
    String key = ctx.pathParam("key");
    JsonNode body = MessageCodec.parse(bodyBytes(ctx)); // the cache names a lone surrogate in the value
    if (!body.isObject()) {
      throw ApiError.badRequest("body must be a JSON object {\"value\": ..., \"ttl\": seconds}");
    }
    if (!body.has("value")) {
      throw ApiError.badRequest("value is required (any JSON)");
    }
    String value = writeJson(body.get("value")); // one with a lone surrogate the cache refuses (400)
    JsonNode ttlNode = body.get("ttl");
    Duration ttl;
    if (ttlNode == null || ttlNode.isNull()) {
      cache.put(namespace, key, value);
      ttl = null;
    } else {
      ttl = ttlOf(ttlNode);
      cache.put(namespace, key, value, ttl);
    }
    Map<String, Object> answer = new LinkedHashMap<>();
    answer.put("namespace", namespace);
    answer.put("key", key);
    answer.put("stored", true);
    answer.put("ttl", ttl == null ? null : ttl.toMillis() / 1000.0);
    ctx.json(answer);
  }

  private void getCacheEntry(Context ctx) {
    String namespace = ctx.pathParam("namespace");
    String key = ctx.pathParam("key");
    String value =
        cache
            .get(namespace, key)
            .orElseThrow(
                () ->
                    new ApiError.Failure(
                        ApiError.of(
                            404,
                            "not_found",
                            "no entry " + ErrorText.quoted(key) + " in namespace '" + namespace
                                + "' (never stored, deleted or expired)")));
    Map<String, Object> answer = new LinkedHashMap<>();
    answer.put("namespace", namespace);
    answer.put("key", key);
    answer.put("value", readEntry(namespace, key, value));
    ctx.json(answer);
  }

  private void deleteCacheEntry(Context ctx) {
    String namespace = ctx.pathParam("namespace");
    String key = ctx.pathParam("key");
    boolean deleted = cache.delete(namespace, key);
    Map<String, Object> answer = new LinkedHashMap<>();
    answer.put("namespace", namespace);
    answer.put("key", key);
    answer.put("deleted", deleted);
    ctx.json(answer);
  }

  private void clearNamespace(Context ctx) {
    String namespace = ctx.pathParam("namespace");
    long cleared = cache.clear(namespace);
    Map<String, Object> answer = new LinkedHashMap<>();
    answer.put("namespace", namespace);
    answer.put("cleared", cleared);
    ctx.json(answer);
  }

  private static Duration ttlOf(JsonNode ttlNode) {
    if (!ttlNode.isNumber()) {
      throw ApiError.badRequest("ttl must be a number of seconds, got " + ErrorText.quoted(ttlNode.toString()));
    }
    BigDecimal seconds = ttlNode.decimalValue();
    if (seconds.signum() <= 0 || seconds.compareTo(BigDecimal.valueOf(10L * 365 * 24 * 3600)) > 0) {
      throw ApiError.badRequest(
          "ttl must be more than 0 and at most ten years of seconds, got " + seconds);
    }
    long millis = seconds.movePointRight(3).longValue();
    if (millis < 1) {
      throw ApiError.badRequest("ttl must be at least 0.001 seconds, got " + seconds);
    }
    return Duration.ofMillis(millis);
  }

  private ApiError errorFor(Exception e, Context ctx) {
    if (e instanceof MessageTooLargeException tooLarge) {
      return ApiError.of(413, "message_too_large", tooLarge.getMessage());
    }
    if (e instanceof MalformedJsonException malformed) {
      return new ApiError(400, "malformed_json", malformed.getMessage(), malformed.problems());
    }
    if (e instanceof InvalidMessageException invalid) {
      return new ApiError(400, "invalid_message", invalid.getMessage(), invalid.problems());
    }
    if (e instanceof ValidationException invalid) {
      return new ApiError(400, "invalid_request", invalid.getMessage(), invalid.problems());
    }
    if (e instanceof ClosedException closed) {
      return ApiError.of(503, "shutting_down", closed.getMessage());
    }
    if (e instanceof RetriableException retriable) {
      ctx.header("Retry-After", "1");
      return ApiError.of(503, "unavailable", retriable.getMessage());
    }
    if (e instanceof BackendRefusedException refused) {
      return ApiError.of(502, "backend_refused", refused.getMessage());
    }
    if (e instanceof MethodNotAllowedResponse notAllowed) {
      // The methods the path takes, in Javalin's details under one key or another; HEAD too
      // where GET is (Javalin answers it).
      String methods = notAllowed.getDetails().values().stream().findFirst().orElse("");
      if (methods.matches("(.*, )?GET(, .*)?") && !methods.contains("HEAD")) {
        methods += ", HEAD";
      }
      String notAllowedText = ctx.method() + " is not allowed on " + ctx.path();
      if (methods.isBlank()) {
        return ApiError.of(405, "method_not_allowed", notAllowedText);
      }
      ctx.header("Allow", methods);
      return ApiError.of(405, "method_not_allowed", notAllowedText + "; it takes " + methods);
    }
    if (e instanceof HttpResponseException http && http.getStatus() == 413) {
      long length = ctx.req().getContentLengthLong();
      return ApiError.of(413, "content_too_large", String.format(Locale.ROOT,
          "the request body%s is over the %,d bytes the service takes",
          length > 0 ? String.format(Locale.ROOT, " (%,d bytes)", length) : "", MAX_REQUEST_BYTES));
    }
    if (e instanceof HttpResponseException http) {
      return ApiError.of(http.getStatus(), ApiError.codeOf(http.getStatus()), http.getMessage());
    }
    log.error("unexpected error on {} {}", ctx.method(), ctx.path(), e);
    return unexpected(e);
  }

  /**
   * The request's body. One Jetty could not read as the request announced it (cut short, badly
   * chunked) is a 4xx saying why, and one that stops coming (nothing for the connector's idle
   * timeout) a 408: left to Javalin, the read's timeout got a 408 without a body.
   */
  private byte[] bodyBytes(Context ctx) {
    try {
      return ctx.bodyAsBytes();
    } catch (Exception e) { // Kotlin's: an IOException, not declared
      for (Throwable cause = e; cause != null; cause = cause.getCause() == cause ? null : cause.getCause()) {
        if (cause instanceof java.util.concurrent.TimeoutException) {
          throw new ApiError.Failure(ApiError.of(408, "request_timeout",
              "the request body stopped coming before it was whole: nothing arrived for the server's idle timeout ("
                  + idleTimeout.toMillis() / 1000.0 + " s)"));
        }
        if (cause instanceof org.eclipse.jetty.http.HttpException refused
            && refused.getCode() >= 400 && refused.getCode() < 500) {
          String why = cause instanceof org.eclipse.jetty.io.EofException
              ? "it ended before it was whole (fewer bytes than its Content-Length, or chunks cut short or not"
                  + " valid HTTP/1.1)"
              : refused.getReason() == null || refused.getReason().isBlank() ? "it is not valid HTTP/1.1" : refused.getReason();
          throw new ApiError.Failure(
              ApiError.of(refused.getCode(), ApiError.codeOf(refused.getCode()), "the request body could not be read: " + why));
        }
      }
      throw e;
    }
  }

  /** The 500 of a failure the service did not expect; its cause goes to the log, not to the client. */
  private static ApiError unexpected(Throwable failure) {
    return ApiError.of(
        500, "internal_error", "unexpected " + failure.getClass().getSimpleName() + "; see the service log");
  }

  private static void answer(Context ctx, ApiError error) {
    ctx.status(error.status()).json(error.body());
  }

  private String writeJson(JsonNode node) {
    try {
      return json.writeValueAsString(node);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A cache entry's JSON; one that is not (written by another program, say) is a 502 naming it. */
  private JsonNode readEntry(String namespace, String key, String text) {
    try {
      return MessageCodec.parse(text.getBytes(StandardCharsets.UTF_8));
    } catch (MalformedJsonException e) {
      throw new ApiError.Failure(ApiError.of(502, "corrupt_entry",
          "entry " + ErrorText.quoted(key) + " in namespace '" + namespace + "' is not JSON (written by another program?): "
              + e.getMessage()));
    }
  }

  private static BigDecimal epochSeconds(Instant instant) {
    return BigDecimal.valueOf(instant.getEpochSecond())
        .add(BigDecimal.valueOf(instant.getNano() / 1_000, 6));
  }

  private static String readVersion() {
    try (InputStream in = NisServer.class.getResourceAsStream("version.properties")) {
      Properties properties = new Properties();
      if (in != null) {
        properties.load(in);
      }
      return properties.getProperty("version", "unknown");
    } catch (IOException e) {
      return "unknown";
    }
  }
}
