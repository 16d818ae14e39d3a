package org.nisprotocol.core;

import java.io.Serial;

/** A message bigger than the bus accepts; store large data in the cache and send its key. */
public class MessageTooLargeException extends ValidationException {
  @Serial private static final long serialVersionUID = 1L;

  public MessageTooLargeException(String problem) {
    super(problem);
  }
}
