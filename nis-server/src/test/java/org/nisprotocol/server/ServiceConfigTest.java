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
    assertThat(config.kafka()).isEmpty();
    assertThat(config.redis()).isEmpty();
  }

  @Test
  void anEmptyPortOrHostIsUnset() {
    ServiceConfig config = ServiceConfig.from(Map.of("NIS_PORT", "", "NIS_HOST", " "), List.of());

    assertThat(config.port()).isEqualTo(8000);
    assertThat(config.host()).isEqualTo(ServiceConfig.from(Map.of(), List.of()).host());
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

    assertThat(config.kafka()).hasValueSatisfying(kafka -> assertThat(kafka.bootstrapServers()).isEqualTo("kafka:9092"));
    assertThat(config.redis()).hasValueSatisfying(redis -> {
      assertThat(redis.host()).isEqualTo("redis");
      assertThat(redis.port()).isEqualTo(6380);
    });
  }

  @Test
  void theGuidesProductionKafkaSettingsMapOntoTheBus() {
    ServiceConfig config =
        ServiceConfig.from(
            Map.of(
                "KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092",
                "KAFKA_SECURITY_PROTOCOL", "SASL_SSL",
                "KAFKA_SASL_MECHANISM", "PLAIN",
                "KAFKA_SASL_USERNAME", "nis",
                "KAFKA_SASL_PASSWORD", "secret",
                "KAFKA_SSL_TRUSTSTORE_LOCATION", "/path/to/ca-cert.pem",
                "KAFKA_REPLICATION_FACTOR", "3",
                "KAFKA_MIN_INSYNC_REPLICAS", "2",
                "NIS_SPOOL_DIR", "/var/lib/nis/spool"),
            List.of());

    var kafka = config.kafka().orElseThrow();
    assertThat(kafka.securityProtocol()).isEqualTo("SASL_SSL");
    assertThat(kafka.saslMechanism()).contains("PLAIN");
    assertThat(kafka.saslUsername()).contains("nis");
    assertThat(kafka.sslTruststoreLocation()).contains(java.nio.file.Path.of("/path/to/ca-cert.pem"));
    assertThat(kafka.replicationFactor()).isEqualTo((short) 3);
    assertThat(kafka.minInsyncReplicas()).contains(2);
    assertThat(kafka.spoolDirectory()).isEqualTo(java.nio.file.Path.of("/var/lib/nis/spool"));
  }

  @Test
  void badKafkaSettingsAreReportedWithTheirNames() {
    assertThatThrownBy(
            () ->
                ServiceConfig.from(
                    Map.of(
                        "KAFKA_BOOTSTRAP_SERVERS", "k:9092",
                        "KAFKA_SECURITY_PROTOCOL", "SASL_SSL",
                        "KAFKA_TOPIC_PARTITIONS", "many"),
                    List.of()))
        .isInstanceOfSatisfying(
            ValidationException.class,
            e ->
                assertThat(e.problems())
                    .contains("KAFKA_TOPIC_PARTITIONS='many' is not a whole number")
                    .anyMatch(p -> p.contains("SASL_SSL needs a saslMechanism")));
  }

  @Test
  void everyBadValueIsReportedWithItsSource() {
    assertThatThrownBy(
            () -> ServiceConfig.from(Map.of("NIS_PORT", "eighty", "REDIS_HOST", "redis", "REDIS_PORT", "70000"), List.of("--verbose")))
        .isInstanceOfSatisfying(
            ValidationException.class,
            e ->
                assertThat(e.problems())
                    .hasSize(3)
                    .contains(
                        "unknown argument '--verbose' (accepted: --port N, --host ADDRESS)",
                        "NIS_PORT='eighty' is not a port number (0-65535)")
                    .anyMatch(p -> p.startsWith("Redis: ") && p.contains("70000")));
  }

  @Test
  void yesNoVariablesTakeTheUsualWordsAndRefuseOthers() {
    assertThat(ServiceConfig.from(Map.of("ENABLE_SELF_AUDIT", "0"), List.of()).selfAudit()).isFalse();
    assertThat(ServiceConfig.from(Map.of("ENABLE_SELF_AUDIT", "Off"), List.of()).selfAudit()).isFalse();
    assertThat(ServiceConfig.from(Map.of("ENABLE_SELF_AUDIT", "yes"), List.of()).selfAudit()).isTrue();
    assertThat(ServiceConfig.from(Map.of(), List.of()).selfAudit()).isTrue();
    Map<String, String> kafka = Map.of("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092", "NIS_SPOOL_FSYNC", "1");
    assertThat(ServiceConfig.from(kafka, List.of()).kafka().orElseThrow().spoolFsync()).isTrue();

    assertThatThrownBy(() -> ServiceConfig.from(Map.of("ENABLE_SELF_AUDIT", "maybe"), List.of()))
        .isInstanceOfSatisfying(ValidationException.class, e -> assertThat(e.problems())
            .containsExactly("ENABLE_SELF_AUDIT='maybe' is not true or false (nor 1/0, yes/no, on/off)"));
  }

  @Test
  void secondsOutsideTheirRangeAreRefusedWithTheRange() {
    assertThat(ServiceConfig.from(Map.of("NIS_HEALTH_CHECK_INTERVAL_SECONDS", "5"), List.of()).healthCheckInterval())
        .hasSeconds(5);
    assertThat(ServiceConfig.from(Map.of(), List.of()).shutdownDelay()).isZero();
    assertThat(ServiceConfig.from(Map.of("NIS_SHUTDOWN_DELAY_SECONDS", "10"), List.of()).shutdownDelay()).hasSeconds(10);
    assertThat(ServiceConfig.from(Map.of(), List.of()).maxMessageBytes()).isEqualTo(1_048_576);
    assertThat(ServiceConfig.from(Map.of("NIS_MAX_MESSAGE_BYTES", "2048"), List.of()).maxMessageBytes())
        .as("read without Kafka too: the embedded bus takes it")
        .isEqualTo(2048);
    assertThat(ServiceConfig.from(Map.of("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092", "NIS_MAX_MESSAGE_BYTES", "2048"), List.of())
            .kafka().orElseThrow().maxContentBytes())
        .isEqualTo(2048);
    assertThatThrownBy(() -> ServiceConfig.from(Map.of("NIS_MAX_MESSAGE_BYTES", "0"), List.of()))
        .isInstanceOfSatisfying(ValidationException.class, e -> assertThat(e.problems())
            .containsExactly("NIS_MAX_MESSAGE_BYTES='0' is not a positive number of bytes"));
    Map<String, String> env = Map.of(
        "KAFKA_BOOTSTRAP_SERVERS", "kafka:9092",
        "NIS_SHUTDOWN_TIMEOUT_SECONDS", "-5",
        "NIS_HEALTH_CHECK_INTERVAL_SECONDS", "9999999999999999",
        "NIS_SHUTDOWN_DELAY_SECONDS", "301");
    assertThatThrownBy(() -> ServiceConfig.from(env, List.of()))
        .isInstanceOfSatisfying(ValidationException.class, e -> assertThat(e.problems()).containsExactlyInAnyOrder(
            "NIS_SHUTDOWN_TIMEOUT_SECONDS='-5' is not a whole number of seconds from 1 to 3600",
            "NIS_HEALTH_CHECK_INTERVAL_SECONDS='9999999999999999' is not a whole number of seconds from 1 to 86400",
            "NIS_SHUTDOWN_DELAY_SECONDS='301' is not a whole number of seconds from 0 to 300"));
  }
}
