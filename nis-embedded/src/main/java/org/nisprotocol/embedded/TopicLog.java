package org.nisprotocol.embedded;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;

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
   * Trims a partition up to the slowest of its groups, those without an open subscription
   * included: such a group keeps its place and what it has not taken (see {@link #release}). With
   * no group nothing is trimmed: the messages wait for a subscriber. Caller holds the partition's
   * lock; returns the permits freed.
   */
  int trim(PartitionLog partition) {
    long lowest = lowestCursor(partition, consumer -> true);
    return lowest == Long.MAX_VALUE ? 0 : partition.trimBelow(lowest);
  }

  /** The lowest cursor on the partition of the groups that match; Long.MAX_VALUE when none does. */
  private long lowestCursor(PartitionLog partition, Predicate<GroupConsumer> which) {
    long lowest = Long.MAX_VALUE;
    for (GroupConsumer consumer : consumers) {
      if (which.test(consumer)) {
        lowest = Math.min(lowest, consumer.cursor(partition.index));
      }
    }
    return lowest;
  }

  /**
   * When the bus is full: releases the entries that only groups without an open subscription still
   * hold, up to the slowest group with one (as Kafka's retention would), and logs what each such
   * group loses. Entries no open group has taken stay. Caller holds the partition's lock; returns
   * the permits freed.
   */
  int release(PartitionLog partition) {
    long lowestActive = lowestCursor(partition, GroupConsumer::isActive);
    if (lowestActive == Long.MAX_VALUE || lowestActive <= partition.baseOffset()) {
      return 0;
    }
    for (GroupConsumer consumer : consumers) {
      long from = Math.max(consumer.cursor(partition.index), partition.baseOffset());
      if (!consumer.isActive() && from < lowestActive) {
        consumer.lost(lowestActive - from, name, partition.index);
      }
    }
    return partition.trimBelow(lowestActive);
  }
}
