package org.nisprotocol.agents;

import com.fasterxml.jackson.core.JsonProcessingException;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.nisprotocol.core.Cache;
import org.nisprotocol.core.HealthCheck;
import org.nisprotocol.core.HealthStatus;
import org.nisprotocol.core.MessageBus;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.MessageHandler;
import org.nisprotocol.core.MessagePriority;
import org.nisprotocol.core.MessageTooLargeException;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisException;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.PublishReceipt;
import org.nisprotocol.core.Subscription;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.core.ValidationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one interface agents use for messaging and shared state: send a message, cache and read
 * data, subscribe; with self-audit of outgoing messages, health monitoring and auto-recovery.
 *
 * <h2>Health</h2>
 *
 * Each service (the message bus and the cache) is probed with a real round trip bounded by the
 * health check timeout, at start and then every health check interval; its health, last check,
 * uptime (since it last became healthy), error count and response time are kept. A change of
 * health publishes an audit_alert (severity high when unhealthy, medium when degraded), and so
 * does a service that is not healthy at the first probe. With
 * auto-recovery on, a service that is not healthy is asked to {@code recover()}.
 *
 * <h2>Self-audit</h2>
 *
 * When enabled every outgoing message is audited: its integrity_score and audit_flags are filled
 * in; below the threshold it is auto-corrected, or quarantined to nis-audit-alerts with the reasons
 * (never dropped), as {@link SelfAuditConfig} says.
 *
 * <p>Thread-safe.
 */
