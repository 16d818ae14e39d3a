package org.nisprotocol.server;

import io.javalin.http.HttpStatus;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * An HTTP error answer: a status and the JSON body {@code {"error": code, "detail": text}}, with
 * the list of problems when there are several.
 */
record ApiError(int status, String error, String detail, List<String> problems) {

  static ApiError of(int status, String error, String detail) {
    return new ApiError(status, error, detail, List.of());
  }

  /** The error code of an HTTP status without one of its own: its name, e.g. {@code method_not_allowed}. */
  static String codeOf(int status) {
    HttpStatus known = HttpStatus.forStatus(status);
    return known == HttpStatus.UNKNOWN ? "http_" + status : known.name().toLowerCase(Locale.ROOT);
  }

  Map<String, Object> body() {
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("error", error);
    body.put("detail", detail);
    if (problems.size() > 1) {
      body.put("problems", problems);
    }
    return body;
  }

  /** Thrown by handlers to answer with this error. */
  static final class Failure extends RuntimeException {
    private static final long serialVersionUID = 1L;
    final transient ApiError error;

    Failure(ApiError error) {
      super(error.detail(), null, false, false);
      this.error = error;
    }
  }

  static Failure badRequest(String detail) {
    return new Failure(of(400, "invalid_request", detail));
  }
}
