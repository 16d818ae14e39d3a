package org.nisprotocol.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.nisprotocol.testkit.KafkaBroker;
import org.nisprotocol.testkit.TestServers;

/** The real-broker harness works: records go through the shared broker, and an own broker survives faults. */
class KafkaHarnessSmokeIT {

    @Test
    void producesAndConsumesThroughTheSharedBroker() throws Exception {
        KafkaBroker broker = TestServers.kafka();
        String topic = "smoke-" + UUID.randomUUID();

        try (KafkaProducer<String, String> producer = producer(broker, Map.of())) {
            producer.send(new ProducerRecord<>(topic, "the-key", "the-value")).get(30, TimeUnit.SECONDS);
        }

        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers(),
                ConsumerConfig.GROUP_ID_CONFIG, "smoke-" + UUID.randomUUID(),
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName(),
                ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName()))) {
            consumer.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> records = pollUntilAny(consumer, Duration.ofSeconds(30));
            assertThat(records).hasSize(1);
            assertThat(records.getFirst().key()).isEqualTo("the-key");
            assertThat(records.getFirst().value()).isEqualTo("the-value");
        }
    }

    /** Fault injection happens on a broker of this class's own, never on the shared one. */
    @Nested
    @TestInstance(TestInstance.Lifecycle.PER_CLASS)
    class OwnBroker {

        private KafkaBroker broker;

        @BeforeAll
        void startOwnBroker() {
            broker = KafkaBroker.builder().name("faults").build();
            broker.start();
        }

        @AfterEach
        void leaveItRunning() {
            broker.resume();
            broker.start();
        }

        @AfterAll
        void closeOwnBroker() {
            broker.close();
        }

        @Test
        void aRecordAcknowledgedBeforeAKillIsThereAfterTheRestart() throws Exception {
            String topic = "durable-" + UUID.randomUUID();
            String bootstrapBefore = broker.bootstrapServers();
            try (KafkaProducer<String, String> producer = producer(broker, Map.of())) {
                producer.send(new ProducerRecord<>(topic, "k", "before the crash")).get(30, TimeUnit.SECONDS);
                producer.flush();
            }

            broker.kill();
            assertThat(broker.isRunning()).isFalse();
            broker.restart();
            assertThat(broker.isRunning()).isTrue();
            assertThat(broker.bootstrapServers()).isEqualTo(bootstrapBefore);

            try (KafkaConsumer<String, String> consumer = assignedConsumer(broker, topic)) {
                List<ConsumerRecord<String, String>> records = pollUntilAny(consumer, Duration.ofSeconds(30));
                assertThat(records).extracting(ConsumerRecord::key, ConsumerRecord::value)
                        .containsExactly(org.assertj.core.groups.Tuple.tuple("k", "before the crash"));
            }
        }

        @Test
        void aPausedBrokerTimesProducersOutAndServesThemAgainAfterResume() throws Exception {
            String topic = "paused-" + UUID.randomUUID();
            Map<String, Object> impatient = Map.of(
                    ProducerConfig.MAX_BLOCK_MS_CONFIG, 2_000,
                    ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 1_000,
                    ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 2_000,
                    ProducerConfig.LINGER_MS_CONFIG, 0);
            try (KafkaProducer<String, String> producer = producer(broker, impatient)) {
                // The topic is created on this first send; on a busy machine its metadata may take
                // longer than the impatient max.block, so the first write may need a few tries.
                for (int attempt = 1; ; attempt++) {
                    try {
                        producer.send(new ProducerRecord<>(topic, "k", "before the pause")).get(30, TimeUnit.SECONDS);
                        break;
                    } catch (java.util.concurrent.ExecutionException e) {
                        if (attempt == 10) {
                            throw e;
                        }
                    }
                }

                broker.pause();
                assertThat(broker.isRunning()).isTrue();
                assertThatThrownBy(() -> producer.send(new ProducerRecord<>(topic, "k", "during the pause"))
                        .get(10, TimeUnit.SECONDS))
                        .isInstanceOf(ExecutionException.class)
                        .cause().isInstanceOf(TimeoutException.class);
            }

            broker.resume();
            try (KafkaProducer<String, String> producer = producer(broker, Map.of())) {
                RecordMetadata sent = producer.send(new ProducerRecord<>(topic, "k", "after the pause"))
                        .get(30, TimeUnit.SECONDS);
                assertThat(sent.offset()).isPositive();
            }
        }
    }

    private static KafkaProducer<String, String> producer(KafkaBroker broker, Map<String, Object> overrides) {
        Map<String, Object> config = new java.util.HashMap<>(Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers(),
                ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName(),
                ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName()));
        config.putAll(overrides);
        return new KafkaProducer<>(config);
    }

    private static KafkaConsumer<String, String> assignedConsumer(KafkaBroker broker, String topic) {
        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers(),
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false,
                ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName(),
                ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName()));
        TopicPartition partition = new TopicPartition(topic, 0);
        consumer.assign(List.of(partition));
        consumer.seekToBeginning(List.of(partition));
        return consumer;
    }

    private static List<ConsumerRecord<String, String>> pollUntilAny(KafkaConsumer<String, String> consumer,
                                                                     Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        List<ConsumerRecord<String, String>> records = new ArrayList<>();
        while (records.isEmpty() && System.nanoTime() < deadline) {
            consumer.poll(Duration.ofMillis(200)).forEach(records::add);
        }
        return records;
    }
}
