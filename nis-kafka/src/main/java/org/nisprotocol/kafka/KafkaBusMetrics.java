package org.nisprotocol.kafka;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * The Kafka bus's meters, named {@code nis.messages.*}, {@code nis.spool.*}, {@code nis.consumer.lag},
 * {@code nis.consumer.errors}, {@code nis.consumer.handlers.overdue}.
 */
final class KafkaBusMetrics {
  final Counter sent;
  final Counter spooled;
  final Counter failed;
  final Counter received;
  final Counter retried;
  final Counter deadLettered;
  final Counter deadLetterFailures;
  final Timer sendLatency;
  final Timer endToEndLatency;
  private final MeterRegistry registry;
  private final ConcurrentHashMap<String, AtomicLong> lagByGroup = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<String, AtomicLong> overdueByGroup = new ConcurrentHashMap<>();

  KafkaBusMetrics(MeterRegistry registry, Supplier<Number> spoolRecords, Supplier<Number> spoolBytes) {
    this.registry = registry;
    sent = Counter.builder("nis.messages.sent").description("messages acknowledged by Kafka").register(registry);
    spooled = Counter.builder("nis.messages.spooled").description("messages kept in the local spool").register(registry);
    failed = Counter.builder("nis.messages.failed").description("publishes refused, and handler failures").register(registry);
    received = Counter.builder("nis.messages.received").description("messages handled successfully").register(registry);
    retried = Counter.builder("nis.messages.retried").description("redeliveries after a handler failed").register(registry);
    deadLettered = Counter.builder("nis.messages.dead_lettered").description("messages moved to a dead-letter topic").register(registry);
    deadLetterFailures = Counter.builder("nis.messages.dead_letter_failures")
        .description("dead-letter writes that failed, each tried again")
        .register(registry);
    sendLatency =
        Timer.builder("nis.messages.send.latency")
            .description("publish to broker acknowledgement")
            .publishPercentileHistogram()
            .register(registry);
    endToEndLatency =
        Timer.builder("nis.messages.end_to_end.latency")
            .description("message timestamp to handler start")
            .publishPercentileHistogram()
            .register(registry);
    Gauge.builder("nis.spool.size", spoolRecords).description("messages waiting in the spool").register(registry);
    Gauge.builder("nis.spool.bytes", spoolBytes).description("bytes waiting in the spool").register(registry);
  }

  /**
   * The count of a consumer group's consumer errors on this instance (each one tried again after a
   * wait): a group that is full or not authorized, a failed commit.
   */
  Counter consumerErrorsOf(String group) {
    return Counter.builder("nis.consumer.errors")
        .description("consumer errors, each tried again after a wait")
        .tag("group", group)
        .register(registry);
  }

  /** Removes a group's meters (lag, errors, overdue handlers), once the bus has deleted the group. */
  void forgetGroup(String group) {
    lagByGroup.remove(group);
    overdueByGroup.remove(group);
    for (String name : List.of("nis.consumer.lag", "nis.consumer.errors", OVERDUE)) {
      registry.find(name).tag("group", group).meters().forEach(registry::remove);
    }
  }

  /** The lag gauge of a consumer group on this instance (records behind the end of its partitions). */
  AtomicLong lagOf(String group) {
    return groupGauge(lagByGroup, "nis.consumer.lag", "records behind the end of the group's partitions", group);
  }

  private static final String OVERDUE = "nis.consumer.handlers.overdue";

  /** The gauge of a consumer group's handlers on this instance that have run past the long-handler warning. */
  AtomicLong overdueHandlersOf(String group) {
    return groupGauge(overdueByGroup, OVERDUE, "handlers running longer than the long-handler warning", group);
  }

  private AtomicLong groupGauge(
      ConcurrentHashMap<String, AtomicLong> byGroup, String name, String description, String group) {
    return byGroup.computeIfAbsent(
        group,
        g -> {
          AtomicLong value = new AtomicLong();
          Gauge.builder(name, value, AtomicLong::get).description(description).tag("group", g).register(registry);
          return value;
        });
  }
}