public final class InfrastructureCoordinator implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(InfrastructureCoordinator.class);
  /** Namespace of the data agents cache through {@link #cacheData}; keys are {@code agent_id:key}. */
  public static final String AGENT_NAMESPACE = "agents";
  /** The source_agent of health alerts. */
  public static final String HEALTH_MONITOR = "health_monitor";
  /** The source_agent of self-audit alerts. */
  public static final String SELF_AUDIT = "self_audit";

  private final CoordinatorConfig config;
  private final MessageBus bus;
  private final Cache cache;
  private final InstantSource clock;
  private final Optional<SelfAuditEngine> audit;
  private final Instant startedAt;
  private final Map<String, ServiceState> services = new LinkedHashMap<>();
  /** A subscription made through this coordinator and not closed yet. */
  private record Open(Subscription subscription, SubscriptionSpec spec) {}

  private final List<Open> openSubscriptions = new CopyOnWriteArrayList<>();
  private final AtomicLong totalMessages = new AtomicLong();
  private final AtomicLong totalCacheOperations = new AtomicLong();
  private final AtomicLong errors = new AtomicLong();
  private final AtomicLong responseNanos = new AtomicLong();
  private final ScheduledExecutorService scheduler;
  private final boolean ownScheduler;
  private final ScheduledFuture<?> healthLoop;

  /** One monitored service and what its probes found. Guarded by itself. */
  private static final class ServiceState {
    final String name;
    final String backend;
    final java.util.concurrent.Callable<HealthCheck> probe;
    final Runnable recover;
    HealthStatus health = HealthStatus.UNKNOWN;
    Optional<Instant> lastCheck = Optional.empty();
    Optional<Instant> healthySince = Optional.empty();
    long errorCount;
    Duration responseTime = Duration.ZERO;
    Optional<String> detail = Optional.empty();

    ServiceState(String name, String backend, java.util.concurrent.Callable<HealthCheck> probe, Runnable recover) {
      this.name = name;
      this.backend = backend;
      this.probe = probe;
      this.recover = recover;
    }
  }

  private InfrastructureCoordinator(
      CoordinatorConfig config,
      MessageBus bus,
      Cache cache,
      InstantSource clock,
      ScheduledExecutorService scheduler,
      boolean ownScheduler) {
    this.config = config;
    this.bus = bus;
    this.cache = cache;
    this.clock = clock;
    this.audit = config.selfAuditEnabled() ? Optional.of(SelfAuditEngine.create(config.selfAudit())) : Optional.empty();
    this.startedAt = clock.instant();
    Duration timeout = config.healthCheckTimeout();
    services.put(
        bus.name().equals("kafka") ? "kafka" : "message_bus",
        new ServiceState("message bus", bus.name(), () -> bus.checkHealth(timeout), bus::recover));
    services.put(
        cache.name().equals("redis") ? "redis" : "cache",
        new ServiceState("cache", cache.name(), () -> cache.checkHealth(timeout), cache::recover));
    this.scheduler = scheduler;
    this.ownScheduler = ownScheduler;
    checkHealth();
    this.healthLoop =
        scheduler.scheduleWithFixedDelay(
            this::checkHealthQuietly,
            config.healthCheckInterval().toMillis(),
            config.healthCheckInterval().toMillis(),
            TimeUnit.MILLISECONDS);
  }

  /** A coordinator over the given backends, with its own scheduler, probing them once now. */
  public static InfrastructureCoordinator create(CoordinatorConfig config, MessageBus bus, Cache cache) {
    ScheduledExecutorService scheduler =
        Executors.newSingleThreadScheduledExecutor(
            runnable -> Thread.ofPlatform().daemon().name("nis-health-monitor").unstarted(runnable));
    return new InfrastructureCoordinator(
        Objects.requireNonNull(config, "config"), Objects.requireNonNull(bus, "bus"),
        Objects.requireNonNull(cache, "cache"), InstantSource.system(), scheduler, true);
  }

  /** As {@link #create(CoordinatorConfig, MessageBus, Cache)}, with an injected clock and scheduler. */
  public static InfrastructureCoordinator create(
      CoordinatorConfig config,
      MessageBus bus,
      Cache cache,
      InstantSource clock,
      ScheduledExecutorService scheduler) {
    return new InfrastructureCoordinator(
        Objects.requireNonNull(config, "config"), Objects.requireNonNull(bus, "bus"),
        Objects.requireNonNull(cache, "cache"), Objects.requireNonNull(clock, "clock"),
        Objects.requireNonNull(scheduler, "scheduler"), false);
  }

  public MessageBus messageBus() {
    return bus;
  }

  public Cache cache() {
    return cache;
  }

  /** The self-audit engine, when self-audit is enabled. */
  public Optional<SelfAuditEngine> selfAudit() {
    return audit;
  }

  // ---- messaging ----

  /** Sends a message of the type with normal priority; see {@link #sendMessage(NisMessage)}. */
  public SendResult sendMessage(MessageType type, Map<String, ?> content, String sourceAgent) {
    return sendMessage(NisMessage.builder(type, sourceAgent).content(content).build());
  }

  /** Sends a message of the type with the priority; see {@link #sendMessage(NisMessage)}. */
  public SendResult sendMessage(
      MessageType type, Map<String, ?> content, String sourceAgent, MessagePriority priority) {
    return sendMessage(NisMessage.builder(type, sourceAgent).content(content).priority(priority).build());
  }

  /**
   * Audits the message (when self-audit is enabled) and publishes it, or its corrected form, or
   * only an alert quarantining it. Returns once the bus accepted what was published.
   */
  public SendResult sendMessage(NisMessage message) {
    return sendMessage(message, Map.of());
  }

  /** {@link #sendMessage(NisMessage)} with transport headers such as a traceparent. */
  public SendResult sendMessage(NisMessage message, Map<String, String> headers) {
    Objects.requireNonNull(message, "message");
    return timed(totalMessages, () -> {
      if (audit.isEmpty()) {
        return SendResult.unaudited(bus.publish(message, headers), message);
      }
      AuditDecision decision = audit.get().decide(message);
      Optional<NisMessage> alert = decision.alert(SELF_AUDIT);
      PublishReceipt receipt;
      try {
        receipt =
            decision.action() == AuditDecision.Action.QUARANTINED
                ? bus.publish(alert.orElseThrow(), headers)
                : bus.publish(decision.message(), headers);
      } catch (MessageTooLargeException e) {
        if (decision.action() == AuditDecision.Action.PASS) {
          throw e;
        }
        // What was refused is not what the caller sent: say so, or its size is a riddle.
        throw new MessageTooLargeException("the self-audit " + (decision.action() == AuditDecision.Action.CORRECTED
            ? "corrected message " + message.messageId() + " (its flagged wording rewritten, which made it longer)"
            : "quarantined message " + message.messageId() + " into an alert that carries it")
            + ", and the bus refused the result: " + e.getMessage());
      }
      if (decision.action() == AuditDecision.Action.CORRECTED && alert.isPresent()) {
        // The corrected message is accepted: an alert the bus refuses now must not fail the call,
        // whose caller would send the message again.
        try {
          bus.publish(alert.get(), headers);
        } catch (RuntimeException e) {
          log.warn("audit alert for corrected message {} not published: {}", decision.message().messageId(), e.toString());
        }
      }
      return SendResult.audited(receipt, decision);
    });
  }

  /** Publishes without the self-audit (for agents that opted out of it). */
  SendResult sendUnaudited(NisMessage message, Map<String, String> headers) {
    return timed(totalMessages, () -> SendResult.unaudited(bus.publish(message, headers), message));
  }

  InstantSource clock() {
    return clock;
  }

  /**
   * Subscribes a handler (see {@link MessageBus#subscribe}); the subscription shows in the status
   * under agent_subscriptions until it is closed.
   */
  public Subscription subscribe(SubscriptionSpec spec, MessageHandler handler) {
    Subscription subscription = bus.subscribe(spec, handler);
    openSubscriptions.add(new Open(subscription, spec));
    return new Subscription() {
      @Override
      public SubscriptionSpec spec() {
        return spec;
      }

      @Override
      public void close() {
        subscription.close();
        openSubscriptions.removeIf(open -> open.subscription() == subscription);
      }
    };
  }

  // ---- caching ----

  /** Caches a JSON-able value for an agent with the namespace's default TTL. */
  public void cacheData(String key, Object value, String agentId) {
    writeCache(AGENT_NAMESPACE, agentKey(agentId, key), value, Optional.empty());
  }

  /** Caches a JSON-able value for an agent for the given time. */
  public void cacheData(String key, Object value, String agentId, Duration ttl) {
    writeCache(AGENT_NAMESPACE, agentKey(agentId, key), value, Optional.of(ttl));
  }

  /** Caches a JSON-able value in a namespace, for the TTL given or the namespace's default. */
  public void writeCache(String namespace, String key, Object value, Optional<Duration> ttl) {
    String json = toJson(value);
    timed(totalCacheOperations, () -> {
      if (ttl.isPresent()) {
        cache.put(namespace, key, json, ttl.get());
      } else {
        cache.put(namespace, key, json);
      }
      return null;
    });
  }

  /** The value an agent cached under the key, as maps, lists and scalars; empty when absent. */
  public Optional<Object> getCachedData(String key, String agentId) {
    return readCache(AGENT_NAMESPACE, agentKey(agentId, key));
  }

  /** The value cached in the namespace under the key, as maps, lists and scalars. */
  public Optional<Object> readCache(String namespace, String key) {
    Optional<String> json = timed(totalCacheOperations, () -> cache.get(namespace, key));
    return json.map(InfrastructureCoordinator::fromJson);
  }

  static String agentKey(String agentId, String key) {
    if (agentId == null || agentId.isBlank()) {
      throw new ValidationException("agent_id must not be blank");
    }
    return agentId + ":" + key;
  }

  // ---- health ----

  /** Probes every service now (each bounded by the health check timeout) and records the result. */
  public void checkHealth() {
    for (ServiceState service : services.values()) {
      HealthCheck check = probe(service);
      HealthStatus previous;
      synchronized (service) {
        previous = service.health;
        service.health = check.status();
        service.lastCheck = Optional.of(clock.instant());
        service.responseTime = check.latency();
        service.detail = check.detail();
        if (check.status() == HealthStatus.HEALTHY) {
          if (service.healthySince.isEmpty()) {
            service.healthySince = service.lastCheck;
          }
        } else {
          service.healthySince = Optional.empty();
          if (check.status() == HealthStatus.UNHEALTHY) {
            service.errorCount++;
          }
        }
      }
      // A service not healthy at the first check is alerted too; one healthy from the start is not news.
      if (previous != check.status() && !(previous == HealthStatus.UNKNOWN && check.status() == HealthStatus.HEALTHY)) {
        alertHealthChange(service, previous, check);
      }
      if (config.autoRecovery() && check.status() != HealthStatus.HEALTHY) {
        try {
          service.recover.run();
        } catch (RuntimeException e) {
          log.warn("recovery of the {} failed: {}", service.name, e.toString());
        }
      }
    }
  }

  private void checkHealthQuietly() {
    try {
      checkHealth();
    } catch (RuntimeException e) {
      log.warn("health check failed: {}", e.toString());
    }
  }

  /** The probe in a virtual thread, so a backend that ignores its timeout cannot hold us up. */
  private HealthCheck probe(ServiceState service) {
    Duration timeout = config.healthCheckTimeout();
    long start = System.nanoTime();
    try {
      return Deadlines.callWithin(timeout.plusMillis(500), service.probe::call);
    } catch (java.util.concurrent.TimeoutException e) {
      return HealthCheck.of(HealthStatus.UNHEALTHY, Duration.ofNanos(System.nanoTime() - start),
          "no answer within " + timeout);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return HealthCheck.of(HealthStatus.UNKNOWN, Duration.ZERO, "interrupted");
    } catch (Exception e) {
      return HealthCheck.of(HealthStatus.UNHEALTHY, Duration.ofNanos(System.nanoTime() - start),
          String.valueOf(e));
    }
  }

  private void alertHealthChange(ServiceState service, HealthStatus previous, HealthCheck check) {
    log.warn("{} ({}) health {} -> {}", service.name, service.backend, previous.wireName(), check.status().wireName());
    if (check.status() == HealthStatus.HEALTHY) {
      return;
    }
    Map<String, Object> alert = new LinkedHashMap<>();
    alert.put("alert_type", "health_degradation");
    alert.put("service", service.backend);
    alert.put("status", check.status().wireName());
    alert.put("previous_status", previous.wireName());
    alert.put("detail", check.detail().orElse(""));
    alert.put("timestamp", EpochSeconds.of(clock.instant()));
    alert.put("severity", check.status() == HealthStatus.UNHEALTHY ? "high" : "medium");
    try {
      bus.publish(
          NisMessage.builder(MessageType.AUDIT_ALERT, HEALTH_MONITOR)
              .priority(MessagePriority.CRITICAL)
              .content(alert)
              .build());
    } catch (NisException e) {
      log.warn("could not publish the health alert for the {}: {}", service.name, e.getMessage());
    }
  }

  /** The health of each service by its status key ("kafka"/"message_bus", "redis"/"cache"). */
  public Map<String, HealthStatus> serviceHealth() {
    Map<String, HealthStatus> health = new LinkedHashMap<>();
    services.forEach((key, service) -> {
      synchronized (service) {
        health.put(key, service.health);
      }
    });
    return health;
  }

  public IntegrationStatus integrationStatus() {
    return IntegrationStatus.of(serviceHealth().values());
  }

  /** The worst health among the services. */
  public HealthStatus overallHealth() {
    HealthStatus worst = HealthStatus.HEALTHY;
    for (HealthStatus health : serviceHealth().values()) {
      if (rank(health) > rank(worst)) {
        worst = health;
      }
    }
    return worst;
  }

  private static int rank(HealthStatus status) {
    return switch (status) {
      case HEALTHY -> 0;
      case DEGRADED -> 1;
      case UNKNOWN -> 2;
      case UNHEALTHY -> 3;
    };
  }

  /**
   * The comprehensive status as JSON-ready maps, in the shape of the integration guide:
   * integration_status, overall_health, services{name: health, last_check, uptime, error_count,
   * response_time, backend, detail}, metrics{total_messages, total_cache_operations, error_rate,
   * avg_response_time, uptime}, agent_subscriptions, auto_recovery_enabled, self_audit_enabled.
   * Times are seconds (last_check in epoch seconds); response times milliseconds.
   */
  public Map<String, Object> comprehensiveStatus() {
    Instant now = clock.instant();
    Map<String, Object> status = new LinkedHashMap<>();
    status.put("integration_status", integrationStatus().wireName());
    status.put("overall_health", overallHealth().wireName());
    Map<String, Object> serviceJson = new LinkedHashMap<>();
    services.forEach((key, service) -> {
      synchronized (service) {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("health", service.health.wireName());
        json.put("last_check", service.lastCheck.map(EpochSeconds::of).orElse(null));
        json.put("uptime", service.healthySince.map(since -> seconds(Duration.between(since, now))).orElse(0.0));
        json.put("error_count", service.errorCount);
        json.put("response_time", service.responseTime.toNanos() / 1e6);
        json.put("backend", service.backend);
        json.put("detail", service.detail.orElse(null));
        serviceJson.put(key, json);
      }
    });
    status.put("services", serviceJson);
    long operations = totalMessages.get() + totalCacheOperations.get();
    Map<String, Object> metrics = new LinkedHashMap<>();
    metrics.put("total_messages", totalMessages.get());
    metrics.put("total_cache_operations", totalCacheOperations.get());
    metrics.put("error_rate", operations == 0 ? 0.0 : (double) errors.get() / operations);
    metrics.put("avg_response_time", operations == 0 ? 0.0 : responseNanos.get() / 1e6 / operations);
    metrics.put("uptime", seconds(Duration.between(startedAt, now)));
    status.put("metrics", metrics);
    status.put("agent_subscriptions", subscriptionsByGroup());
    status.put("auto_recovery_enabled", config.autoRecovery());
    status.put("self_audit_enabled", config.selfAuditEnabled());
    return status;
  }

  private static double seconds(Duration duration) {
    return duration.toMillis() / 1000.0;
  }

  /**
   * Runs an operation of the infrastructure, counting it, its failures and its time. Input refused
   * as invalid (a ValidationException: a bad key, a message too large) is the caller's mistake, not
   * an operation: it counts nowhere, so error_rate says how the infrastructure does.
   */
  private <T> T timed(AtomicLong counter, Supplier<T> operation) {
    long start = System.nanoTime();
    try {
      T result = operation.get();
      counted(counter, start);
      return result;
    } catch (ValidationException refused) {
      throw refused;
    } catch (RuntimeException e) {
      errors.incrementAndGet();
      counted(counter, start);
      throw e;
    }
  }

  private void counted(AtomicLong counter, long startNanos) {
    responseNanos.addAndGet(System.nanoTime() - startNanos);
    counter.incrementAndGet();
  }

  static String toJson(Object value) {
    try {
      return MessageCodec.mapper().writeValueAsString(value);
    } catch (JsonProcessingException e) {
      throw new ValidationException("value cannot be written as JSON: " + e.getOriginalMessage());
    }
  }

  static Object fromJson(String json) {
    try {
      return MessageCodec.mapper().readValue(json, Object.class);
    } catch (JsonProcessingException e) {
      throw new NisException("the cache holds text that is not JSON: " + e.getOriginalMessage(), e);
    }
  }

  /** The topics and message types each group reads through the open subscriptions (a group's in the order they came). */
  private Map<String, List<String>> subscriptionsByGroup() {
    Map<String, Set<String>> byGroup = new TreeMap<>();
    openSubscriptions.forEach(open -> {
      SubscriptionSpec spec = open.spec();
      Set<String> what = byGroup.computeIfAbsent(spec.group(), g -> new LinkedHashSet<>());
      what.addAll(spec.effectiveTopics());
      spec.messageTypes().forEach(type -> what.add(type.wireName()));
    });
    Map<String, List<String>> listed = new TreeMap<>();
    byGroup.forEach((group, what) -> listed.put(group, List.copyOf(what)));
    return Collections.unmodifiableMap(listed);
  }

  /** Stops the health loop and closes what this coordinator subscribed; the backends stay open. */
  @Override
  public void close() {
    healthLoop.cancel(false);
    if (ownScheduler) {
      scheduler.shutdownNow();
    }
    openSubscriptions.forEach(open -> open.subscription().close());
    openSubscriptions.clear();
  }
}
