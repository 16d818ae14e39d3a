package org.nisprotocol.agents;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.GroupListing;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.embedded.InMemoryCache;
import org.nisprotocol.kafka.KafkaBusConfig;
import org.nisprotocol.kafka.KafkaMessageBus;
import org.nisprotocol.testkit.TestServers;

/**
 * Request/reply across two instances of the service on one Kafka cluster, each running the same
 * agent: every request gets its reply at the instance that sent it.
 */
class RequestReplyOnKafkaIT {
  @TempDir Path temp;
  private final List<AutoCloseable> opened = new ArrayList<>();

  /** One instance of the service: its own bus, coordinator and agent runtime. */
  private AgentRuntime instance(String name) {
    ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
    KafkaMessageBus bus = KafkaMessageBus.create(
        KafkaBusConfig.builder(TestServers.kafka().bootstrapServers())
            .clientId("nis-" + name)
            .spoolDirectory(temp.resolve(name))
            .shutdownTimeout(Duration.ofSeconds(10))
            .build());
    InfrastructureCoordinator coordinator = InfrastructureCoordinator.create(
        CoordinatorConfig.defaults().withAutoRecovery(false), bus, InMemoryCache.create(), InstantSource.system(), scheduler);
    AgentRuntime runtime = AgentRuntime.create(coordinator, scheduler, name);
    opened.add(scheduler::shutdownNow);
    opened.add(bus);
    opened.add(coordinator);
    opened.add(runtime);
    return runtime;
  }

  @AfterEach
  void closeInstances() throws Exception {
    for (AutoCloseable each : opened.reversed()) {
      each.close();
    }
  }

  @Test
  void eachInstanceOfAnAgentGetsTheRepliesToItsOwnRequests() throws Exception {
    String run = UUID.randomUUID().toString().substring(0, 8);
    AgentRuntime first = instance("first-" + run);
    AgentRuntime second = instance("second-" + run);
    first.start(new AgentRuntimeTest.RecordingAgent(
        AgentConfiguration.of("aligner-" + run, "alignment"), MessageType.ALIGNMENT_CHECK));
    List<AgentRuntimeTest.RecordingAgent> planners = new ArrayList<>();
    for (AgentRuntime runtime : List.of(first, second)) {
      AgentRuntimeTest.RecordingAgent planner = new AgentRuntimeTest.RecordingAgent(
          AgentConfiguration.of("planner-" + run, "planning"), MessageType.GOAL_GENERATION);
      runtime.start(planner);
      planners.add(planner);
    }

    List<CompletableFuture<NisMessage>> answers = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      for (AgentRuntimeTest.RecordingAgent planner : planners) {
        answers.add(planner.request(
            "aligner-" + run, MessageType.ALIGNMENT_CHECK, Map.of("plan", "step-" + i), Duration.ofSeconds(30)));
      }
    }

    for (CompletableFuture<NisMessage> answer : answers) {
      assertThat(answer.get().content()).containsEntry("aligned", true);
    }
    assertThat(planners).allSatisfy(planner -> assertThat(planner.handled).as("replies are not handled as messages").isEmpty());

    first.close();
    second.close();
    try (Admin admin = Admin.create(Map.of("bootstrap.servers", TestServers.kafka().bootstrapServers()))) {
      Callable<List<String>> groups = () -> admin.listGroups().all().get(30, TimeUnit.SECONDS).stream()
          .map(GroupListing::groupId)
          .filter(group -> group.contains(run))
          .toList();
      await().atMost(Duration.ofSeconds(30)).until(() -> groups.call().size() == 2);
      assertThat(groups.call())
          .as("each agent's own group stays; the reply groups, one per agent object, were deleted as the agents closed")
          .containsExactlyInAnyOrder("planner-" + run, "aligner-" + run);
    }
  }
}
