package org.nisprotocol.core;

import java.util.Objects;

/**
 * For backends: marks the thread that runs a handler's call, and the threads it starts (an
 * agent's worker, which bounds the call's time), as working for that call while it lasts. A bus
 * that has stopped intake lets such threads publish, since a handler that answers what it handles
 * must be able to finish. Threads started during the call keep the mark, but it counts only until
 * the call returns (a pool thread a handler happened to start does not publish for good), and it
 * names its bus by an owner object, so that such a thread does not keep the bus alive. Threads
 * that existed before the call (a pool's, the common pool of {@code CompletableFuture.*Async}) do
 * not get the mark. Scopes nest: closing one gives the thread back the mark it had before.
 *
 * <pre>{@code
 * HandlerScope scope = HandlerScope.enter(handlerOwner);
 * try {
 *   handler.handle(delivery);
 * } finally {
 *   scope.close();
 * }
 * ...
 * if (closing && !HandlerScope.isWithin(handlerOwner)) throw closedError();
 * }</pre>
 */
public final class HandlerScope implements AutoCloseable {
  private static final InheritableThreadLocal<HandlerScope> CURRENT = new InheritableThreadLocal<>();

  private final Object owner;
  private final HandlerScope outer; // the thread's mark before this one, or null
  private volatile boolean open = true;

  private HandlerScope(Object owner, HandlerScope outer) {
    this.owner = Objects.requireNonNull(owner, "owner");
    this.outer = outer;
  }

  /** Marks this thread, and those it starts, as running a handler's call for the owner. */
  public static HandlerScope enter(Object owner) {
    HandlerScope scope = new HandlerScope(owner, CURRENT.get());
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
    if (outer == null) {
      CURRENT.remove();
    } else {
      CURRENT.set(outer);
    }
  }
}
