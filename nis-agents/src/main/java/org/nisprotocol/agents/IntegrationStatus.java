package org.nisprotocol.agents;

import java.util.Collection;
import java.util.Locale;
import org.nisprotocol.core.HealthStatus;

/** How well the infrastructure as a whole works; on the wire lowercase ({@code "degraded"}). */
public enum IntegrationStatus {
  /** Every service healthy. */
  FULLY_OPERATIONAL,
  /** None unhealthy, some degraded (or not checked yet). */
  PARTIALLY_OPERATIONAL,
  /** Some services unhealthy, others not. */
  DEGRADED,
  /** Every service unhealthy. */
  OFFLINE;

  public String wireName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** The status of a set of services from their health. */
  public static IntegrationStatus of(Collection<HealthStatus> services) {
    long unhealthy = services.stream().filter(s -> s == HealthStatus.UNHEALTHY).count();
    if (!services.isEmpty() && unhealthy == services.size()) {
      return OFFLINE;
    }
    if (unhealthy > 0) {
      return DEGRADED;
    }
    return services.stream().allMatch(s -> s == HealthStatus.HEALTHY) ? FULLY_OPERATIONAL : PARTIALLY_OPERATIONAL;
  }
}
