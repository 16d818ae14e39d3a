package org.nisprotocol.embedded;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import org.nisprotocol.core.RetryPolicy;
import org.nisprotocol.core.ValidationException;

/**
 * Settings of the in-process message bus. Immutable; start from {@link #defaults()} and change
 * what you need with the {@code with...} methods.
 *
 * @param partitions partitions per topic: how many ordering keys a group handles at once (default
 *     {@value #DEFAULT_PARTITIONS})
 * @param capacity accepted messages held at most before publish waits (a handler's publish may go
 *     a tenth over it, at least one, without waiting; default {@value #DEFAULT_CAPACITY}); dead
 *     letters are never refused and do not count
 * @param publishTimeout how long publish waits for room in a full bus before failing (default 5 s)
 * @param retryPolicy redeliveries of a failed handler before the message is dead-lettered
 * @param shutdownTimeout how long close waits for accepted messages to be delivered (default 30 s)
 * @param maxMessageBytes the largest message accepted, as JSON (default 1 MiB, as on Kafka): a
 *     larger one is refused with {@link org.nisprotocol.core.MessageTooLargeException}
 */
public record InMemoryMessageBusConfig(
    int partitions,
    int capacity,
    Duration publishTimeout,
    RetryPolicy retryPolicy,
    Duration shutdownTimeout,
    int maxMessageBytes) {

  public static final int DEFAULT_PARTITIONS = 8;
  public static final int DEFAULT_CAPACITY = 100_000;
  public static final Duration DEFAULT_PUBLISH_TIMEOUT = Duration.ofSeconds(5);
  public static final Duration DEFAULT_SHUTDOWN_TIMEOUT = Duration.ofSeconds(30);
  public static final int DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

  /**
   * @throws ValidationException listing every field out of range
   */
  public InMemoryMessageBusConfig {
    Objects.requireNonNull(publishTimeout, "publishTimeout");
    Objects.requireNonNull(retryPolicy, "retryPolicy");
    Objects.requireNonNull(shutdownTimeout, "shutdownTimeout");
    List<String> problems = new ArrayList<>();
    if (partitions < 1 || partitions > 1024) {
      problems.add("partitions must be 1-1024, got " + partitions);
    }
    if (capacity < 1) {
      problems.add("capacity must be at least 1, got " + capacity);
    }
    if (publishTimeout.isNegative()) {
      problems.add("publishTimeout must not be negative, got " + publishTimeout);
    }
    if (shutdownTimeout.isNegative()) {
      problems.add("shutdownTimeout must not be negative, got " + shutdownTimeout);
    }
    if (maxMessageBytes < 1) {
      problems.add("maxMessageBytes must be at least 1, got " + maxMessageBytes);
    }
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
  }

  public static InMemoryMessageBusConfig defaults() {
    return new InMemoryMessageBusConfig(
        DEFAULT_PARTITIONS,
        DEFAULT_CAPACITY,
        DEFAULT_PUBLISH_TIMEOUT,
        RetryPolicy.defaults(),
        DEFAULT_SHUTDOWN_TIMEOUT,
        DEFAULT_MAX_MESSAGE_BYTES);
  }

  public InMemoryMessageBusConfig withPartitions(int partitions) {
    return new InMemoryMessageBusConfig(
        partitions, capacity, publishTimeout, retryPolicy, shutdownTimeout, maxMessageBytes);
  }

  public InMemoryMessageBusConfig withCapacity(int capacity) {
    return new InMemoryMessageBusConfig(
        partitions, capacity, publishTimeout, retryPolicy, shutdownTimeout, maxMessageBytes);
  }

  public InMemoryMessageBusConfig withPublishTimeout(Duration publishTimeout) {
    return new InMemoryMessageBusConfig(
        partitions, capacity, publishTimeout, retryPolicy, shutdownTimeout, maxMessageBytes);
  }

  public InMemoryMessageBusConfig withRetryPolicy(RetryPolicy retryPolicy) {
    return new InMemoryMessageBusConfig(
        partitions, capacity, publishTimeout, retryPolicy, shutdownTimeout, maxMessageBytes);
  }

  public InMemoryMessageBusConfig withShutdownTimeout(Duration shutdownTimeout) {
    return new InMemoryMessageBusConfig(
        partitions, capacity, publishTimeout, retryPolicy, shutdownTimeout, maxMessageBytes);
  }

  public InMemoryMessageBusConfig withMaxMessageBytes(int maxMessageBytes) {
    return new InMemoryMessageBusConfig(
        partitions, capacity, publishTimeout, retryPolicy, shutdownTimeout, maxMessageBytes);
  }
}
