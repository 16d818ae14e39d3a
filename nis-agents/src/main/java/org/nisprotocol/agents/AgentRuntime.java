package org.nisprotocol.agents;

import com.fasterxml.jackson.core.JsonProcessingException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.nisprotocol.core.Cache;
import org.nisprotocol.core.MessageCodec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs agents on a coordinator and keeps the agent directory: one entry per running agent and
 * service instance (agent_id, agent_type, state, subscriptions, last_heartbeat, instance), under
 * the key {@code agent_id@instance} in the cache namespace
 * {@value #DIRECTORY_NAMESPACE}, refreshed every heartbeat and expiring after three missed ones.
 * With Redis as the cache, every instance of the service sees every instance's agents.
 *
 * <p>Thread-safe.
 */
public final class AgentRuntime implements AutoCloseable {
  public static final String DIRECTORY_NAMESPACE = "agent_directory";
  private static final Logger log = LoggerFactory.getLogger(AgentRuntime.class);
  private static final int DIRECTORY_LIMIT = 10_000;

  private final InfrastructureCoordinator coordinator;
  private final ScheduledExecutorService scheduler;
  private final String instanceId;
  private final Map<String, NisAgent> agents = new ConcurrentHashMap<>();
  private final Map<String, ScheduledFuture<?>> heartbeats = new ConcurrentHashMap<>();
  /** Held while a directory entry is written, so that none is written once its agent is stopped. */
  private final Object directoryWrites = new Object();

  private AgentRuntime(InfrastructureCoordinator coordinator, ScheduledExecutorService scheduler, String instanceId) {
    this.coordinator = coordinator;
    this.scheduler = scheduler;
    this.instanceId = instanceId;
  }

  /**
   * A runtime on the coordinator; heartbeats run on the scheduler, which the caller owns.
   *
   * @param instanceId names this service instance in the directory
   */
  public static AgentRuntime create(
      InfrastructureCoordinator coordinator, ScheduledExecutorService scheduler, String instanceId) {
    return new AgentRuntime(
        Objects.requireNonNull(coordinator, "coordinator"),
        Objects.requireNonNull(scheduler, "scheduler"),
        Objects.requireNonNull(instanceId, "instanceId"));
  }

  /** A random instance id: host name and a short random suffix. */
  public static String newInstanceId() {
    String host = Optional.ofNullable(System.getenv("HOSTNAME")).orElse("nis");
    return host + "-" + UUID.randomUUID().toString().substring(0, 8);
  }

  /**
   * Starts the agent and lists it in the directory. When its start fails, the agent is closed and
   * not listed (it may be started again).
   */
  public void start(NisAgent agent) {
    if (agents.putIfAbsent(agent.agentId(), agent) != null) {
      throw new IllegalStateException("an agent " + agent.agentId() + " already runs here");
    }
    try {
      agent.start(coordinator);
    } catch (RuntimeException | Error e) {
      agents.remove(agent.agentId(), agent);
      try {
        agent.close();
      } catch (RuntimeException closing) {
        e.addSuppressed(closing);
      }
      throw e;
    }
    heartbeat(agent);
    Duration every = agent.configuration().heartbeatInterval();
    heartbeats.put(
        agent.agentId(),
        scheduler.scheduleWithFixedDelay(() -> heartbeat(agent), every.toMillis(), every.toMillis(), TimeUnit.MILLISECONDS));
  }

  /** The agents running in this instance. */
  public List<NisAgent> localAgents() {
    return List.copyOf(agents.values());
  }

  public Optional<NisAgent> agent(String agentId) {
    return Optional.ofNullable(agents.get(agentId));
  }

  private String directoryKey(NisAgent agent) {
    return agent.agentId() + "@" + instanceId;
  }

  /** Every agent listed by any instance, sorted by agent_id, then instance. */
  public List<Map<String, Object>> directory() {
    Cache cache = coordinator.cache();
    List<Map<String, Object>> entries = new ArrayList<>();
    cache.entries(DIRECTORY_NAMESPACE, DIRECTORY_LIMIT).values().forEach(json -> {
      try {
        @SuppressWarnings("unchecked")
        Map<String, Object> entry = MessageCodec.mapper().readValue(json, Map.class);
        if (entry == null) {
          log.warn("skipping a directory entry that is not an object: null");
          return;
        }
        entries.add(entry);
      } catch (JsonProcessingException e) {
        log.warn("skipping an unreadable directory entry: {}", e.getOriginalMessage());
      }
    });
    entries.sort(
        Comparator.comparing((Map<String, Object> e) -> String.valueOf(e.get("agent_id")))
            .thenComparing(e -> String.valueOf(e.get("instance"))));
    return entries;
  }

  /** Refreshes the agent's directory entry now. Never throws: a scheduled heartbeat that threw would be its last. */
  void heartbeat(NisAgent agent) {
    try {
      Map<String, Object> entry = new LinkedHashMap<>();
      entry.put("agent_id", agent.agentId());
      entry.put("agent_type", agent.configuration().agentType());
      entry.put("state", agent.state().wireName());
      entry.put("subscriptions", agent.subscribedTypes());
      entry.put("last_heartbeat", EpochSeconds.of(coordinator.clock().instant()));
      entry.put("instance", instanceId);
      entry.put("health", agent.health()); // the agent's own code may fail here too
      String json = MessageCodec.mapper().writeValueAsString(entry);
      synchronized (directoryWrites) {
        if (agents.get(agent.agentId()) != agent) {
          return; // stopped meanwhile: its entry is deleted, not written again
        }
        coordinator.cache().put(
            DIRECTORY_NAMESPACE, directoryKey(agent), json, agent.configuration().heartbeatInterval().multipliedBy(3));
      }
    } catch (JsonProcessingException | RuntimeException | Error e) {
      if (e instanceof OutOfMemoryError fatal) {
        throw fatal;
      }
      log.warn("directory entry of {} not refreshed: {}", agent.agentId(), e.toString());
    }
  }

  /** Stops every agent and removes its directory entry. */
  @Override
  public void close() {
    heartbeats.values().forEach(h -> h.cancel(false));
    for (NisAgent agent : agents.values()) {
      synchronized (directoryWrites) {
        agents.remove(agent.agentId(), agent); // a heartbeat under way has written; none writes after
      }
      agent.close();
      try {
        coordinator.cache().delete(DIRECTORY_NAMESPACE, directoryKey(agent));
      } catch (RuntimeException e) {
        log.debug("directory entry of {} stays until it expires: {}", agent.agentId(), e.toString());
      }
    }
    agents.clear();
  }
}
