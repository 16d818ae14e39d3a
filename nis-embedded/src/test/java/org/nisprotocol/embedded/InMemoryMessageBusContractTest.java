package org.nisprotocol.embedded;

import org.nisprotocol.core.MessageBus;
import org.nisprotocol.testkit.MessageBusContract;

class InMemoryMessageBusContractTest extends MessageBusContract {
  @Override
  protected MessageBus createBus() {
    return InMemoryMessageBus.create(
        InMemoryMessageBusConfig.defaults().withRetryPolicy(FAST_RETRIES));
  }
}
