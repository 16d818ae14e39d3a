package org.nisprotocol.core;

import java.io.Serial;

/** A transient failure: the same call may succeed later (backend full, unreachable or slow). */
public class RetriableException extends NisException {
  @Serial private static final long serialVersionUID = 1L;

  public RetriableException(String message) {
    super(message);
  }

  public RetriableException(String message, Throwable cause) {
    super(message, cause);
  }
}
