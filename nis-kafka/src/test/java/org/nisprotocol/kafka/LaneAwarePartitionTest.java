package org.nisprotocol.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.apache.kafka.common.utils.Utils;

class LaneAwarePartitionTest {

  @Property
  void urgentRecordsAndOnlyThemGoToTheLastPartition(
      @ForAll @IntRange(min = 2, max = 128) int partitions, @ForAll String key, @ForAll boolean keyless) {
    byte[] bytes = keyless ? null : key.getBytes(StandardCharsets.UTF_8);

    assertThat(KafkaMessageBus.laneAwarePartition(partitions, bytes, true)).isEqualTo(partitions - 1);
    assertThat(KafkaMessageBus.laneAwarePartition(partitions, bytes, false)).isBetween(0, partitions - 2);
  }

  @Property
  void aKeyAlwaysGetsKafkasHashOverTheOtherPartitions(
      @ForAll @IntRange(min = 2, max = 128) int partitions, @ForAll String key) {
    byte[] bytes = key.getBytes(StandardCharsets.UTF_8);

    // What README tells other clients to compute to keep a key's order with the bus's messages.
    assertThat(KafkaMessageBus.laneAwarePartition(partitions, bytes, false))
        .isEqualTo(Utils.toPositive(Utils.murmur2(bytes)) % (partitions - 1));
  }

  @Property
  void aTopicOfOnePartitionHasNoLanes(@ForAll String key, @ForAll boolean urgent) {
    assertThat(KafkaMessageBus.laneAwarePartition(1, key.getBytes(StandardCharsets.UTF_8), urgent)).isZero();
  }
}
