package org.nisprotocol.core;

import java.io.Serial;

/** A call on a bus or cache that has been closed. */
public class ClosedException extends NisException {
  @Serial private static final long serialVersionUID = 1L;

  public ClosedException(String message) {
    super(message);
  }
}
