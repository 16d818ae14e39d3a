package org.nisprotocol.core;

import java.io.Serial;

/** Text that is not JSON at all (as opposed to JSON that is not a valid message). */
public class MalformedJsonException extends InvalidMessageException {
  @Serial private static final long serialVersionUID = 1L;

  public MalformedJsonException(String problem) {
    super(problem);
  }
}
