package org.nisprotocol.core;

import java.io.Serial;

/** A message bigger than the bus accepts; store large data in the cache and send its key. */
public class MessageTooLargeException extends ValidationException {
  @Serial private static final long serialVersionUID = 1L;

  public MessageTooLargeException(String problem) {
    super(problem);
  }

  /** The refusal of a message of {@code bytes} as JSON where {@code limit} are accepted. */
  public static MessageTooLargeException of(String messageId, int bytes, int limit) {
    return new MessageTooLargeException("message " + messageId + " is " + bytes + " bytes as JSON; at most " + limit
        + " are accepted. Store large data in the cache and send its key");
  }
}
