package org.nisprotocol.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.ValidationException;

class ServiceConfigTest {

  @Test
  void nothingSetMeansPort8000AndEmbeddedBackends() {
    ServiceConfig config = ServiceConfig.from(Map.of(), List.of());

    assertThat(config.port()).isEqualTo(8000);
    assertThat(config.kafkaBootstrapServers()).isEmpty();
    assertThat(config.redisHost()).isEmpty();
  }

  @Test
  void theFlagWinsOverTheVariable() {
    assertThat(ServiceConfig.from(Map.of("NIS_PORT", "9000"), List.of()).port()).isEqualTo(9000);
    assertThat(ServiceConfig.from(Map.of("NIS_PORT", "9000"), List.of("--port", "9100")).port()).isEqualTo(9100);
    assertThat(ServiceConfig.from(Map.of(), List.of("--port=9200")).port()).isEqualTo(9200);
  }

  @Test
  void theRunbookVariablesChooseTheServers() {
    ServiceConfig config =
        ServiceConfig.from(
            Map.of("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092", "REDIS_HOST", "redis", "REDIS_PORT", "6380"),
            List.of());

    assertThat(config.kafkaBootstrapServers()).contains("kafka:9092");
    assertThat(config.redisHost()).contains("redis");
    assertThat(config.redisPort()).isEqualTo(6380);
  }

  @Test
  void everyBadValueIsReportedWithItsSource() {
    assertThatThrownBy(
            () -> ServiceConfig.from(Map.of("NIS_PORT", "eighty", "REDIS_PORT", "70000"), List.of("--verbose")))
        .isInstanceOfSatisfying(
            ValidationException.class,
            e ->
                assertThat(e.problems())
                    .containsExactlyInAnyOrder(
                        "unknown argument '--verbose' (accepted: --port N, --host ADDRESS)",
                        "NIS_PORT='eighty' is not a port number (0-65535)",
                        "REDIS_PORT='70000' is not a port number (0-65535)"));
  }
}
