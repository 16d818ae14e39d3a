package org.nisprotocol.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.nisprotocol.core.MessageBus;
import org.nisprotocol.core.MessageHandler;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.PublishReceipt;
import org.nisprotocol.core.Subscription;
import org.nisprotocol.core.SubscriptionSpec;
import org.nisprotocol.embedded.InMemoryCache;
import org.nisprotocol.embedded.InMemoryMessageBus;
import org.nisprotocol.testkit.ForwardingMessageBus;

class FailedStartTest {

  @Test
  void aServerThatCannotListenClosesWhatItStartedAndLeavesTheBackendsOpenForTheCaller() throws Exception {
    try (ServerSocket taken = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
        SubscriptionsSeen bus = new SubscriptionsSeen(InMemoryMessageBus.create());
        InMemoryCache cache = InMemoryCache.create()) {
      ServiceConfig onTakenPort = ServiceConfig.embedded(taken.getLocalPort());

      assertThatThrownBy(() -> NisServer.start(onTakenPort, bus, cache)).hasMessageContaining("in use");

      // The agents' subscriptions (on Kafka, consumer threads) would otherwise keep `bin/nis serve`
      // running after its error.
      assertThat(bus.made).as("the server's agents subscribed").isNotEmpty();
      assertThat(bus.made).as("subscriptions left open").allMatch(s -> s.closed.get());
      NisMessage still = NisMessage.builder(MessageType.SYSTEM_HEALTH, "test").content(Map.of()).build();
      assertThat(bus.publish(still).status()).as("the caller's bus still takes messages").isEqualTo(PublishReceipt.Status.SENT);
      cache.put("memory", "k", "1");
      assertThat(cache.get("memory", "k")).as("the caller's cache still works").contains("1");
    }
  }

  /** A bus that notes each subscription made on it and whether it was closed. */
  private static final class SubscriptionsSeen extends ForwardingMessageBus {
    final List<Seen> made = new CopyOnWriteArrayList<>();

    SubscriptionsSeen(MessageBus delegate) {
      super(delegate);
    }

    @Override
    public Subscription subscribe(SubscriptionSpec spec, MessageHandler handler) {
      Seen seen = new Seen(super.subscribe(spec, handler));
      made.add(seen);
      return seen;
    }
  }

  private static final class Seen implements Subscription {
    final AtomicBoolean closed = new AtomicBoolean();
    private final Subscription delegate;

    Seen(Subscription delegate) {
      this.delegate = delegate;
    }

    @Override
    public SubscriptionSpec spec() {
      return delegate.spec();
    }

    @Override
    public void close() {
      closed.set(true);
      delegate.close();
    }
  }
}
