package org.nisprotocol.agents;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.random.RandomGenerator;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.ValidationException;

class ScenarioSimulatorTest {
  private final ScenarioSimulator simulator = ScenarioSimulator.create();

  /**
   * 5 people × 2 m²/day × 30 days = 300 m² of a 1000 m² site: coverage 0.3. Base 0.9, weather
   * 0.1: p = 0.9 × 0.3 × 0.9 = 0.243. The productivity draws (±30 %) keep p below 1, so they
   * leave the mean at 0.243 exactly.
   */
  private static final double KNOWN_ANSWER = 0.9 * 0.3 * (1 - 0.1);

  private static SimulationRequest.Builder knownScenario(long seed) {
    return SimulationRequest.builder("site_" + seed, ScenarioType.ARCHAEOLOGICAL_EXCAVATION)
        .timeHorizon(30)
        .resourceConstraint("team_size", 5)
        .resourceConstraint("daily_rate", 2)
        .resourceConstraint("site_area", 1000)
        .environmentalFactor("weather", 0.1)
        .uncertaintyFactor("productivity", 0.3)
        .seed(seed);
  }

  @Test
  void theSameSeedGivesTheSameResult() {
    SimulationResult first = simulator.run(knownScenario(42).build());
    SimulationResult second = simulator.run(knownScenario(42).build());
    SimulationResult other = simulator.run(knownScenario(43).build());

    assertThat(second).isEqualTo(first);
    assertThat(other.successes()).isNotEqualTo(first.successes());
  }

  @Test
  void withoutASeedOneIsDerivedFromTheInputs() {
    SimulationRequest a = SimulationRequest.builder("a", ScenarioType.GENERIC).timeHorizon(10).build();
    SimulationRequest b = SimulationRequest.builder("b", ScenarioType.GENERIC).timeHorizon(10).build();
    SimulationRequest c = SimulationRequest.builder("c", ScenarioType.GENERIC).timeHorizon(11).build();

    assertThat(a.parameters().seed()).isEqualTo(b.parameters().seed());
    assertThat(c.parameters().seed()).isNotEqualTo(a.parameters().seed());
    assertThat(simulator.run(a).withScenarioId("b")).isEqualTo(simulator.run(b));
  }

  @Test
  void the95PercentIntervalContainsTheKnownAnswerForAtLeast90PercentOf200Seeds() {
    int contained = 0;
    double sumOfEstimates = 0;
    long iterations = 0;
    for (long seed = 1; seed <= 200; seed++) {
      SimulationResult result = simulator.run(knownScenario(seed).build());
      if (result.confidenceLow() <= KNOWN_ANSWER && KNOWN_ANSWER <= result.confidenceHigh()) {
        contained++;
      }
      sumOfEstimates += result.successes();
      iterations += result.iterationsRun();
    }

    assertThat(contained).isGreaterThanOrEqualTo(180);
    // all runs pooled: the estimate is within 4 standard errors of the answer
    double pooled = sumOfEstimates / iterations;
    double standardError = Math.sqrt(KNOWN_ANSWER * (1 - KNOWN_ANSWER) / iterations);
    assertThat(pooled).isCloseTo(KNOWN_ANSWER, within(4 * standardError));
  }

  @Test
  void the90PercentIntervalIsNarrowerAndStillCoversAbout90Percent() {
    int contained = 0;
    for (long seed = 1; seed <= 200; seed++) {
      SimulationResult at90 = simulator.run(knownScenario(seed).confidenceLevel(0.90).build());
      SimulationResult at95 = simulator.run(knownScenario(seed).build());
      assertThat(at90.confidenceHigh() - at90.confidenceLow())
          .isLessThan(at95.confidenceHigh() - at95.confidenceLow());
      if (at90.confidenceLow() <= KNOWN_ANSWER && KNOWN_ANSWER <= at90.confidenceHigh()) {
        contained++;
      }
    }
    assertThat(contained).isBetween(160, 195);
  }

