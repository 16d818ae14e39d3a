package org.nisprotocol.core;

import java.io.Serial;
import java.util.List;

/**
 * Input that can never be accepted as it is. Carries every problem found, each naming the field
 * and the bad value, so a caller can fix them all at once.
 */
public class ValidationException extends NisException {
  @Serial private static final long serialVersionUID = 1L;

  private final List<String> problems;

  public ValidationException(List<String> problems) {
    super(String.join("; ", requireSome(problems)));
    this.problems = List.copyOf(problems);
  }

  public ValidationException(String problem) {
    this(List.of(problem));
  }

  /** Each problem found, in the order found; never empty. */
  public List<String> problems() {
    return problems;
  }

  private static List<String> requireSome(List<String> problems) {
    if (problems.isEmpty()) {
      throw new IllegalArgumentException("a ValidationException needs at least one problem");
    }
    return problems;
  }
}
