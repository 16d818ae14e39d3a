package org.nisprotocol.redis;

import static org.awaitility.Awaitility.await;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.nisprotocol.testkit.RedisServer;
import org.nisprotocol.testkit.TemporaryDirectory;

/**
 * Three redis-server processes joined into a Redis Cluster of three masters, slots split evenly.
 * Formed with {@code redis-cli --cluster create} when redis-cli is on the PATH, else with the same
 * steps done by hand through Lettuce ({@code CLUSTER ADDSLOTS}, {@code CLUSTER MEET}); either way
 * the cluster is up, never skipped. {@code -Dnis.test.redis-cluster=by-hand} forces the second way.
 */
final class ThreeNodeCluster implements AutoCloseable {
  private static final int SLOTS = 16_384;

  private final List<RedisServer> nodes = new ArrayList<>();
  private final String formedWith;

  ThreeNodeCluster() {
    try {
      for (int i = 0; i < 3; i++) {
        RedisServer node =
            RedisServer.builder()
                .name("cluster-" + i)
                .clusterEnabled(true)
                // Failover is not what these tests check: a node the others heard nothing from
                // for a while this JVM's machine paused must not be marked failed.
                .extraArgs("--cluster-node-timeout", "15000")
                .build();
        nodes.add(node);
        node.start();
      }
      // -Dnis.test.redis-cluster=by-hand forms it without redis-cli even when there is one
      Optional<Path> redisCli =
          "by-hand".equals(System.getProperty("nis.test.redis-cluster")) ? Optional.empty() : onPath("redis-cli");
      if (redisCli.isPresent()) {
        createWithRedisCli(redisCli.get());
        formedWith = "redis-cli --cluster create";
      } else {
        createByHand();
        formedWith = "CLUSTER ADDSLOTS and CLUSTER MEET through Lettuce";
      }
      await("cluster state ok on every node")
          .atMost(Duration.ofSeconds(30))
          .pollInterval(Duration.ofMillis(100))
          .until(this::ready);
    } catch (RuntimeException e) {
      close();
      throw e;
    }
  }

  /** The seed list for {@link RedisCacheConfig.Builder#clusterNodes}. */
  List<String> seeds() {
    return nodes.stream().map(n -> n.host() + ":" + n.port()).toList();
  }

  List<RedisServer> nodes() {
    return nodes;
  }

  String formedWith() {
    return formedWith;
  }

  private void createWithRedisCli(Path redisCli) {
    List<String> command = new ArrayList<>(List.of(redisCli.toString(), "--cluster", "create"));
    command.addAll(seeds());
    command.addAll(List.of("--cluster-replicas", "0", "--cluster-yes"));
    try (TemporaryDirectory output = TemporaryDirectory.create("redis-cli-cluster")) {
      Path log = output.path().resolve("create.log"); // its content is in the error when forming fails
      Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
      if (!process.waitFor(60, TimeUnit.SECONDS) || process.exitValue() != 0) {
        process.destroyForcibly();
        throw new IllegalStateException(
            String.join(" ", command) + " failed:\n" + Files.readString(log, StandardCharsets.UTF_8));
      }
    } catch (IOException e) {
      throw new IllegalStateException("could not run " + command, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while forming the cluster", e);
    }
  }

  private void createByHand() {
    int per = SLOTS / nodes.size();
    for (int i = 0; i < nodes.size(); i++) {
      int from = i * per;
      int to = i == nodes.size() - 1 ? SLOTS : from + per;
      try (RawRedis node = new RawRedis(nodes.get(i))) {
        node.sync().clusterAddSlots(IntStream.range(from, to).toArray());
      }
    }
    try (RawRedis first = new RawRedis(nodes.get(0))) {
      for (RedisServer other : nodes.subList(1, nodes.size())) {
        first.sync().clusterMeet(other.host(), other.port());
      }
    }
  }

  private boolean ready() {
    for (RedisServer node : nodes) {
      try (RawRedis raw = new RawRedis(node)) {
        String info = raw.sync().clusterInfo();
        if (!info.contains("cluster_state:ok") || !info.contains("cluster_known_nodes:3")) {
          return false;
        }
      }
    }
    return true;
  }

  private static Optional<Path> onPath(String program) {
    String path = Optional.ofNullable(System.getenv("PATH")).orElse("");
    return Arrays.stream(path.split(File.pathSeparator))
        .filter(dir -> !dir.isBlank())
        .map(dir -> Path.of(dir, program))
        .filter(Files::isExecutable)
        .findFirst();
  }

  @Override
  public void close() {
    for (RedisServer node : nodes) {
      node.close();
    }
  }
}
