package org.nisprotocol.agents;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.Delivery;
import org.nisprotocol.core.MessagePriority;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.RetryPolicy;
import org.nisprotocol.core.StreamingTopics;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.embedded.InMemoryCache;
import org.nisprotocol.embedded.InMemoryCacheConfig;
import org.nisprotocol.embedded.InMemoryMessageBus;
import org.nisprotocol.embedded.InMemoryMessageBusConfig;
import org.nisprotocol.testkit.ManualClock;

class AgentRuntimeTest {
  private final ManualClock clock = ManualClock.create();
  private final InMemoryMessageBus bus =
      InMemoryMessageBus.create(
          InMemoryMessageBusConfig.defaults()
              .withRetryPolicy(new RetryPolicy(2, Duration.ofMillis(10), Duration.ofMillis(20), 0)));
  private final InMemoryCache cache = InMemoryCache.create(InMemoryCacheConfig.defaults().withClock(clock));
  private final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
  private final InfrastructureCoordinator coordinator =
      InfrastructureCoordinator.create(CoordinatorConfig.defaults().withAutoRecovery(false), bus, cache, clock, scheduler);
  private final AgentRuntime runtime = AgentRuntime.create(coordinator, scheduler, "instance-a");

  @AfterEach
  void stop() {
    runtime.close();
    coordinator.close();
    scheduler.shutdownNow();
    bus.close();
  }

  /** An agent that records what it handles and can be told to fail or dawdle. */
  static class RecordingAgent extends NisAgent {
    final List<NisMessage> handled = new CopyOnWriteArrayList<>();
    final AtomicInteger running = new AtomicInteger();
    final AtomicInteger mostAtOnce = new AtomicInteger();
    volatile boolean failing;
    volatile Duration dawdle = Duration.ZERO;
    final Set<MessageType> types;

    RecordingAgent(AgentConfiguration config, MessageType... types) {
      super(config);
      this.types = Set.of(types);
    }

    @Override
    protected Set<MessageType> subscriptions() {
      return types;
    }

    @Override
    protected void handleMessage(NisMessage message) throws Exception {
      int now = running.incrementAndGet();
      mostAtOnce.accumulateAndGet(now, Math::max);
      try {
        Thread.sleep(dawdle);
        if (failing) {
          throw new IllegalStateException("told to fail");
        }
        handled.add(message);
        if (message.correlationId().isPresent() && message.messageType() == MessageType.ALIGNMENT_CHECK) {
          reply(message, Map.of("aligned", true, "checked", message.content().get("plan")));
        }
      } finally {
        running.decrementAndGet();
      }
    }

    SendResult send(MessageType type, Map<String, ?> content, String target) {
      return sendMessage(type, content, Optional.ofNullable(target), MessagePriority.NORMAL);
    }

    void remember(String key, Object value) {
      cacheData(key, value, Duration.ofMinutes(30));
    }

    Optional<Object> recall(String key) {
      return getCachedData(key);
    }
  }

  /** Blocks a little and swallows interruption, as badly behaved code does. */
  static void sleepIgnoringInterrupts() {
    try {
      Thread.sleep(20);
    } catch (InterruptedException ignored) {
      // deliberately ignored
    }
  }

  private RecordingAgent agent(String id, MessageType... types) {
    return new RecordingAgent(AgentConfiguration.of(id, "analysis").withMaxRetries(0), types);
  }

  @Test
  void anAgentHandlesTheTypesItSubscribedToAndReportsItsHealth() {
    RecordingAgent analysis = agent("analysis_agent", MessageType.SIMULATION_RESULT);
    runtime.start(analysis);
    assertThat(analysis.state()).isEqualTo(AgentState.READY);

    coordinator.sendMessage(MessageType.SIMULATION_RESULT, Map.of("success_probability", "computed"), "scenario_simulator");
    coordinator.sendMessage(MessageType.MEMORY_OPERATION, Map.of("op", "store"), "memory_agent");

    await().atMost(Duration.ofSeconds(10)).until(() -> analysis.handled.size() == 1);
    assertThat(analysis.handled.get(0).messageType()).isEqualTo(MessageType.SIMULATION_RESULT);
    assertThat(analysis.health()).containsEntry("processed", 1L).containsEntry("failed", 0L).containsEntry("state", "ready");
  }