  @Test
  void anExcavationShortOfCapacityScalesByCapacityOverArea() {
    SimulationRequest request =
        SimulationRequest.builder("short", ScenarioType.ARCHAEOLOGICAL_EXCAVATION)
            .resourceConstraint("team_size", 5)
            .resourceConstraint("site_area", 1000)
            .seed(7)
            .build();
    SimulationResult result = simulator.run(request);

    // 5 people x 2 m2/day x 30 days = 300 m2 of 1000: the base 0.9 scales by 0.3
    assertThat(ScenarioType.ARCHAEOLOGICAL_EXCAVATION.model().expectedProbability(
        request.parameters())).isCloseTo(0.9 * 0.3, within(1e-12));
    assertThat(result.confidenceLow()).isLessThan(0.27);
    assertThat(result.confidenceHigh()).isGreaterThan(0.27);
    assertThat(result.riskFactors())
        .anySatisfy(risk -> assertThat(risk)
            .isEqualTo("capacity shortfall: team_size 5 x daily_rate 2 x 30 days = 300 covers 30% "
                + "of site_area 1000"));
    assertThat(result.recommendations().get(0)).startsWith("Re-plan before proceeding");
    assertThat(result.recommendations())
        .contains("Cover the full site_area (1000): raise team_size to 17 or extend time_horizon "
            + "to 100 days.");
  }

  @Test
  void anExcavationWithEnoughCapacityKeepsTheBaseProbability() {
    SimulationRequest request =
        SimulationRequest.builder("enough", ScenarioType.ARCHAEOLOGICAL_EXCAVATION)
            .resourceConstraint("team_size", 20)
            .resourceConstraint("site_area", 1000)
            .seed(7)
            .build();
    SimulationResult result = simulator.run(request);

    assertThat(ScenarioType.ARCHAEOLOGICAL_EXCAVATION.model().expectedProbability(
        request.parameters())).isEqualTo(0.9);
    assertThat(result.successProbability()).isGreaterThan(0.8);
    assertThat(result.recommendations().get(0)).startsWith("Proceed as planned");
    assertThat(result.riskFactors()).noneMatch(risk -> risk.startsWith("capacity shortfall"));
  }

  @Test
  void theFirstRecommendationFollowsTheThresholds() {
    for (double weather = 0; weather < 1; weather += 0.05) {
      SimulationResult result =
          simulator.run(
              SimulationRequest.builder("w", ScenarioType.RESOURCE_ALLOCATION)
                  .environmentalFactor("weather", weather)
                  .seed(3)
                  .build());
      String first = result.recommendations().get(0);
      double p = result.successProbability();
      if (p >= 0.8) {
        assertThat(first).startsWith("Proceed as planned");
      } else if (p >= 0.6) {
        assertThat(first).startsWith("Proceed with mitigation");
      } else {
        assertThat(first).startsWith("Re-plan before proceeding");
      }
    }
  }

  @Test
  void defaultIterationsAre1000ForExcavationsAnd500Otherwise() {
    assertThat(SimulationRequest.builder("x", ScenarioType.ARCHAEOLOGICAL_EXCAVATION).build()
        .parameters().iterations()).isEqualTo(1000);
    for (ScenarioType type : List.of(ScenarioType.ENVIRONMENTAL_ASSESSMENT,
        ScenarioType.CULTURAL_PRESERVATION, ScenarioType.RESOURCE_ALLOCATION, ScenarioType.GENERIC)) {
      assertThat(SimulationRequest.builder("x", type).build().parameters().iterations())
          .isEqualTo(500);
    }
  }

  @Test
  void aSteadyRunConvergesAtTheThirdCheck() {
    SimulationResult result = simulator.run(knownScenario(5).build());

    assertThat(result.converged()).isTrue();
    assertThat(result.iterationsRun()).isEqualTo(300);
    assertThat(result.successProbability())
        .isEqualTo(result.successes() / (double) result.iterationsRun());
  }

