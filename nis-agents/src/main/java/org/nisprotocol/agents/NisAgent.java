package org.nisprotocol.agents;

import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.MessagePriority;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisException;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.RetryPolicy;
import org.nisprotocol.core.Subscription;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.core.ValidationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The base of every agent: extend it, say which message types it handles and how.
 *
 * <pre>{@code
 * class AnalysisAgent extends NisAgent {
 *   AnalysisAgent() { super(AgentConfiguration.of("analysis_agent", "analysis")); }
 *   protected Set<MessageType> subscriptions() { return Set.of(MessageType.SIMULATION_RESULT); }
 *   protected void handleMessage(NisMessage message) { ... sendMessage(...); cacheData(...); }
 * }
 * }</pre>
 *
 * <p>Lifecycle: initializing → ready ⇄ processing → degraded (after {@value #DEGRADED_AFTER}
 * failures in a row, back to ready on a success) → shutdown; error when {@link #initialize()}
 * failed. An agent receives the messages of its types that name it or nobody as target_agent, in
 * its own consumer group (its agent_id), so instances of one agent share the work. Each message is
 * handled on a virtual thread within the limits of its {@link AgentConfiguration}: at most
 * maxConcurrentTasks at once (a handler that overran processingTimeout and ignores its interrupt
 * still counts until it returns), processingTimeout each, maxRetries in-process retries; after
 * that the bus redelivers and finally dead-letters it. An interrupt (the bus stopping) ends the
 * retries at once and is not counted as a failure.
 *
 * <p>Request/reply: {@link #request} sends a message whose correlation_id is its own id and
 * completes when an agent_coordination reply with that correlation_id arrives; {@link #reply}
 * sends one, with the header {@value #REPLY_HEADER} naming the correlation_id it answers. Replies
 * are never passed to {@link #handleMessage}: one that answers a request of another instance, or
 * one that timed out, is dropped. A message whose correlation_id a client chose for tracing is no
 * reply (it has no such header) and is handled as any other. An agent may send a request to
 * itself. Replies reach the instance that asked, however many instances of the agent run: each
 * agent object has a subscription of its own for them (group {@code <agent_id>.replies.<uuid>}, starting at the end of the topic), opened at start;
 * the group is temporary: the bus forgets it (Kafka: deletes it) when the agent closes.
 */
public abstract class NisAgent implements AutoCloseable {
  static final int DEGRADED_AFTER = 3;
  /** The transport header a reply carries, naming the correlation_id it answers. */
  public static final String REPLY_HEADER = "nis.reply_to";
  private static final Logger log = LoggerFactory.getLogger(NisAgent.class);

  private final AgentConfiguration config;
  private final AtomicReference<AgentState> state = new AtomicReference<>(AgentState.INITIALIZING);
  private final Map<String, CompletableFuture<NisMessage>> pendingReplies = new ConcurrentHashMap<>();
  private final AtomicInteger inFlight = new AtomicInteger();
  private final AtomicInteger failuresInARow = new AtomicInteger();
  private final AtomicLong processed = new AtomicLong();
  private final AtomicLong failed = new AtomicLong();
  private final AtomicLong processingNanos = new AtomicLong();
  private final AtomicReference<Instant> lastActivity = new AtomicReference<>();
  private final Semaphore tasks;
  private volatile InfrastructureCoordinator coordinator;
  private volatile Subscription subscription;
  private volatile Subscription replies; // this instance's own, opened at start

  protected NisAgent(AgentConfiguration config) {
    this.config = Objects.requireNonNull(config, "config");
    this.tasks = new Semaphore(config.maxConcurrentTasks());
  }

  // ---- what an agent says about itself ----

  /** Agent-specific start-up; an exception puts the agent in the error state. */
  protected void initialize() throws Exception {}

  /** The message types this agent handles. */
  protected abstract Set<MessageType> subscriptions();

  /** Handles one message; throwing counts as a failure (retried, then redelivered). */
  protected abstract void handleMessage(NisMessage message) throws Exception;

  /** Answers a direct request (e.g. from an HTTP call); the default knows no action. */
  public Map<String, Object> processRequest(Map<String, Object> request) {
    return Map.of("success", false, "error", "unknown action '" + request.get("action") + "'");
  }

  /** Agent-specific shutdown. */
  protected void shutdown() throws Exception {}

  // ---- lifecycle (driven by the runtime) ----

  /** Starts the agent on the coordinator: initializes it and subscribes to its types. */
  public final void start(InfrastructureCoordinator coordinator) {
    this.coordinator = Objects.requireNonNull(coordinator, "coordinator");
    state.set(AgentState.INITIALIZING);
    try {
      initialize();
    } catch (Exception e) {
      state.set(AgentState.ERROR);
      log.error("agent {} failed to initialize", config.agentId(), e);
      return;
    }
    if (config.enableMessaging()) {
      MessageType[] types =
          java.util.stream.Stream.concat(subscriptions().stream(), java.util.stream.Stream.of(MessageType.AGENT_COORDINATION))
              .distinct()
              .toArray(MessageType[]::new);
      subscription =
          coordinator.subscribe(SubscriptionSpec.group(config.agentId()).withMessageTypes(types), this::onDelivery);
      try {
        replies = coordinator.subscribe(
            SubscriptionSpec.group(config.agentId() + ".replies." + UUID.randomUUID())
                .withMessageTypes(MessageType.AGENT_COORDINATION)
                .startingAtEnd()
                .temporary(),
            this::onReply);
      } catch (RuntimeException e) {
        subscription.close(); // not left receiving for an agent that did not start
        throw e;
      }
    }
    state.set(AgentState.READY);
  }

  /** Stops receiving, fails pending requests, runs {@link #shutdown()}. */
  @Override
  public final void close() {
    if (state.getAndSet(AgentState.SHUTDOWN) == AgentState.SHUTDOWN) {
      return;
    }
    if (subscription != null) {
      subscription.close();
    }
    if (replies != null) {
      replies.close();
    }
    pendingReplies.values().forEach(f -> f.completeExceptionally(new NisException("agent " + config.agentId() + " shut down")));
    try {
      shutdown();
    } catch (Exception e) {
      log.warn("agent {} shutdown: {}", config.agentId(), e.toString());
    }
  }

  public AgentConfiguration configuration() {
    return config;
  }

  public String agentId() {
    return config.agentId();
  }

  public AgentState state() {
    return state.get();
  }

  /** Health and metrics: state, processed, failed, in_flight, avg_processing_ms, last_activity. */
  public Map<String, Object> health() {
    long done = processed.get() + failed.get();
    Map<String, Object> health = new LinkedHashMap<>();
    health.put("agent_id", config.agentId());
    health.put("agent_type", config.agentType());
    health.put("state", state.get().wireName());
    health.put("processed", processed.get());
    health.put("failed", failed.get());
    health.put("in_flight", inFlight.get());
    health.put("avg_processing_ms", done == 0 ? 0.0 : processingNanos.get() / 1e6 / done);
    health.put("last_activity", Optional.ofNullable(lastActivity.get()).map(EpochSeconds::of).orElse(null));
    return health;
  }

  /** The message types this agent receives, as wire names. */
  public List<String> subscribedTypes() {
    return subscriptions().stream().map(MessageType::wireName).sorted().toList();
  }

  // ---- helpers for subclasses ----

  /** Sends a message from this agent; the coordinator audits it when self-audit is on. */
  protected SendResult sendMessage(MessageType type, Map<String, ?> content, Optional<String> targetAgent, MessagePriority priority) {
    NisMessage.Builder builder = NisMessage.builder(type, config.agentId()).content(content).priority(priority);
    targetAgent.ifPresent(builder::targetAgent);
    return send(builder.build());
  }

  /** Sends a message of the type to nobody in particular, normal priority. */
  protected SendResult sendMessage(MessageType type, Map<String, ?> content) {
    return sendMessage(type, content, Optional.empty(), MessagePriority.NORMAL);
  }

  private SendResult send(NisMessage message) {
    return send(message, Map.of());
  }

  private SendResult send(NisMessage message, Map<String, String> headers) {
    requireStarted();
    return config.enableSelfAudit()
        ? coordinator.sendMessage(message, headers)
        : coordinator.sendUnaudited(message, headers);
  }

  /** Caches a value under this agent's key, for the given time. */
  protected void cacheData(String key, Object value, Duration ttl) {
    requireStarted();
    requireCaching();
    coordinator.cacheData(key, value, config.agentId(), ttl);
  }

  /** What this agent cached under the key. */
  protected Optional<Object> getCachedData(String key) {
    requireStarted();
    requireCaching();
    return coordinator.getCachedData(key, config.agentId());
  }

  /**
   * Sends a request to another agent and completes with its reply, or fails with a {@link
   * TimeoutException} after the timeout.
   */
  public CompletableFuture<NisMessage> request(String targetAgent, MessageType type, Map<String, ?> content, Duration timeout) {
    requireStarted();
    if (replies == null) {
      return CompletableFuture.failedFuture(new IllegalStateException(
          "agent " + config.agentId() + " receives no replies: "
              + (state.get() == AgentState.ERROR ? "it failed to initialize" : "its messaging is disabled")));
    }
    NisMessage.Builder builder = NisMessage.builder(type, config.agentId()).targetAgent(targetAgent).content(content);
    NisMessage message = builder.build();
    NisMessage withCorrelation = message.toBuilder().correlationId(message.messageId()).build();
    CompletableFuture<NisMessage> reply = new CompletableFuture<>();
    pendingReplies.put(withCorrelation.messageId(), reply);
    reply.whenComplete((r, e) -> pendingReplies.remove(withCorrelation.messageId()));
    try {
      send(withCorrelation);
    } catch (RuntimeException e) {
      reply.completeExceptionally(e);
      return reply;
    }
    return reply.orTimeout(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  /**
   * Replies through this object's own subscription: the agent's group is shared by its instances
   * (on every instance of the service), so a reply that goes through it reaches one of them, often
   * not the one that asked. This group is this object's alone and starts at the end of the topic,
   * so it gets every reply sent once the agent started and reads nothing older.
   */
  private void onReply(Delivery delivery) {
    NisMessage message = delivery.message();
    if (message.targetAgent().filter(config.agentId()::equals).isPresent()) {
      answeredRequest(message).ifPresent(pending -> pending.complete(message));
    }
  }

  /**
   * The pending request of this object the message answers: agent_coordination whose correlation_id
   * is that of a request, and not the request itself (whose message_id it is).
   */
  private Optional<CompletableFuture<NisMessage>> answeredRequest(NisMessage message) {
    if (message.messageType() != MessageType.AGENT_COORDINATION) {
      return Optional.empty();
    }
    return message.correlationId()
        .filter(id -> !id.equals(message.messageId()))
        .map(pendingReplies::get);
  }

  /** Whether a delivery is a reply sent by {@link #reply} (to any instance). */
  private static boolean isReply(Delivery delivery) {
    String answers = delivery.headers().get(REPLY_HEADER);
    return answers != null && delivery.message().correlationId().filter(answers::equals).isPresent();
  }

  /** Replies to a request: an agent_coordination message to its sender with its correlation_id. */
  protected SendResult reply(NisMessage request, Map<String, ?> content) {
    String correlation =
        request.correlationId().orElseThrow(() -> new ValidationException("message " + request.messageId() + " has no correlation_id to reply to"));
    return send(
        NisMessage.builder(MessageType.AGENT_COORDINATION, config.agentId())
            .targetAgent(request.sourceAgent())
            .correlationId(correlation)
            .priority(request.priority())
            .content(content)
            .build(),
        Map.of(REPLY_HEADER, correlation));
  }

  // ---- delivery ----

  private void onDelivery(Delivery delivery) throws Exception {
    NisMessage message = delivery.message();
    if (message.targetAgent().isPresent() && !message.targetAgent().get().equals(config.agentId())) {
      return; // addressed to another agent
    }
    if (answeredRequest(message).isPresent() || isReply(delivery)) {
      return; // the instance that asked has it through its own subscription (onReply)
    }
    if (!subscriptions().contains(message.messageType())) {
      return; // agent_coordination traffic the agent did not ask for
    }
    AgentState current = state.get();
    if (current == AgentState.SHUTDOWN || current == AgentState.ERROR) {
      throw new NisException("agent " + config.agentId() + " is " + current.wireName());
    }
    handleWithRetries(message);
  }

  private void handleWithRetries(NisMessage message) throws Exception {
    RetryPolicy retries = new RetryPolicy(config.maxRetries() + 1, Duration.ofMillis(100), Duration.ofSeconds(5), 0.5);
    for (int attempt = 1; ; attempt++) {
      // A task slot for each attempt, given back when its handler returns: one that overran its
      // time and ignores the interrupt keeps its slot, so a retry cannot run past the limit.
      if (!tasks.tryAcquire(config.processingTimeout().toMillis(), TimeUnit.MILLISECONDS)) {
        throw new NisException("agent " + config.agentId() + " has " + config.maxConcurrentTasks() + " tasks running; try later");
      }
      try {
        handleOnce(message);
        return;
      } catch (InterruptedException e) {
        throw e; // the bus is stopping: no retry
      } catch (Exception e) {
        if (attempt >= retries.maxAttempts()) {
          throw e;
        }
        Thread.sleep(retries.delayBefore(attempt, ThreadLocalRandom.current().nextDouble()));
      }
    }
  }

  /** One attempt, holding a task slot that its handler gives back when it returns. */
  private void handleOnce(NisMessage message) throws Exception {
    inFlight.incrementAndGet();
    state.compareAndSet(AgentState.READY, AgentState.PROCESSING);
    long start = System.nanoTime();
    try {
      try {
        Deadlines.callWithin(
            config.processingTimeout(),
            () -> {
              try {
                handleMessage(message);
                return null;
              } finally {
                tasks.release();
              }
            });
      } catch (TimeoutException e) {
        throw new NisException("agent " + config.agentId() + " took longer than " + config.processingTimeout() + " on " + message.messageId());
      }
      processed.incrementAndGet();
      failuresInARow.set(0);
      state.compareAndSet(AgentState.DEGRADED, AgentState.READY);
    } catch (InterruptedException e) {
      throw e; // stopped, not failed
    } catch (Exception e) {
      failed.incrementAndGet();
      if (failuresInARow.incrementAndGet() >= DEGRADED_AFTER) {
        state.compareAndSet(AgentState.PROCESSING, AgentState.DEGRADED);
        state.compareAndSet(AgentState.READY, AgentState.DEGRADED);
      }
      throw e;
    } finally {
      processingNanos.addAndGet(System.nanoTime() - start);
      lastActivity.set(coordinator.clock().instant());
      if (inFlight.decrementAndGet() == 0) {
        state.compareAndSet(AgentState.PROCESSING, AgentState.READY);
      }
    }
  }

  private void requireStarted() {
    if (coordinator == null) {
      throw new IllegalStateException("agent " + config.agentId() + " is not started");
    }
  }

  private void requireCaching() {
    if (!config.enableCaching()) {
      throw new IllegalStateException("agent " + config.agentId() + " has caching disabled");
    }
  }
}