  @Test
  void heartbeatsAndLastActivityAreEpochSecondsWrittenPlainly() throws Exception {
    clock.advance(Duration.ofMillis(500)); // from 2026-01-01T00:00:00Z, epoch second 1767225600
    RecordingAgent analysis = agent("analysis_agent", MessageType.SIMULATION_RESULT);
    runtime.start(analysis);
    coordinator.sendMessage(MessageType.SIMULATION_RESULT, Map.of("success_probability", "computed"), "scenario_simulator");
    await().atMost(Duration.ofSeconds(10)).until(() -> analysis.handled.size() == 1);

    // As doubles these came out as 1.7672256005E9.
    assertThat(MessageCodec.mapper().writeValueAsString(analysis.health())).contains("\"last_activity\":1767225600.500");
    assertThat(MessageCodec.mapper().writeValueAsString(runtime.directory())).contains("\"last_heartbeat\":1767225600.500");
  }

  @Test
  void messagesForAnotherAgentAreNotHandled() {
    RecordingAgent mine = agent("mine", MessageType.GOAL_GENERATION);
    runtime.start(mine);
    RecordingAgent sender = agent("sender", MessageType.PERFORMANCE_METRIC);
    runtime.start(sender);

    sender.send(MessageType.GOAL_GENERATION, Map.of("goal", "for someone else"), "someone_else");
    sender.send(MessageType.GOAL_GENERATION, Map.of("goal", "for me"), "mine");

    await().atMost(Duration.ofSeconds(10)).until(() -> mine.handled.size() == 1);
    assertThat(mine.handled.get(0).content()).containsEntry("goal", "for me");
  }

  @Test
  void aRequestIsAnsweredByCorrelationId() throws Exception {
    runtime.start(agent("alignment_agent", MessageType.ALIGNMENT_CHECK));
    RecordingAgent planner = agent("planner", MessageType.GOAL_GENERATION);
    runtime.start(planner);

    NisMessage answer =
        planner.request("alignment_agent", MessageType.ALIGNMENT_CHECK, Map.of("plan", "excavate"), Duration.ofSeconds(10)).get();

    assertThat(answer.content()).containsEntry("aligned", true).containsEntry("checked", "excavate");
    assertThat(answer.sourceAgent()).isEqualTo("alignment_agent");
    assertThat(answer.messageType()).isEqualTo(MessageType.AGENT_COORDINATION);
  }

  @Test
  void everyInstanceOfAnAgentGetsTheRepliesToItsOwnRequests() throws Exception {
    // Two instances of the service each run a planner: they share the planner's group, so a reply
    // delivered through it reached one of them, often not the one waiting for it.
    try (TwoPlanners planners = alignmentAndPlannersOnTwoInstances(MessageType.GOAL_GENERATION)) {
      List<CompletableFuture<NisMessage>> answers = new ArrayList<>();
      for (int i = 0; i < 10; i++) {
        for (RecordingAgent planner : List.of(planners.here(), planners.there())) {
          answers.add(planner.request(
              "alignment_agent", MessageType.ALIGNMENT_CHECK, Map.of("plan", "step-" + i), Duration.ofSeconds(10)));
        }
      }

      for (var answer : answers) {
        assertThat(answer.get().content()).containsEntry("aligned", true);
      }
      assertThat(planners.here().handled).as("replies are not handled as messages").isEmpty();
      assertThat(planners.there().handled).isEmpty();
    }
  }

  /** A planner agent here and one on another instance (sharing the planner's group), which closes with it. */
  private record TwoPlanners(RecordingAgent here, RecordingAgent there, AgentRuntime otherInstance)
      implements AutoCloseable {
    @Override
    public void close() {
      otherInstance.close();
    }
  }

  /** Starts the alignment agent, which answers alignment checks, and a planner taking the type on two instances. */
  private TwoPlanners alignmentAndPlannersOnTwoInstances(MessageType plannersTake) {
    runtime.start(agent("alignment_agent", MessageType.ALIGNMENT_CHECK));
    RecordingAgent here = agent("planner", plannersTake);
    runtime.start(here);
    AgentRuntime otherInstance = AgentRuntime.create(coordinator, scheduler, "instance-b");
    RecordingAgent there = agent("planner", plannersTake);
    otherInstance.start(there);
    return new TwoPlanners(here, there, otherInstance);
  }

  @Test
  void aRequestNobodyAnswersTimesOut() {
    RecordingAgent planner = agent("lonely_planner", MessageType.GOAL_GENERATION);
    runtime.start(planner);

    assertThatThrownBy(
            () -> planner.request("nobody", MessageType.ALIGNMENT_CHECK, Map.of("plan", "x"), Duration.ofMillis(200)).get())
        .isInstanceOf(ExecutionException.class)
        .hasCauseInstanceOf(TimeoutException.class);
  }