  @Test
  void aDriftingRunDoesNotConvergeAndRunsEveryIteration() {
    // p = 0.75 for the generic type; draws 0.0 succeed, 0.99 fail: batches alternate 1.0 and 0.0
    RandomGenerator drifting =
        new RandomGenerator() {
          private long calls;

          @Override
          public long nextLong() {
            throw new UnsupportedOperationException();
          }

          @Override
          public double nextDouble() {
            return (calls++ / 100) % 2 == 0 ? 0.0 : 0.99;
          }
        };
    SimulationRequest request =
        SimulationRequest.builder("drift", ScenarioType.GENERIC).iterations(800).build();

    SimulationResult result = simulator.run(request, drifting);

    assertThat(result.converged()).isFalse();
    assertThat(result.iterationsRun()).isEqualTo(800);
    assertThat(result.successes()).isEqualTo(400);
    assertThat(result.riskFactors()).contains("the estimate did not converge within 800 iterations");
  }

  @Test
  void fewerIterationsThanTheChecksNeedRunAll() {
    SimulationResult result =
        simulator.run(SimulationRequest.builder("few", ScenarioType.GENERIC).iterations(150).build());

    assertThat(result.iterationsRun()).isEqualTo(150);
    assertThat(result.converged()).isFalse();
  }

  @Test
  void wilsonIntervalsMatchTheFormula() {
    double[] half = Statistics.wilson(50, 100, 1.96);
    assertThat(half[0]).isCloseTo(0.40383, within(1e-5));
    assertThat(half[1]).isCloseTo(0.59617, within(1e-5));
    double[] none = Statistics.wilson(0, 10, 1.96);
    assertThat(none[0]).isEqualTo(0.0);
    assertThat(none[1]).isCloseTo(0.277540, within(1e-6));
    double[] all = Statistics.wilson(10, 10, 1.96);
    assertThat(all[1]).isEqualTo(1.0);
    assertThat(all[0]).isCloseTo(0.722460, within(1e-6));
  }

  @Test
  void zIs196At95PercentAnd1645At90AndExactElsewhere() {
    assertThat(Statistics.zFor(0.95)).isEqualTo(1.96);
    assertThat(Statistics.zFor(0.90)).isEqualTo(1.645);
    assertThat(Statistics.zFor(0.99)).isCloseTo(2.5758293, within(1e-6));
    assertThat(Statistics.zFor(0.80)).isCloseTo(1.2815516, within(1e-6));
  }

  @Test
  void everyProblemOfARequestIsReportedAtOnce() {
    Map<String, Object> parameters = new LinkedHashMap<>();
    parameters.put("time_horizon", -1);
    parameters.put("iterations", 0);
    parameters.put("confidence_level", 1.5);
    parameters.put("environmental_factors", Map.of("flood", 2));
    parameters.put("uncertainty_factors", Map.of("cost", "high"));
    parameters.put("resource_constraints", Map.of("site_area", 0));
    parameters.put("seed", 1.5);
    parameters.put("iteratoins", 100);
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("scenario_type", "archaeological_excavation");
    body.put("parameters", parameters);

    assertThatThrownBy(() -> SimulationRequest.fromJson(body))
        .isInstanceOfSatisfying(ValidationException.class, e -> assertThat(e.problems())
            .anySatisfy(p -> assertThat(p).contains("scenario_id is required"))
            .anySatisfy(p -> assertThat(p).contains("time_horizon must be > 0").contains("-1"))
            .anySatisfy(p -> assertThat(p).contains("iterations must be between 1").contains("0"))
            .anySatisfy(p -> assertThat(p).contains("confidence_level").contains("1.5"))
            .anySatisfy(p -> assertThat(p).contains("environmental_factors.flood").contains("2"))
            .anySatisfy(p -> assertThat(p).contains("uncertainty_factors.cost").contains("high"))
            .anySatisfy(p -> assertThat(p).contains("resource_constraints.site_area"))
            .anySatisfy(p -> assertThat(p).contains("seed must be a whole number").contains("1.5"))
            .anySatisfy(p -> assertThat(p).contains("unknown parameter 'iteratoins'"))
            .hasSize(9));
    assertThatThrownBy(
            () -> SimulationRequest.fromJson(Map.of("scenario_id", "x", "scenario_type", "MARS")))
        .hasMessageContaining("unknown scenario_type 'MARS'")
        .hasMessageContaining("archaeological_excavation");
    assertThatThrownBy(() -> SimulationRequest.builder("x", ScenarioType.GENERIC)
            .timeHorizon(5).resolution(6).build())
        .hasMessageContaining("resolution must be > 0 and <= time_horizon (5.0), got 6.0");
    assertThatThrownBy(() -> SimulationRequest.builder("x", ScenarioType.GENERIC)
            .timeHorizon(30).resolution(1e-310).build())
        .hasMessageContaining("resolution 1.0E-310 makes more than 1000000 steps of time_horizon 30.0");
  }

