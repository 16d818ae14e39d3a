package org.nisprotocol.kafka;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The two producers a {@link KafkaMessageBus} sends through: one for ordinary records and one for
 * the urgent lane (the same one when lingering is off). The bus retires its pair after a send
 * failed in a way that may pass, spools what the pair had not settled, and takes a new pair; it
 * retires the last one when it closes.
 *
 * <h2>Why one failed send retires the pair</h2>
 *
 * When a send times out, Kafka's idempotent producer bumps its epoch and sends again, under the
 * new epoch, the batches it still holds, without the one that timed out. That one may still be
 * written later, or never (a connection the producer gave up loses the requests on it; a request
 * the broker reads late is refused as fenced), so a later message of a key can reach Kafka before
 * an earlier one. So a producer is stopped in the callback of its first such failure, before its
 * next round could send anything under a new epoch (the current round still sends what it had
 * already taken, under the old epoch and after the failed one in sequence, which the broker
 * writes only behind it): everything it had not settled fails with it (cut off), and the bus
 * spools those sends in the order they were made, behind the failed one. The new pair has new
 * producer ids, so a request of the old pair that a hung broker reads late may still be written
 * after the spool was resent: that only duplicates messages, whose first copies keep their order.
 *
 * <p>Thread-safe.
 */
final class ProducerPair {
  private static final Logger log = LoggerFactory.getLogger(ProducerPair.class);
  // How long stopping waits for a producer's I/O thread to end: it ends at once unless code
  // chained on a receipt blocks it.
  private static final Duration STOP_TIMEOUT = Duration.ofSeconds(30);

  private final Stoppable normal;
  private final Stoppable urgent;
  private final AtomicBoolean retired = new AtomicBoolean();
  private final List<KafkaMessageBus.CutOff> cutOffs = new ArrayList<>(); // guarded by itself
  private boolean cutOffsTaken; // guarded by cutOffs

  /** A pair of two producers, or of one for both lanes when {@code urgent} is {@code normal}. */
  ProducerPair(KafkaProducer<byte[], byte[]> normal, KafkaProducer<byte[], byte[]> urgent) {
    this.normal = new Stoppable(normal);
    this.urgent = urgent == normal ? this.normal : new Stoppable(urgent);
  }

  /** The producer of the urgent lane, or of the others. */
  Stoppable of(boolean urgentLane) {
    return urgentLane ? urgent : normal;
  }

  /** Marks the pair retired; true for the call that did it. New sends must not go through a retired pair. */
  boolean retire() {
    return retired.compareAndSet(false, true);
  }

  boolean retired() {
    return retired.get();
  }

  /** Keeps a cut-off send for {@link #takeCutOffs}; false when they were taken already. */
  boolean park(KafkaMessageBus.CutOff cutOff) {
    synchronized (cutOffs) {
      if (cutOffsTaken) {
        return false;
      }
      cutOffs.add(cutOff);
      return true;
    }
  }

  /** The cut-off sends, once (later ones are refused by {@link #park}). */
  List<KafkaMessageBus.CutOff> takeCutOffs() {
    synchronized (cutOffs) {
      cutOffsTaken = true;
      List<KafkaMessageBus.CutOff> taken = new ArrayList<>(cutOffs);
      cutOffs.clear();
      return taken;
    }
  }

  /**
   * Stops both producers at once; returns when every callback of theirs has run, or (logged)
   * when a producer's I/O thread has not ended in 30 s.
   */
  void stopAndAwait() {
    normal.stopAndAwait();
    urgent.stopAndAwait();
  }

  /** A producer that can be stopped from its own I/O thread, in a send callback, or from elsewhere. */
  static final class Stoppable {
    private final KafkaProducer<byte[], byte[]> client;
    private final AtomicBoolean stopping = new AtomicBoolean();
    private volatile Thread ioThread; // when stopped from it

    Stoppable(KafkaProducer<byte[], byte[]> client) {
      this.client = client;
    }

    KafkaProducer<byte[], byte[]> client() {
      return client;
    }

    /**
     * In a send callback, on the producer's I/O thread: closes it without waiting, so that it
     * fails what it holds and ends after the current round instead of starting another. Never
     * throws (the callback must go on to spool its send).
     */
    void stopFromItsThread() {
      ioThread = Thread.currentThread(); // before the flag: a stopAndAwait that sees the flag joins it
      if (stopping.compareAndSet(false, true)) {
        closeQuietly();
      }
    }

    /**
     * From any other thread: closes it at once, failing what it holds; returns when its I/O
     * thread has ended (at most 30 s, logged). Never throws.
     */
    void stopAndAwait() {
      Thread closer = null;
      if (stopping.compareAndSet(false, true)) {
        // On a thread of its own: the close joins the I/O thread without a time limit.
        closer = Thread.ofVirtual().name("nis-producer-stop").start(this::closeQuietly);
      }
      Thread awaited = closer != null ? closer : ioThread;
      if (awaited == null || awaited == Thread.currentThread()) {
        return;
      }
      try {
        if (!awaited.join(STOP_TIMEOUT)) {
          log.warn("a stopped Kafka producer's thread has not ended in {} (code chained on a receipt blocks it?)",
              STOP_TIMEOUT);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }

    private void closeQuietly() {
      try {
        client.close(Duration.ZERO);
      } catch (RuntimeException e) {
        log.warn("closing a Kafka producer: {}", e.toString());
      }
    }
  }
}