  @Test
  void noMoreThanMaxConcurrentTasksRunAtOnce() {
    RecordingAgent busy =
        new RecordingAgent(AgentConfiguration.of("busy", "worker").withMaxConcurrentTasks(2), MessageType.PERFORMANCE_METRIC);
    busy.dawdle = Duration.ofMillis(50);
    runtime.start(busy);

    for (int i = 0; i < 20; i++) {
      coordinator.sendMessage(
          NisMessage.builder(MessageType.PERFORMANCE_METRIC, "source-" + i).content(Map.of("i", i)).build());
    }

    await().atMost(Duration.ofSeconds(30)).until(() -> busy.handled.size() == 20);
    assertThat(busy.mostAtOnce.get()).isEqualTo(2);
  }

  @Test
  void aMessageTakingTooLongFailsAndEndsInTheDeadLetters() {
    RecordingAgent slow =
        new RecordingAgent(
            AgentConfiguration.of("slow", "worker").withProcessingTimeout(Duration.ofMillis(100)).withMaxRetries(1),
            MessageType.MEMORY_OPERATION);
    slow.dawdle = Duration.ofSeconds(5);
    runtime.start(slow);
    List<Delivery> deadLetters = new CopyOnWriteArrayList<>();
    bus.subscribe(SubscriptionSpec.group("dlt").withTopics(StreamingTopics.deadLetterTopicOf(StreamingTopics.MEMORY)), deadLetters::add);

    coordinator.sendMessage(MessageType.MEMORY_OPERATION, Map.of("op", "store"), "memory_agent");

    await().atMost(Duration.ofSeconds(30)).until(() -> deadLetters.size() == 1);
    assertThat(deadLetters.get(0).headers().get("nis.dlt.error")).contains("took longer than PT0.1S");
    assertThat(slow.health()).containsEntry("processed", 0L);
    assertThat((Long) slow.health().get("failed")).isGreaterThanOrEqualTo(4L);
    assertThat(slow.state()).isEqualTo(AgentState.DEGRADED);
  }

  @Test
  void aHandlerIgnoringInterruptionStillTimesOut() {
    java.util.concurrent.atomic.AtomicBoolean release = new java.util.concurrent.atomic.AtomicBoolean();
    NisAgent stubborn =
        new RecordingAgent(
            AgentConfiguration.of("stubborn", "worker").withProcessingTimeout(Duration.ofMillis(100)).withMaxRetries(0),
            MessageType.GOAL_GENERATION) {
          @Override
          protected void handleMessage(NisMessage message) {
            while (!release.get()) {
              sleepIgnoringInterrupts();
            }
          }
        };
    runtime.start(stubborn);
    try {
      coordinator.sendMessage(MessageType.GOAL_GENERATION, Map.of("goal", "never ends"), "a");

      await().atMost(Duration.ofSeconds(10)).until(() -> ((Long) stubborn.health().get("failed")) >= 2);
    } finally {
      release.set(true);
    }
  }

  @Test
  void repeatedFailuresDegradeTheAgentAndASuccessRestoresIt() {
    RecordingAgent flaky = agent("flaky", MessageType.CONSCIOUSNESS_EVENT);
    flaky.failing = true;
    runtime.start(flaky);

    for (int i = 0; i < 2; i++) {
      coordinator.sendMessage(MessageType.CONSCIOUSNESS_EVENT, Map.of("i", i), "a");
    }
    await().atMost(Duration.ofSeconds(10)).until(() -> flaky.state() == AgentState.DEGRADED);

    flaky.failing = false;
    coordinator.sendMessage(MessageType.CONSCIOUSNESS_EVENT, Map.of("i", 9), "a");
    await().atMost(Duration.ofSeconds(10)).until(() -> flaky.state() == AgentState.READY && !flaky.handled.isEmpty());
  }

  @Test
  void anAgentWhoseInitializationFailsIsInError() {
    NisAgent broken =
        new RecordingAgent(AgentConfiguration.of("broken", "x"), MessageType.SYSTEM_HEALTH) {
          @Override
          protected void initialize() {
            throw new IllegalStateException("no config");
          }
        };

    runtime.start(broken);

    assertThat(broken.state()).isEqualTo(AgentState.ERROR);
  }

