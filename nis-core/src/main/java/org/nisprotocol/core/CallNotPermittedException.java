package org.nisprotocol.core;

import java.io.Serial;

/** A call refused because its circuit breaker is open; names the breaker and its state. */
public class CallNotPermittedException extends RetriableException {
  @Serial private static final long serialVersionUID = 1L;

  public CallNotPermittedException(String breaker, CircuitBreaker.State state) {
    super(
        "circuit breaker '"
            + breaker
            + "' is "
            + state.wireName()
            + ": the backend failed repeatedly; calls resume after a successful probe");
  }
}
