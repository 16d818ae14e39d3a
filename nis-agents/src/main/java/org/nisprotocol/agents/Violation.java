package org.nisprotocol.agents;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * One flagged piece of wording.
 *
 * @param type what kind of wording it is
 * @param severity what it costs the integrity score
 * @param ruleId the rule that flagged it
 * @param text the flagged text as written
 * @param path where it is: {@code "text"} for free text, else the JSON path of the value, e.g.
 *     {@code "content.results[0].summary"}; keys over 64 chars show their start and length, and a
 *     path over 200 chars its start and end with its length between (as {@code …(N chars)})
 * @param start offset of the flagged text in the value at path (for a number, in its JSON text)
 * @param end offset just past the flagged text
 * @param suggestion what auto-correction writes in its place
 */
public record Violation(
    ViolationType type,
    Severity severity,
    String ruleId,
    String text,
    String path,
    int start,
    int end,
    String suggestion) {

  public Violation {
    Objects.requireNonNull(type, "type");
    Objects.requireNonNull(severity, "severity");
    Objects.requireNonNull(ruleId, "ruleId");
    Objects.requireNonNull(text, "text");
    path = JsonPaths.shortened(Objects.requireNonNull(path, "path"));
    Objects.requireNonNull(suggestion, "suggestion");
    if (start < 0 || end < start) {
      throw new IllegalArgumentException("bad span [" + start + ", " + end + ")");
    }
  }

  /** A sentence for people: what is wrong and what to write instead. */
  public String description() {
    String what =
        switch (type) {
          case HYPE_LANGUAGE -> "hype language";
          case UNSUBSTANTIATED_CLAIM -> "unsubstantiated claim";
          case HARDCODED_VALUE -> "hard-coded metric value";
        };
    return what + " '" + text + "' at " + path + "; write '" + suggestion + "' instead";
  }

  /** The flag put in a message's audit_flags: {@code "<type>:<rule id>@<path>"}. */
  public String flag() {
    return type.wireName() + ':' + ruleId + '@' + path;
  }

  /**
   * As JSON: type, severity, rule, text, path, start, end, suggestion and description.
   */
  public Map<String, Object> toJson() {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("type", type.wireName());
    json.put("severity", severity.name());
    json.put("rule", ruleId);
    json.put("text", text);
    json.put("path", path);
    json.put("start", start);
    json.put("end", end);
    json.put("suggestion", suggestion);
    json.put("description", description());
    return json;
  }
}