  @Test
  void agentsKeepTheirOwnCachedState() {
    RecordingAgent first = agent("first", MessageType.SYSTEM_HEALTH);
    RecordingAgent second = agent("second", MessageType.SYSTEM_HEALTH);
    runtime.start(first);
    runtime.start(second);

    first.remember("agent_state", Map.of("current_task", "data_analysis", "progress", "measured"));

    assertThat(first.recall("agent_state")).contains(Map.of("current_task", "data_analysis", "progress", "measured"));
    assertThat(second.recall("agent_state")).isEmpty();
  }

  @Test
  void theDirectoryListsTheAgentsOfEveryInstanceAndForgetsSilentOnes() {
    runtime.start(agent("analysis_agent", MessageType.SIMULATION_RESULT));
    InMemoryMessageBus otherBus = InMemoryMessageBus.create();
    try (InfrastructureCoordinator other =
            InfrastructureCoordinator.create(CoordinatorConfig.defaults().withAutoRecovery(false), otherBus, cache, clock, scheduler);
        AgentRuntime otherRuntime = AgentRuntime.create(other, scheduler, "instance-b")) {
      otherRuntime.start(agent("memory_agent", MessageType.MEMORY_OPERATION));

      List<Map<String, Object>> directory = runtime.directory();

      assertThat(directory).extracting(e -> e.get("agent_id")).containsExactly("analysis_agent", "memory_agent");
      assertThat(directory.get(1))
          .containsEntry("instance", "instance-b")
          .containsEntry("agent_type", "analysis")
          .containsEntry("state", "ready")
          .containsEntry("subscriptions", List.of("memory_operation"))
          .containsKey("last_heartbeat");

      clock.advance(Duration.ofSeconds(31)); // three 10 s heartbeats missed (the scheduler runs on real time)
      assertThat(runtime.directory()).isEmpty();
      runtime.heartbeat(runtime.agent("analysis_agent").orElseThrow());
      assertThat(otherRuntime.directory()).extracting(e -> e.get("agent_id")).containsExactly("analysis_agent");
    } finally {
      otherBus.close();
    }
  }

  @Test
  void repliesAreNeverHandledAsMessagesEvenByAnAgentThatReadsCoordination() throws Exception {
    try (TwoPlanners planners = alignmentAndPlannersOnTwoInstances(MessageType.AGENT_COORDINATION)) {
      for (int i = 0; i < 10; i++) {
        NisMessage answer = planners.here().request(
            "alignment_agent", MessageType.ALIGNMENT_CHECK, Map.of("plan", "step-" + i), Duration.ofSeconds(10)).get();
        assertThat(answer.content()).containsEntry("checked", "step-" + i);
      }
      // Addressed as the replies are (same partition): handled after them. Its correlation_id is a
      // client's, for tracing: it is no reply, and is handled.
      coordinator.sendMessage(NisMessage.builder(MessageType.AGENT_COORDINATION, "someone")
          .targetAgent("planner").correlationId("job-42").content(Map.of("marker", true)).build());

      await().atMost(Duration.ofSeconds(10))
          .until(() -> planners.here().handled.size() + planners.there().handled.size() >= 1);
      List<NisMessage> handled = new ArrayList<>(planners.here().handled);
      handled.addAll(planners.there().handled);
      assertThat(handled).as("the requests' replies, on either instance").extracting(NisMessage::content)
          .containsExactly(Map.of("marker", true));
    }
  }

  @Test
  void anAgentMayAskItself() throws Exception {
    RecordingAgent alignment = agent("alignment_agent", MessageType.ALIGNMENT_CHECK);
    runtime.start(alignment);

    NisMessage answer =
        alignment.request("alignment_agent", MessageType.ALIGNMENT_CHECK, Map.of("plan", "mine"), Duration.ofSeconds(10)).get();

    assertThat(answer.content()).containsEntry("checked", "mine");
    assertThat(answer.sourceAgent()).isEqualTo("alignment_agent");
  }

