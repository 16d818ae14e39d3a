package org.nisprotocol.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

/**
 * Which errors of Kafka's consumer say a record's bytes are damaged (the subscription dead-letters
 * it and goes on), in the words of kafka-clients; KafkaFaultIT meets the real one.
 */
class UnreadableRecordTest {
  private static final TopicPartition PARTITION = new TopicPartition("agent-events", 1);

  private static KafkaException fetchError(TopicPartition partition, Throwable cause) {
    return new KafkaException("Received exception when fetching the next record from " + partition
        + ". If needed, please seek past the record to continue consumption.", cause);
  }

  @Test
  void aBatchOrRecordThatFailsItsChecksIsDamaged() {
    assertThat(KafkaSubscription.isUnreadableRecordOf(fetchError(PARTITION, new KafkaException(
        "Record batch for partition agent-events-1 at offset 12 is invalid, cause: Record is corrupt (stored crc = 1, computed crc = 2)")),
        PARTITION)).isTrue();
    assertThat(KafkaSubscription.isUnreadableRecordOf(fetchError(PARTITION, new KafkaException(
        "Record for partition agent-events-1 at offset 13 is invalid, cause: Record is corrupt")), PARTITION)).isTrue();
  }

  @Test
  void aRecordKafkaCouldNotDecompressIsNotDamaged() {
    // Reading it again fails the same way though the bytes are sound: not to be dead-lettered.
    assertThat(KafkaSubscription.isUnreadableRecordOf(fetchError(PARTITION,
        new KafkaException(new UnsatisfiedLinkError("no snappyjava in java.library.path"))), PARTITION)).isFalse();
    assertThat(KafkaSubscription.isUnreadableRecordOf(fetchError(PARTITION, null), PARTITION)).isFalse();
  }

  @Test
  void theErrorMustNameThisPartitionInBothTexts() {
    TopicPartition eleven = new TopicPartition("agent-events", 11);
    KafkaException ofEleven = fetchError(eleven, new KafkaException(
        "Record batch for partition agent-events-11 at offset 12 is invalid, cause: Record is corrupt"));
    assertThat(KafkaSubscription.isUnreadableRecordOf(ofEleven, PARTITION)).isFalse();
    assertThat(KafkaSubscription.isUnreadableRecordOf(ofEleven, eleven)).isTrue();
    assertThat(KafkaSubscription.isUnreadableRecordOf(fetchError(PARTITION, new KafkaException(
        "Record batch for partition agent-events-11 at offset 12 is invalid, cause: Record is corrupt")), PARTITION)).isFalse();
    assertThat(KafkaSubscription.isUnreadableRecordOf(new KafkaException("Record batch for partition agent-events-1 at offset 12"
        + " is invalid, cause: Record is corrupt"), PARTITION)).as("without the consumer's own text").isFalse();
  }
}
