package org.nisprotocol.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.javalin.http.HttpStatus;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.Locale;
import org.eclipse.jetty.http.HttpField;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.handler.ErrorHandler;
import org.eclipse.jetty.util.Callback;

/**
 * Jetty's own error answers (a request it refuses before any route sees it: headers too large, a
 * URI it cannot parse) in the service's JSON error shape, {@code {"error", "detail"}}, instead of
 * Jetty's HTML page.
 */
final class JsonErrorHandler extends ErrorHandler {
  private static final HttpField JSON = new HttpField(HttpHeader.CONTENT_TYPE, "application/json");

  private final ObjectMapper json;

  JsonErrorHandler(ObjectMapper json) {
    this.json = json;
  }

  /** Every method's errors get a body (Jetty leaves it out for HEAD by itself). */
  @Override
  public boolean errorPageForMethod(String method) {
    return true;
  }

  /** JSON whatever the request accepts. */
  @Override
  protected void generateResponse(
      Request request, Response response, int code, String message, Throwable cause, Callback callback) {
    response.getHeaders().put(JSON);
    response.write(true, ByteBuffer.wrap(body(code, detail(request, code, message, cause))), callback);
  }

  /**
   * What went wrong, naming the limit a request went over (Jetty's own reason says only "URI Too
   * Long", say); otherwise Jetty's reason, or the status's name.
   */
  private static String detail(Request request, int status, String reason, Throwable cause) {
    if (status == 414 || status == 431) {
      int limit = request.getConnectionMetaData().getHttpConfiguration().getRequestHeaderSize();
      String part = status == 414 ? "the request line (method, URI, version)" : "the request's headers";
      return String.format(Locale.ROOT, "%s went over the %,d bytes the service takes", part, limit);
    }
    String generic = HttpStatus.forStatus(status).getMessage();
    boolean saysNoMore = reason == null || reason.isBlank() || reason.equals(generic);
    if (status == 400 && saysNoMore) {
      return parseProblem(cause);
    }
    return saysNoMore ? generic : reason;
  }

  /**
   * What the parser found wrong where its own reason is only "Bad Request": the innermost cause
   * (for a URI, "Illegal character in path" for an encoded NUL, say, or a '%' without two hex
   * digits after it, which Jetty words "!hex").
   */
  private static String parseProblem(Throwable cause) {
    Throwable root = cause;
    while (root != null && root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    String problem = root == null || root == cause ? null : root.getMessage();
    if (problem == null || problem.isBlank()) {
      return "the request is not valid HTTP/1.1";
    }
    if (root instanceof NumberFormatException && problem.startsWith("!hex")) {
      return "the request URI holds a '%' that is not followed by two hex digits";
    }
    // Jetty's own words, which may quote part of what the client sent: kept short.
    return "the request is not valid HTTP/1.1: "
        + (problem.length() <= 120 ? problem : problem.substring(0, 117) + "...");
  }

  private byte[] body(int status, String detail) {
    try {
      return json.writeValueAsBytes(ApiError.of(status, ApiError.codeOf(status), detail).body());
    } catch (JsonProcessingException e) {
      throw new UncheckedIOException(e);
    }
  }
}