  @Test
  void aHandlerThatOverranItsTimeKeepsItsTaskSlotUntilItReturns() {
    java.util.concurrent.atomic.AtomicBoolean release = new java.util.concurrent.atomic.AtomicBoolean();
    RecordingAgent stuck =
        new RecordingAgent(
            AgentConfiguration.of("stuck", "worker")
                .withProcessingTimeout(Duration.ofMillis(100)).withMaxConcurrentTasks(1).withMaxRetries(2),
            MessageType.GOAL_GENERATION) {
          @Override
          protected void handleMessage(NisMessage message) {
            mostAtOnce.accumulateAndGet(running.incrementAndGet(), Math::max);
            try {
              while (!release.get()) {
                sleepIgnoringInterrupts();
              }
            } finally {
              running.decrementAndGet();
            }
          }
        };
    runtime.start(stuck);
    try {
      coordinator.sendMessage(MessageType.GOAL_GENERATION, Map.of("goal", "never ends"), "a");

      await().atMost(Duration.ofSeconds(10)).until(() -> (Long) stuck.health().get("failed") >= 1); // overran once
      await().during(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(5))
          .until(() -> stuck.mostAtOnce.get() == 1); // its retries found no free slot
    } finally {
      release.set(true);
    }
  }

  @Test
  void anAgentWhoseStartFailsIsClosedAndNotListed() {
    InMemoryMessageBus closedBus = InMemoryMessageBus.create();
    closedBus.close();
    java.util.concurrent.atomic.AtomicBoolean shutDown = new java.util.concurrent.atomic.AtomicBoolean();
    NisAgent late =
        new RecordingAgent(AgentConfiguration.of("late", "x"), MessageType.MEMORY_OPERATION) {
          @Override
          protected void shutdown() {
            shutDown.set(true);
          }
        };
    try (InfrastructureCoordinator onClosedBus =
            InfrastructureCoordinator.create(CoordinatorConfig.defaults().withAutoRecovery(false), closedBus, cache, clock, scheduler);
        AgentRuntime lateRuntime = AgentRuntime.create(onClosedBus, scheduler, "instance-c")) {
      assertThatThrownBy(() -> lateRuntime.start(late)).isInstanceOf(org.nisprotocol.core.ClosedException.class);

      assertThat(lateRuntime.agent("late")).isEmpty();
      assertThat(late.state()).isEqualTo(AgentState.SHUTDOWN);
      assertThat(shutDown).as("its shutdown ran").isTrue();
      assertThat(lateRuntime.directory()).isEmpty();
    }
  }

  @Test
  void aHeartbeatThatFailsIsNotTheLast() {
    AtomicInteger healthCalls = new AtomicInteger();
    NisAgent flaky = new RecordingAgent(
        AgentConfiguration.of("flaky_health", "x").withHeartbeatInterval(Duration.ofMillis(50)), MessageType.SYSTEM_HEALTH) {
      @Override
      public Map<String, Object> health() {
        if (healthCalls.incrementAndGet() == 2) {
          throw new IllegalStateException("health failed once"); // the first scheduled heartbeat's
        }
        return super.health();
      }
    };

    runtime.start(flaky);

    await().atMost(Duration.ofSeconds(10)).until(() -> healthCalls.get() >= 4);
  }

  @Test
  void aDirectoryEntryThatIsNotAnObjectIsSkipped() {
    runtime.start(agent("analysis_agent", MessageType.SIMULATION_RESULT));
    cache.put(AgentRuntime.DIRECTORY_NAMESPACE, "written-by-hand", "null");

    assertThat(runtime.directory()).extracting(e -> e.get("agent_id")).containsExactly("analysis_agent");
  }

  @Test
  void aSimulationRequestWithBadParametersIsAnsweredAtOnceAndLeavesTheSimulatorHealthy() throws Exception {
    ScenarioSimulatorAgent simulator = new ScenarioSimulatorAgent(ScenarioSimulatorService.create(cache, bus));
    runtime.start(simulator);
    RecordingAgent planner = agent("planner", MessageType.GOAL_GENERATION);
    runtime.start(planner);

    for (int i = 0; i < NisAgent.DEGRADED_AFTER; i++) {
      NisMessage answer = planner.request(ScenarioSimulatorAgent.AGENT_ID, MessageType.AGENT_COORDINATION,
          Map.of("action", ScenarioSimulatorAgent.ACTION, "scenario_id", "s-" + i, "scenario_type", "no_such_type"),
          Duration.ofSeconds(10)).get();

      assertThat(answer.content()).containsEntry("success", false);
      assertThat((String) answer.content().get("error")).contains("no_such_type");
    }
    // The reply goes out from inside the handler: its bookkeeping ends just after.
    await().atMost(Duration.ofSeconds(10)).until(() -> simulator.health().get("in_flight").equals(0));
    assertThat(simulator.state()).isEqualTo(AgentState.READY);
    assertThat(simulator.health()).containsEntry("failed", 0L);
  }
}
