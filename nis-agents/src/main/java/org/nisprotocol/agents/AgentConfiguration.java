package org.nisprotocol.agents;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import org.nisprotocol.core.ValidationException;

/**
 * How an agent runs. Immutable; start from {@link #of(String, String)}.
 *
 * @param agentId unique id; also the agent's consumer group, so instances of one agent share its
 *     messages
 * @param agentType what kind of agent it is (e.g. "analysis", "simulation")
 * @param enableMessaging subscribe and send (default true)
 * @param enableCaching use the cache helpers (default true)
 * @param enableSelfAudit audit what the agent sends (default true; applies when the coordinator
 *     audits)
 * @param maxConcurrentTasks messages handled at once at most (default 10)
 * @param processingTimeout how long one message may take before it counts as failed (default 30 s)
 * @param maxRetries in-process retries of a failed message before it goes back to the bus, which
 *     redelivers and finally dead-letters it (default 2)
 * @param heartbeatInterval how often the agent refreshes its directory entry (default 10 s)
 */
public record AgentConfiguration(
    String agentId,
    String agentType,
    boolean enableMessaging,
    boolean enableCaching,
    boolean enableSelfAudit,
    int maxConcurrentTasks,
    Duration processingTimeout,
    int maxRetries,
    Duration heartbeatInterval) {

  /**
   * @throws ValidationException listing every field out of range
   */
  public AgentConfiguration {
    Objects.requireNonNull(agentId, "agentId");
    Objects.requireNonNull(agentType, "agentType");
    Objects.requireNonNull(processingTimeout, "processingTimeout");
    Objects.requireNonNull(heartbeatInterval, "heartbeatInterval");
    List<String> problems = new ArrayList<>();
    if (!agentId.matches("[A-Za-z0-9_.-]{1,64}")) {
      problems.add("agent_id '" + agentId + "' must be 1-64 letters, digits, '_', '-' or '.'");
    }
    if (agentType.isBlank()) {
      problems.add("agent_type must not be blank");
    }
    if (maxConcurrentTasks < 1) {
      problems.add("maxConcurrentTasks must be at least 1, got " + maxConcurrentTasks);
    }
    if (processingTimeout.isZero() || processingTimeout.isNegative()) {
      problems.add("processingTimeout must be positive, got " + processingTimeout);
    }
    if (maxRetries < 0) {
      problems.add("maxRetries must not be negative, got " + maxRetries);
    }
    if (heartbeatInterval.isZero() || heartbeatInterval.isNegative()) {
      problems.add("heartbeatInterval must be positive, got " + heartbeatInterval);
    }
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
  }

  /** The defaults for an agent of the given id and type. */
  public static AgentConfiguration of(String agentId, String agentType) {
    return new AgentConfiguration(
        agentId, agentType, true, true, true, 10, Duration.ofSeconds(30), 2, Duration.ofSeconds(10));
  }

  public AgentConfiguration withMaxConcurrentTasks(int value) {
    return new AgentConfiguration(agentId, agentType, enableMessaging, enableCaching, enableSelfAudit, value, processingTimeout, maxRetries, heartbeatInterval);
  }

  public AgentConfiguration withProcessingTimeout(Duration value) {
    return new AgentConfiguration(agentId, agentType, enableMessaging, enableCaching, enableSelfAudit, maxConcurrentTasks, value, maxRetries, heartbeatInterval);
  }

  public AgentConfiguration withMaxRetries(int value) {
    return new AgentConfiguration(agentId, agentType, enableMessaging, enableCaching, enableSelfAudit, maxConcurrentTasks, processingTimeout, value, heartbeatInterval);
  }

  public AgentConfiguration withHeartbeatInterval(Duration value) {
    return new AgentConfiguration(agentId, agentType, enableMessaging, enableCaching, enableSelfAudit, maxConcurrentTasks, processingTimeout, maxRetries, value);
  }

  public AgentConfiguration withMessaging(boolean value) {
    return new AgentConfiguration(agentId, agentType, value, enableCaching, enableSelfAudit, maxConcurrentTasks, processingTimeout, maxRetries, heartbeatInterval);
  }

  public AgentConfiguration withCaching(boolean value) {
    return new AgentConfiguration(agentId, agentType, enableMessaging, value, enableSelfAudit, maxConcurrentTasks, processingTimeout, maxRetries, heartbeatInterval);
  }
}
