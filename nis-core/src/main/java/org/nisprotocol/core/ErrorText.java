package org.nisprotocol.core;

/** Values a client sent, as error messages show them back. */
public final class ErrorText {
  /** How many characters of a value an error message shows. */
  public static final int SHOWN_CHARACTERS = 60;

  private ErrorText() {}

  /**
   * The value in single quotes; a longer one by its first {@value #SHOWN_CHARACTERS} characters and
   * its length, since a field or header may hold megabytes that an error must not send back.
   */
  public static String quoted(String value) {
    if (value == null) {
      return "null";
    }
    if (value.length() <= SHOWN_CHARACTERS) {
      return "'" + value + "'";
    }
    return "'" + value.substring(0, SHOWN_CHARACTERS) + "…' (" + value.length() + " characters)";
  }
}
