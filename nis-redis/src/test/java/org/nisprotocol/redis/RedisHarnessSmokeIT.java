package org.nisprotocol.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisCommandTimeoutException;
import io.lettuce.core.RedisConnectionException;
import io.lettuce.core.RedisException;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import java.time.Duration;
import java.util.Optional;
import java.util.UUID;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.nisprotocol.testkit.RedisServer;
import org.nisprotocol.testkit.TestServers;

/** The real-server harness works: the shared server answers Lettuce, and own servers take passwords and faults. */
class RedisHarnessSmokeIT {

    private static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(2);

    @Test
    void setsAndGetsAKeyOnTheSharedServer() {
        RedisServer redis = TestServers.redis();
        String key = "smoke:" + UUID.randomUUID();

        String value = withConnection(redis, redis.password(), connection -> {
            connection.sync().set(key, "the-value");
            return connection.sync().get(key);
        });

        assertThat(value).isEqualTo("the-value");
        assertThat(TestServers.redis()).isSameAs(redis);
    }

    @Test
    void aPasswordProtectedServerServesOnlyTheRightPassword() {
        try (RedisServer redis = RedisServer.builder().name("auth").password("s3cret-pw").build()) {
            redis.start();
            assertThat(redis.password()).contains("s3cret-pw");

            String value = withConnection(redis, Optional.of("s3cret-pw"), connection -> {
                connection.sync().set("k", "v");
                return connection.sync().get("k");
            });
            assertThat(value).isEqualTo("v");

            assertThatThrownBy(() -> withConnection(redis, Optional.empty(), c -> c.sync().get("k")))
                    .isInstanceOf(RedisException.class)
                    .satisfies(e -> assertThat(messages(e)).contains("NOAUTH"));
            assertThatThrownBy(() -> withConnection(redis, Optional.of("wrong-pw"), c -> c.sync().get("k")))
                    .isInstanceOf(RedisException.class)
                    .satisfies(e -> assertThat(messages(e)).containsAnyOf("WRONGPASS", "invalid password"));
        }
    }

    @Test
    void anOwnServerStopsRestartsAndComesBackAfterAKill() {
        try (RedisServer redis = RedisServer.builder().name("restarts").build()) {
            redis.start();
            int port = redis.port();
            assertThat(ping(redis)).isEqualTo("PONG");

            redis.stop();
            assertThat(redis.isRunning()).isFalse();
            assertThatThrownBy(() -> ping(redis)).isInstanceOf(RedisConnectionException.class);

            redis.restart();
            assertThat(redis.isRunning()).isTrue();
            assertThat(redis.port()).isEqualTo(port);
            assertThat(ping(redis)).isEqualTo("PONG");

            redis.kill();
            assertThat(redis.isRunning()).isFalse();
            redis.start();
            assertThat(ping(redis)).isEqualTo("PONG");
        }
    }

    @Test
    void aPausedServerTimesCommandsOutAndAnswersAgainAfterResume() {
        try (RedisServer redis = RedisServer.builder().name("pauses").build()) {
            redis.start();
            // Only the command sent while paused runs with a short timeout: the others must not
            // time out on a pause of this JVM.
            RedisClient client = RedisClient.create(uri(redis, Optional.empty(), Duration.ofSeconds(10)));
            try (StatefulRedisConnection<String, String> connection = client.connect()) {
                connection.sync().set("k", "before");

                redis.pause();
                assertThat(redis.isRunning()).isTrue();
                connection.setTimeout(Duration.ofMillis(500));
                assertThatThrownBy(() -> connection.sync().set("k", "during"))
                        .isInstanceOf(RedisCommandTimeoutException.class);
                connection.setTimeout(Duration.ofSeconds(10));

                redis.resume();
                connection.sync().set("k", "after");
                assertThat(connection.sync().get("k")).isEqualTo("after");
            } finally {
                client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
            }
        }
    }

    @Test
    void aClusterEnabledServerRunsAsAClusterNode() {
        try (RedisServer redis = RedisServer.builder().name("cluster-node").clusterEnabled(true)
                .extraArgs("--cluster-node-timeout", "2000").build()) {
            redis.start();

            String info = withConnection(redis, Optional.empty(), connection -> connection.sync().info("cluster"));

            assertThat(info).contains("cluster_enabled:1");
        }
    }

    private static String ping(RedisServer redis) {
        return withConnection(redis, redis.password(), connection -> connection.sync().ping());
    }

    private static <T> T withConnection(RedisServer redis, Optional<String> password,
                                        Function<StatefulRedisConnection<String, String>, T> work) {
        RedisClient client = RedisClient.create(uri(redis, password, COMMAND_TIMEOUT));
        try (StatefulRedisConnection<String, String> connection = client.connect()) {
            return work.apply(connection);
        } finally {
            client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        }
    }

    private static RedisURI uri(RedisServer redis, Optional<String> password, Duration timeout) {
        RedisURI.Builder uri = RedisURI.builder().withHost(redis.host()).withPort(redis.port()).withTimeout(timeout);
        password.ifPresent(p -> uri.withPassword(p.toCharArray()));
        return uri.build();
    }

    /** The messages of an exception and its causes, for asserting on the server's error. */
    private static String messages(Throwable e) {
        StringBuilder all = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            all.append(t.getMessage()).append('\n');
        }
        return all.toString();
    }
}