  @Test
  void aJsonRequestEqualsTheBuiltOne() {
    Map<String, Object> body =
        Map.of(
            "scenario_id", "archaeological_site_001",
            "scenario_type", "archaeological_excavation",
            "parameters", Map.of(
                "time_horizon", 45,
                "iterations", 2000.0,
                "seed", 12345,
                "resource_constraints", Map.of("team_size", 8, "site_area", 1200.5),
                "environmental_factors", Map.of("weather", 0.2)));

    SimulationRequest parsed = SimulationRequest.fromJson(body);

    assertThat(parsed)
        .isEqualTo(
            SimulationRequest.builder("archaeological_site_001", ScenarioType.ARCHAEOLOGICAL_EXCAVATION)
                .timeHorizon(45)
                .iterations(2000)
                .seed(12345)
                .resourceConstraint("team_size", 8)
                .resourceConstraint("site_area", 1200.5)
                .environmentalFactor("weather", 0.2)
                .build());
  }

  @Test
  void theCacheKeyIsTheHashOfTheCanonicalInputs() {
    SimulationRequest a =
        SimulationRequest.builder("one", ScenarioType.GENERIC)
            .resourceConstraint("workers", 2).resourceConstraint("rate", 3).seed(9).build();
    SimulationRequest sameInputs =
        SimulationRequest.builder("two", ScenarioType.GENERIC)
            .resourceConstraint("rate", 3.0).resourceConstraint("workers", 2)
            .timeHorizon(30).iterations(500).confidenceLevel(0.95).seed(9).build();
    SimulationRequest otherSeed =
        SimulationRequest.builder("one", ScenarioType.GENERIC)
            .resourceConstraint("workers", 2).resourceConstraint("rate", 3).seed(10).build();

    assertThat(a.cacheKey()).matches("[0-9a-f]{64}").isEqualTo(sameInputs.cacheKey());
    assertThat(otherSeed.cacheKey()).isNotEqualTo(a.cacheKey());
    assertThat(CanonicalJson.of(a.scenarioType(), a.parameters(), true))
        .isEqualTo("{\"parameters\":{\"confidence_level\":0.95,\"environmental_factors\":{},"
            + "\"iterations\":500,\"resolution\":1.0,\"resource_constraints\":{\"rate\":3.0,"
            + "\"workers\":2.0},\"seed\":9,\"time_horizon\":30.0,\"uncertainty_factors\":{}},"
            + "\"scenario_type\":\"generic\"}");
    assertThat(a.cacheKey()).isEqualTo(CanonicalJson.sha256Hex(
        CanonicalJson.of(a.scenarioType(), a.parameters(), true)));
  }

  @Test
  void resultsSurviveTheirJsonForm() {
    SimulationResult result = simulator.run(knownScenario(11).build());

    assertThat(SimulationResult.fromJson(result.toJson())).isEqualTo(result);
    assertThat(result.toJson())
        .containsEntry("success_probability", result.successProbability())
        .containsEntry("confidence_interval", List.of(result.confidenceLow(), result.confidenceHigh()))
        .containsEntry("iterations_run", 300)
        .containsEntry("converged", true)
        .containsKeys("recommendations", "risk_factors", "parameters");
  }

  @Test
  void recommendationsAndRisksPassTheSelfAudit() {
    SelfAuditEngine audit = SelfAuditEngine.create();
    SimulationResult result = simulator.run(knownScenario(1).iterations(150).build());

    assertThat(result.recommendations()).hasSizeGreaterThan(2);
    assertThat(result.riskFactors()).hasSizeGreaterThan(2);
    assertThat(audit.auditContent(result.toJson()).violations()).isEmpty();
  }
}
