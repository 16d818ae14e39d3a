package org.nisprotocol.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.javalin.http.HttpStatus;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.Charset;
import java.util.List;
import java.util.Locale;
import org.eclipse.jetty.http.HttpField;
import org.eclipse.jetty.http.HttpFields;
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

  /** Errors found while parsing the request, before there is one. */
  @Override
  public ByteBuffer badMessageError(int status, String reason, HttpFields.Mutable fields) {
    fields.put(JSON);
    return ByteBuffer.wrap(body(status, reason));
  }

  /** Errors of a parsed request that no route answered. */
  @Override
  protected boolean generateAcceptableResponse(
      Request request,
      Response response,
      Callback callback,
      String contentType,
      List<Charset> charsets,
      int code,
      String message,
      Throwable cause) {
    response.getHeaders().put(JSON);
    response.write(true, ByteBuffer.wrap(body(code, message)), callback);
    return true;
  }

  private byte[] body(int status, String reason) {
    HttpStatus known = HttpStatus.forStatus(status);
    String code = known == HttpStatus.UNKNOWN ? "http_" + status : known.name().toLowerCase(Locale.ROOT);
    String detail = reason == null || reason.isBlank() ? known.getMessage() : reason;
    try {
      return json.writeValueAsBytes(ApiError.of(status, code, detail).body());
    } catch (JsonProcessingException e) {
      throw new UncheckedIOException(e);
    }
  }
}
