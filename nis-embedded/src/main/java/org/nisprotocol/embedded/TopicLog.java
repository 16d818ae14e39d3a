package org.nisprotocol.embedded;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/** A topic: its partitions and the groups consuming it. */
final class TopicLog {
  final String name;
  final PartitionLog[] partitions;
  final List<GroupConsumer> consumers = new CopyOnWriteArrayList<>();

  TopicLog(String name, int partitionCount) {
    this.name = name;
    this.partitions = new PartitionLog[partitionCount];
    for (int i = 0; i < partitionCount; i++) {
      partitions[i] = new PartitionLog(i);
    }
  }

  PartitionLog partitionFor(String key) {
    int hash = key.hashCode();
    hash ^= hash >>> 16;
    hash *= 0x85ebca6b;
    hash ^= hash >>> 13;
    return partitions[Math.floorMod(hash, partitions.length)];
  }

  /** Wakes every consumer of every partition (after a membership change or on close). */
  void signalAll() {
    for (PartitionLog partition : partitions) {
      partition.signalAll();
    }
  }

  /**
   * Trims a partition up to the slowest active group. With no active group nothing is trimmed: the
   * messages wait for a subscriber. Caller holds the partition's lock; returns the permits freed.
   */
  int trim(PartitionLog partition) {
    long lowest = Long.MAX_VALUE;
    for (GroupConsumer consumer : consumers) {
      if (consumer.isActive()) {
        lowest = Math.min(lowest, consumer.cursor(partition.index));
      }
    }
    return lowest == Long.MAX_VALUE ? 0 : partition.trimBelow(lowest);
  }
}
