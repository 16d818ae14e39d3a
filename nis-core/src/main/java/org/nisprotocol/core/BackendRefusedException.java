package org.nisprotocol.core;

import java.io.Serial;

/**
 * The backend (Kafka, Redis) answered and refused the call for good: the same call fails again
 * until something is changed there (a permission, a topic's settings, the command). The HTTP
 * service answers it with 502.
 */
public class BackendRefusedException extends NisException {
  @Serial private static final long serialVersionUID = 1L;

  public BackendRefusedException(String message, Throwable cause) {
    super(message, cause);
  }
}
