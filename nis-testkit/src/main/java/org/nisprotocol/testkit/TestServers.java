package org.nisprotocol.testkit;

/**
 * One Kafka broker and one Redis server per test JVM, started on first use and shared by every test in it.
 *
 * <p>Use these for tests that only need a working server. Give each test its own topics, keys or key prefix, since
 * other tests use the same server. <strong>Never kill, pause, stop, restart or close a shared server</strong>: a
 * test that injects faults creates its own {@link KafkaBroker} or {@link RedisServer} and closes it.
 *
 * <p>The shared servers end with the JVM: a shutdown hook stops them and deletes their directories (Redis is
 * killed, since it holds only test data; Kafka is stopped gracefully, which takes well under a second and lets it
 * record the class data archive that makes later brokers start faster, see {@code ClassDataArchive}). If the JVM
 * dies without running its hooks (SIGKILL), the watchdog that runs beside every server process kills the server
 * and deletes its directory within about two seconds (see {@code ServerProcess}).
 */
public final class TestServers {

    private static KafkaBroker kafka;
    private static RedisServer redis;
    private static boolean hookRegistered;

    private TestServers() {
    }

    /** The shared, running Kafka broker; started on the first call (which takes a few seconds). */
    public static synchronized KafkaBroker kafka() {
        if (kafka == null) {
            // Never killed (faults happen on brokers of their own), so it takes Kafka's default 9 s
            // session, not the harness's quick 3 s: a machine that pauses for seconds must not get
            // it fenced by its controller.
            KafkaBroker broker = KafkaBroker.builder()
                    .name("shared-kafka")
                    .brokerProperty("broker.session.timeout.ms", "9000")
                    .brokerProperty("broker.heartbeat.interval.ms", "2000")
                    .build();
            registerShutdownHook();
            kafka = broker;
        }
        kafka.start();
        return kafka;
    }

    /** The shared, running Redis server (no password); started on the first call. */
    public static synchronized RedisServer redis() {
        if (redis == null) {
            RedisServer server = RedisServer.builder().name("shared-redis").build();
            registerShutdownHook();
            redis = server;
        }
        redis.start();
        return redis;
    }

    private static void registerShutdownHook() {
        if (!hookRegistered) {
            Runtime.getRuntime().addShutdownHook(new Thread(TestServers::shutDown, "nis-testkit-shutdown"));
            hookRegistered = true;
        }
    }

    private static void shutDown() {
        KafkaBroker k;
        RedisServer r;
        synchronized (TestServers.class) {
            k = kafka;
            r = redis;
        }
        if (k != null) {
            k.close();
        }
        if (r != null) {
            r.killAndClose();
        }
    }
}
