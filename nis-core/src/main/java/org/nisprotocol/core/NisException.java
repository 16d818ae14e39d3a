package org.nisprotocol.core;

import java.io.Serial;

/**
 * Root of every error NIS raises. Unchecked. Two branches say what a caller can do: {@link
 * RetriableException} (a backend is full, down or slow: try again later) and {@link
 * ValidationException} (the input is wrong: retrying the same input fails the same way).
 */
public class NisException extends RuntimeException {
  @Serial private static final long serialVersionUID = 1L;

  public NisException(String message) {
    super(message);
  }

  public NisException(String message, Throwable cause) {
    super(message, cause);
  }
}
