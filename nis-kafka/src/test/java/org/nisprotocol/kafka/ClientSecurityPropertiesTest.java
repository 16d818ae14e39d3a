package org.nisprotocol.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.config.types.Password;
import org.apache.kafka.common.security.JaasContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The SASL login and truststore settings the bus gives its Kafka clients. */
class ClientSecurityPropertiesTest {
  @TempDir Path directory;

  @Test
  void aPasswordWithQuotesAndBackslashesReachesKafkaAsItIs() {
    String password = "p\"a\\ss;word\" extra=\"1";

    String jaas = KafkaMessageBus.jaasConfig("SCRAM-SHA-512", "agent\"one", password);

    JaasContext context = JaasContext.loadClientContext(Map.of(SaslConfigs.SASL_JAAS_CONFIG, new Password(jaas)));
    var entry = context.configurationEntries().get(0);
    assertThat(entry.getLoginModuleName()).isEqualTo("org.apache.kafka.common.security.scram.ScramLoginModule");
    assertThat(entry.getOptions().get("username")).isEqualTo("agent\"one");
    assertThat(entry.getOptions().get("password")).isEqualTo(password);
  }

  @Test
  void aPemTruststoreIsKnownByItsContentWhateverItsName() throws Exception {
    Path bundle = Files.writeString(directory.resolve("ca-bundle"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    Path keystore = Files.write(directory.resolve("truststore.jks"), new byte[] {(byte) 0xfe, (byte) 0xed, (byte) 0xfe, (byte) 0xed, 0, 0, 0, 2});

    assertThat(KafkaMessageBus.isPem(bundle)).isTrue();
    assertThat(KafkaMessageBus.isPem(keystore)).isFalse();
    assertThat(KafkaMessageBus.isPem(directory.resolve("missing.pem"))).as("unreadable: by its name").isTrue();
  }
}
