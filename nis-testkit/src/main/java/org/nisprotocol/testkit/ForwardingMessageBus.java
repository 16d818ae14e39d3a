package org.nisprotocol.testkit;

import java.time.Duration;
import java.util.Map;
import org.nisprotocol.core.HealthCheck;
import org.nisprotocol.core.MessageBus;
import org.nisprotocol.core.MessageHandler;
import org.nisprotocol.core.NisMessage;
import org.nisprotocol.core.PublishReceipt;
import org.nisprotocol.core.Subscription;
import org.nisprotocol.core.SubscriptionSpec;

/** A message bus that passes every call on to another: tests override what they watch or change. */
public class ForwardingMessageBus implements MessageBus {
  private final MessageBus delegate;

  public ForwardingMessageBus(MessageBus delegate) {
    this.delegate = delegate;
  }

  @Override
  public String name() {
    return delegate.name();
  }

  @Override
  public PublishReceipt publish(NisMessage message, Map<String, String> headers) {
    return delegate.publish(message, headers);
  }

  @Override
  public Subscription subscribe(SubscriptionSpec spec, MessageHandler handler) {
    return delegate.subscribe(spec, handler);
  }

  @Override
  public HealthCheck checkHealth(Duration timeout) {
    return delegate.checkHealth(timeout);
  }

  @Override
  public void recover() {
    delegate.recover();
  }

  @Override
  public void close() {
    delegate.close();
  }
}
