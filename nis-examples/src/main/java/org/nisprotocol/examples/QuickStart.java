package org.nisprotocol.examples;

import java.io.PrintStream;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import org.nisprotocol.agents.AgentConfiguration;
import org.nisprotocol.agents.AgentRuntime;
import org.nisprotocol.agents.CoordinatorConfig;
import org.nisprotocol.agents.InfrastructureCoordinator;
import org.nisprotocol.agents.NisAgent;
import org.nisprotocol.agents.ScenarioSimulatorAgent;
import org.nisprotocol.agents.ScenarioSimulatorService;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.embedded.InMemoryCache;
import org.nisprotocol.embedded.InMemoryMessageBus;

/** The integration guide's quick start in Java, on the embedded backends: {@code bin/nis sample}. */
public final class QuickStart {

  /** An agent that reads simulation results and remembers the last one. */
  static final class AnalysisAgent extends NisAgent {
    AnalysisAgent() {
      super(AgentConfiguration.of("analysis_agent", "analysis"));
    }

    @Override
    protected Set<MessageType> subscriptions() {
      return Set.of(MessageType.SIMULATION_RESULT);
    }

    @Override
    protected void handleMessage(NisMessage message) {
      cacheData("last_scenario", message.content(), Duration.ofMinutes(30));
    }
  }

  public static void main(String[] args) throws Exception {
    run(System.out);
  }

  static void run(PrintStream out) throws Exception {
    var scheduler = Executors.newSingleThreadScheduledExecutor();
    try (var bus = InMemoryMessageBus.create();
        var cache = InMemoryCache.create();
        var coordinator = InfrastructureCoordinator.create(CoordinatorConfig.defaults(), bus, cache);
        var agents = AgentRuntime.create(coordinator, scheduler, "quick-start")) {
      agents.start(new ScenarioSimulatorAgent(ScenarioSimulatorService.create(cache, bus)));
      var analysis = new AnalysisAgent();
      agents.start(analysis);

      coordinator.sendMessage(MessageType.SYSTEM_HEALTH, Map.of("status", "healthy"), "demo_agent");
      coordinator.cacheData("demo_config", Map.of("setting", "value"), "demo_agent");
      out.println("Retrieved: " + coordinator.getCachedData("demo_config", "demo_agent").orElseThrow());

      NisMessage reply =
          analysis
              .request(
                  ScenarioSimulatorAgent.AGENT_ID,
                  MessageType.AGENT_COORDINATION,
                  Map.of(
                      "action", ScenarioSimulatorAgent.ACTION,
                      "scenario_id", "archaeological_site_001",
                      "scenario_type", "archaeological_excavation",
                      "parameters", Map.of("iterations", 1000, "seed", 7)),
                  Duration.ofSeconds(30))
              .get();
      out.println("Success probability: " + reply.content().get("success_probability"));
      out.println("Confidence interval: " + reply.content().get("confidence_interval"));
      out.println("Integration status: " + coordinator.integrationStatus().wireName());
    } finally {
      scheduler.shutdownNow();
    }
  }
}
