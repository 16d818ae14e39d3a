package org.nisprotocol.agents;

import java.util.Map;
import java.util.Set;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.ValidationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The scenario simulator as an agent ({@value #AGENT_ID}): other agents ask it for a simulation
 * with an agent_coordination request whose content is {@code {"action": "simulate_scenario",
 * "scenario_id", "scenario_type", "parameters"}}; it answers with the result (a reply, when the
 * request carries a correlation_id) and, through {@link ScenarioSimulatorService}, caches the
 * result and publishes it as simulation_result. A request whose parameters are invalid is answered
 * with {@code {"success": false, "error": ...}} and not retried. {@link #processRequest} does the
 * same for direct calls (there invalid parameters throw {@link ValidationException}).
 */
public final class ScenarioSimulatorAgent extends NisAgent {
  public static final String AGENT_ID = "scenario_simulator";
  public static final String ACTION = "simulate_scenario";
  private static final Logger log = LoggerFactory.getLogger(ScenarioSimulatorAgent.class);

  private final ScenarioSimulatorService service;

  public ScenarioSimulatorAgent(ScenarioSimulatorService service) {
    super(AgentConfiguration.of(AGENT_ID, "simulation"));
    this.service = service;
  }

  @Override
  protected Set<MessageType> subscriptions() {
    return Set.of(MessageType.AGENT_COORDINATION);
  }

  @Override
  protected void handleMessage(NisMessage message) {
    if (!ACTION.equals(message.content().get("action"))) {
      return;
    }
    Map<String, Object> result;
    try {
      result = service.simulateJson(message.content());
    } catch (ValidationException e) {
      // Bad parameters stay bad: answered at once, not retried (nor counted against the agent's health).
      result = Map.of("success", false, "error", String.valueOf(e.getMessage()));
      if (message.correlationId().isEmpty()) {
        log.warn("simulation request {} from {} refused: {}", message.messageId(), message.sourceAgent(), e.getMessage());
      }
    }
    if (message.correlationId().isPresent()) {
      reply(message, result);
    }
  }

  /** {@code {"action": "simulate_scenario", ...}} runs a simulation; see the class comment. */
  @Override
  public Map<String, Object> processRequest(Map<String, Object> request) {
    if (!ACTION.equals(request.get("action"))) {
      return super.processRequest(request);
    }
    return service.simulateJson(request);
  }
}
