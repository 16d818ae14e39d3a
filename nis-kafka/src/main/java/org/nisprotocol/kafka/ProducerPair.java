package org.nisprotocol.kafka;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.producer.KafkaProducer;

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
 * next round could send anything under a new epoch: everything it had not settled fails with it
 * (cut off), and the bus spools those sends in the order they were made, behind the failed one.
 *
 * <p>Thread-safe.
 */
final class ProducerPair {
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

  /** Stops both producers at once; returns when every callback of theirs has run. */
  void stopAndAwait() {
    normal.stopAndAwait();
    urgent.stopAndAwait();
  }

  /** A producer that can be stopped from its own I/O thread, in a send callback, or from elsewhere. */
  static final class Stoppable {
    private final KafkaProducer<byte[], byte[]> client;
    private final AtomicBoolean stopping = new AtomicBoolean();
    private volatile Thread stoppedOnItsThread;

    Stoppable(KafkaProducer<byte[], byte[]> client) {
      this.client = client;
    }

    KafkaProducer<byte[], byte[]> client() {
      return client;
    }

    /**
     * In a send callback, on the producer's I/O thread: closes it without waiting, so that it
     * fails what it holds and ends after the current round instead of starting another.
     */
    void stopFromItsThread() {
      stoppedOnItsThread = Thread.currentThread(); // before the flag: a stopAndAwait that sees the flag joins it
      if (stopping.compareAndSet(false, true)) {
        client.close(Duration.ZERO);
      }
    }

    /** From any other thread: closes it at once, failing what it holds; returns when its I/O thread has ended. */
    void stopAndAwait() {
      if (stopping.compareAndSet(false, true)) {
        client.close(Duration.ZERO); // forces the close and joins the I/O thread
        return;
      }
      Thread ioThread = stoppedOnItsThread;
      if (ioThread != null && ioThread != Thread.currentThread()) {
        try {
          ioThread.join(STOP_TIMEOUT);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    }
  }
}
