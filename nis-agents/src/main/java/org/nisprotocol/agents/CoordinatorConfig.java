package org.nisprotocol.agents;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import org.nisprotocol.core.ValidationException;

/**
 * Settings of the {@link InfrastructureCoordinator}. Immutable; start from {@link #defaults()}.
 *
 * @param selfAuditEnabled audit every outgoing message ({@code ENABLE_SELF_AUDIT}; default true)
 * @param selfAudit the audit's rules, threshold (70) and what to do below it
 * @param autoRecovery ask a service that is not healthy to recover at each check (default true);
 *     off, the services are still probed and alerted on
 * @param healthCheckInterval how often the health loop probes (default 30 s)
 * @param healthCheckTimeout how long one probe may take (default 5 s)
 */
public record CoordinatorConfig(
    boolean selfAuditEnabled,
    SelfAuditConfig selfAudit,
    boolean autoRecovery,
    Duration healthCheckInterval,
    Duration healthCheckTimeout) {
  public static final Duration DEFAULT_HEALTH_CHECK_INTERVAL = Duration.ofSeconds(30);
  public static final Duration DEFAULT_HEALTH_CHECK_TIMEOUT = Duration.ofSeconds(5);

  /**
   * @throws ValidationException listing every bad duration
   */
  public CoordinatorConfig {
    Objects.requireNonNull(selfAudit, "selfAudit");
    Objects.requireNonNull(healthCheckInterval, "healthCheckInterval");
    Objects.requireNonNull(healthCheckTimeout, "healthCheckTimeout");
    List<String> problems = new ArrayList<>();
    if (healthCheckInterval.isZero() || healthCheckInterval.isNegative()) {
      problems.add("healthCheckInterval must be positive, got " + healthCheckInterval);
    }
    if (healthCheckTimeout.isZero() || healthCheckTimeout.isNegative()) {
      problems.add("healthCheckTimeout must be positive, got " + healthCheckTimeout);
    }
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
  }

  public static CoordinatorConfig defaults() {
    return new CoordinatorConfig(
        true, SelfAuditConfig.defaults(), true, DEFAULT_HEALTH_CHECK_INTERVAL, DEFAULT_HEALTH_CHECK_TIMEOUT);
  }

  public CoordinatorConfig withSelfAuditEnabled(boolean enabled) {
    return new CoordinatorConfig(enabled, selfAudit, autoRecovery, healthCheckInterval, healthCheckTimeout);
  }

  public CoordinatorConfig withSelfAudit(SelfAuditConfig config) {
    return new CoordinatorConfig(selfAuditEnabled, config, autoRecovery, healthCheckInterval, healthCheckTimeout);
  }

  public CoordinatorConfig withAutoRecovery(boolean enabled) {
    return new CoordinatorConfig(selfAuditEnabled, selfAudit, enabled, healthCheckInterval, healthCheckTimeout);
  }

  public CoordinatorConfig withHealthCheckInterval(Duration interval) {
    return new CoordinatorConfig(selfAuditEnabled, selfAudit, autoRecovery, interval, healthCheckTimeout);
  }

  public CoordinatorConfig withHealthCheckTimeout(Duration timeout) {
    return new CoordinatorConfig(selfAuditEnabled, selfAudit, autoRecovery, healthCheckInterval, timeout);
  }
}
