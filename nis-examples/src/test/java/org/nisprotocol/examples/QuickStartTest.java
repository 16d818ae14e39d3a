package org.nisprotocol.examples;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class QuickStartTest {
  @Test
  void theQuickStartRunsToTheEnd() throws Exception {
    ByteArrayOutputStream output = new ByteArrayOutputStream();

    QuickStart.run(new PrintStream(output, true, StandardCharsets.UTF_8));

    String printed = output.toString(StandardCharsets.UTF_8);
    assertThat(printed).contains("Retrieved: {setting=value}");
    assertThat(printed).containsPattern("Success probability: 0\\.\\d+");
    assertThat(printed).containsPattern("Confidence interval: \\[0\\.\\d+, 0\\.\\d+\\]");
    assertThat(printed).contains("Integration status: fully_operational");
  }
}
