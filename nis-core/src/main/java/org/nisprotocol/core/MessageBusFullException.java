package org.nisprotocol.core;

import java.io.Serial;

/**
 * The bus holds as many accepted, undelivered messages as it may, and none was delivered while
 * publish waited. The message was not accepted; retry later or add consumers.
 */
public class MessageBusFullException extends RetriableException {
  @Serial private static final long serialVersionUID = 1L;

  public MessageBusFullException(String message) {
    super(message);
  }
}
