package org.nisprotocol.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.NotLeaderOrFollowerException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.errors.UnknownProducerIdException;
import org.junit.jupiter.api.Test;

/** Which send failures the bus spools (they may pass) and which it reports to the caller. */
class TransientSendErrorsTest {
  @Test
  void aBrokenIdempotentSequenceIsSpooledNotRefused() {
    // The broker did not write the record; refused, the caller would lose a message it could send later.
    assertThat(KafkaMessageBus.isTransient(new OutOfOrderSequenceException("sequence 7, expected 5"))).isTrue();
    assertThat(KafkaMessageBus.isTransient(new UnknownProducerIdException("producer id 42 unknown"))).isTrue();
    assertThat(KafkaMessageBus.isTransient(new InvalidProducerEpochException("epoch 3 is stale"))).isTrue();
  }

  @Test
  void outagesAreSpooled() {
    assertThat(KafkaMessageBus.isTransient(new TimeoutException("no acknowledgement in 30 s"))).isTrue();
    assertThat(KafkaMessageBus.isTransient(new NotLeaderOrFollowerException("leader moved"))).isTrue();
    assertThat(KafkaMessageBus.isTransient(new KafkaException("send failed", new IOException("connection reset")))).isTrue();
  }

  @Test
  void refusalsReachTheCaller() {
    assertThat(KafkaMessageBus.isTransient(new RecordTooLargeException("2 MiB"))).isFalse();
    assertThat(KafkaMessageBus.isTransient(new TopicAuthorizationException("not allowed"))).isFalse();
    assertThat(KafkaMessageBus.isTransient(new KafkaException("producer closed"))).isFalse();
  }
}
