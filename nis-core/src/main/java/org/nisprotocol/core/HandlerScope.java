package org.nisprotocol.core;

import java.util.Objects;

/**
 * For backends: marks the thread that runs a handler's call, and the threads it starts (an
 * agent's worker, which bounds the call's time), as working for that call while it lasts. A bus
 * that has stopped intake lets such threads publish, since a handler that answers what it handles
 * must be able to finish. Threads started during the call keep the mark, but it counts only until
 * the call returns (a pool thread a handler happened to start does not publish for good), and it
 * names its bus by an owner object, so that such a thread does not keep the bus alive.
 *
 * <pre>{@code
 * try (HandlerScope scope = HandlerScope.enter(handlerOwner)) {
 *   handler.handle(delivery);
 * }
 * ...
 * if (closing && !HandlerScope.isWithin(handlerOwner)) throw closedError();
 * }</pre>
 */
public final class HandlerScope implements AutoCloseable {
  private static final InheritableThreadLocal<HandlerScope> CURRENT = new InheritableThreadLocal<>();

  private final Object owner;
  private volatile boolean open = true;

  private HandlerScope(Object owner) {
    this.owner = Objects.requireNonNull(owner, "owner");
  }

  /** Marks this thread, and those it starts, as running a handler's call for the owner. */
  public static HandlerScope enter(Object owner) {
    HandlerScope scope = new HandlerScope(owner);
    CURRENT.set(scope);
    return scope;
  }

  /** Whether this thread runs a call of the owner's handler, or was started by one still running. */
  public static boolean isWithin(Object owner) {
    HandlerScope scope = CURRENT.get();
    return scope != null && scope.open && scope.owner == owner;
  }

  /** Ends the call: on this thread, and on every thread that inherited it. */
  @Override
  public void close() {
    open = false;
    CURRENT.remove();
  }
}
