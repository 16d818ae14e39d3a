package org.nisprotocol.core;

import java.time.Instant;
import java.time.InstantSource;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Stops calling a backend that keeps failing, and tries it again later.
 *
 * <p>Closed: calls pass; {@code failureThreshold} consecutive failures open it. Open: calls are
 * refused with {@link CallNotPermittedException} until {@code openDuration} has passed, then it
 * is half-open. Half-open: up to {@code halfOpenSuccesses} probe calls pass at a time; that many
 * successes close it, one failure opens it again.
 *
 * <p>Callers either wrap a call with {@link #call}, or ask {@link #tryAcquire()} and report the
 * outcome with {@link #onSuccess()} or {@link #onFailure()} (for asynchronous calls). Listeners
 * hear each state change. Thread-safe; time comes from the injected clock.
 */
public final class CircuitBreaker {

  /** The breaker's state; on the wire lowercase with a dash ({@code "half-open"}). */
  public enum State {
    CLOSED,
    OPEN,
    HALF_OPEN;

    public String wireName() {
      return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }
  }

  /** A change of state, as listeners hear it. */
  public record Transition(String breaker, State from, State to, Instant at) {}

  private final String name;
  private final CircuitBreakerConfig config;
  private final InstantSource clock;
  private final List<Consumer<Transition>> listeners = new CopyOnWriteArrayList<>();

  // Written under the lock; volatile so the closed-state fast paths need no lock.
  private volatile State state = State.CLOSED;
  private volatile int consecutiveFailures;
  private int halfOpenSuccesses;
  private int probesInFlight;
  private Instant openedAt = Instant.EPOCH;
  private Instant lastFailureAt;

  private CircuitBreaker(String name, CircuitBreakerConfig config, InstantSource clock) {
    this.name = name;
    this.config = config;
    this.clock = clock;
  }

  public static CircuitBreaker create(String name, CircuitBreakerConfig config, InstantSource clock) {
    return new CircuitBreaker(
        Objects.requireNonNull(name, "name"),
        Objects.requireNonNull(config, "config"),
        Objects.requireNonNull(clock, "clock"));
  }

  public String name() {
    return name;
  }

  public CircuitBreakerConfig config() {
    return config;
  }

  /** The current state; an open breaker whose time is up reads as half-open. */
  public State state() {
    Transition transition;
    State current;
    synchronized (this) {
      transition = refresh();
      current = state;
    }
    publish(transition);
    return current;
  }

  /** Consecutive failures counted since the last success. */
  public int failureCount() {
    return consecutiveFailures;
  }

  /** When the last failure happened. */
  public synchronized java.util.Optional<Instant> lastFailureAt() {
    return java.util.Optional.ofNullable(lastFailureAt);
  }

  public void addListener(Consumer<Transition> listener) {
    listeners.add(Objects.requireNonNull(listener, "listener"));
  }

  /**
   * Whether a call may go ahead now. A true answer must be followed by {@link #onSuccess()} or
   * {@link #onFailure()}.
   */
  public boolean tryAcquire() {
    if (state == State.CLOSED) {
      return true; // fast path: no lock while all is well
    }
    Transition transition;
    boolean permitted;
    synchronized (this) {
      transition = refresh();
      permitted =
          switch (state) {
            case CLOSED -> true;
            case OPEN -> false;
            case HALF_OPEN -> {
              if (probesInFlight < config.halfOpenSuccesses()) {
                probesInFlight++;
                yield true;
              }
              yield false;
            }
          };
    }
    publish(transition);
    return permitted;
  }

  /** Reports that a permitted call succeeded. */
  public void onSuccess() {
    if (state == State.CLOSED && consecutiveFailures == 0) {
      return; // fast path: nothing to record
    }
    Transition transition = null;
    synchronized (this) {
      consecutiveFailures = 0;
      if (state == State.HALF_OPEN) {
        probesInFlight = Math.max(0, probesInFlight - 1);
        if (++halfOpenSuccesses >= config.halfOpenSuccesses()) {
          transition = moveTo(State.CLOSED);
        }
      }
    }
    publish(transition);
  }

  /** Reports that a permitted call failed. */
  public void onFailure() {
    Transition transition = null;
    synchronized (this) {
      consecutiveFailures++;
      lastFailureAt = clock.instant();
      if (state == State.HALF_OPEN
          || (state == State.CLOSED && consecutiveFailures >= config.failureThreshold())) {
        transition = moveTo(State.OPEN);
      }
    }
    publish(transition);
  }

  /**
   * Gives back a permitted call's place without recording an outcome: for a call that failed for
   * reasons that say nothing of the backend's health (e.g. local backpressure).
   */
  public synchronized void release() {
    if (state == State.HALF_OPEN && probesInFlight > 0) {
      probesInFlight--;
    }
  }

  /**
   * Runs the call if the breaker permits it, recording its outcome: any exception counts as a
   * failure and is rethrown.
   *
   * @throws CallNotPermittedException when the breaker is open
   */
  public <T> T call(Supplier<T> call) {
    if (!tryAcquire()) {
      throw new CallNotPermittedException(name, state());
    }
    T result;
    try {
      result = call.get();
    } catch (RuntimeException | Error e) {
      onFailure();
      throw e;
    }
    onSuccess();
    return result;
  }

  /** Closes the breaker now (after an out-of-band check found the backend healthy). */
  public void reset() {
    Transition transition;
    synchronized (this) {
      consecutiveFailures = 0;
      transition = state == State.CLOSED ? null : moveTo(State.CLOSED);
    }
    publish(transition);
  }

  // Caller holds the lock.
  private Transition refresh() {
    if (state == State.OPEN
        && !clock.instant().isBefore(openedAt.plus(config.openDuration()))) {
      return moveTo(State.HALF_OPEN);
    }
    return null;
  }

  // Caller holds the lock.
  private Transition moveTo(State next) {
    State previous = state;
    state = next;
    halfOpenSuccesses = 0;
    probesInFlight = 0;
    Instant now = clock.instant();
    if (next == State.OPEN) {
      openedAt = now;
    }
    return new Transition(name, previous, next, now);
  }

  private void publish(Transition transition) {
    if (transition != null) {
      listeners.forEach(listener -> listener.accept(transition));
    }
  }
}
