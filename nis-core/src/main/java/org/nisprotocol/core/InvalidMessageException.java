package org.nisprotocol.core;

import java.io.Serial;
import java.util.List;

/** A message that does not follow the wire format; {@link #problems()} says each thing wrong. */
public class InvalidMessageException extends ValidationException {
  @Serial private static final long serialVersionUID = 1L;

  public InvalidMessageException(List<String> problems) {
    super(problems);
  }

  public InvalidMessageException(String problem) {
    super(problem);
  }
}
