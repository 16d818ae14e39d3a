package org.nisprotocol.agents;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.PatternSyntaxException;
import org.nisprotocol.core.ValidationException;

/**
 * One self-audit rule: what it flags, how severe that is, and what the flagged wording becomes
 * when auto-corrected. Immutable; collect rules in an {@link AuditRuleSet}.
 *
 * <p>Three kinds:
 *
 * <ul>
 *   <li>{@link Phrase}: a word or phrase, matched case-insensitively on word boundaries, with
 *       spaces, '-' and '_' interchangeable between its words ("real-time processing" also matches
 *       "Real time processing" and "real_time_processing"). Fast: all phrases are found in one
 *       pass over the text.
 *   <li>{@link Regex}: a regular expression over the lowercased text, for claims with numbers
 *       ("95% accuracy"). With triggers, it runs only within 32 characters either side of an
 *       occurrence of one of them (a match must start and end there); a trigger that begins with
 *       a letter or digit counts only at the start of a word ("more" in "more accurate" and
 *       "moreover", not in "furthermore"). Without triggers it runs over the whole text, which
 *       is much slower. Give triggers.
 *   <li>{@link MetricLiteral}: a metric written as a number instead of computed. In text, the
 *       metric's name followed by ':' or '=' and a number ("confidence: 0.95", "accuracy = 0.9",
 *       also inside JSON text); in JSON content, a field whose name ends with the metric's name
 *       holding a number or a numeric string ({@code "confidence": 0.95}). Auto-correction puts
 *       the marker {@code calculated_<name>_score} in place of the number. A field is exempt when
 *       its object also holds one of the rule's evidence keys (e.g. {@code "method"}), which says
 *       where the number came from.
 * </ul>
 *
 * <p>Rule ids are 1-64 characters of lowercase letters, digits, '.', '_' or '-'. Every constructor
 * reports all problems at once in a {@link ValidationException}.
 */
public sealed interface AuditRule {

  /** Unique within a rule set, e.g. {@code "hype.revolutionary"}. */
  String id();

  ViolationType type();

  Severity severity();

  /** This rule with another severity. */
  AuditRule withSeverity(Severity severity);

  /** A phrase rule; see {@link Phrase}. */
  static Phrase phrase(
      String id, ViolationType type, Severity severity, String phrase, String replacement) {
    return new Phrase(id, type, severity, phrase, replacement);
  }

  /** A regex rule; see {@link Regex}. */
  static Regex regex(
      String id,
      ViolationType type,
      Severity severity,
      String regex,
      String replacement,
      String... triggers) {
    return new Regex(id, type, severity, regex, replacement, List.of(triggers));
  }

  /** A metric literal rule; see {@link MetricLiteral}. */
  static MetricLiteral metricLiteral(
      String id, Severity severity, List<String> metricNames, List<String> evidenceKeys) {
    return new MetricLiteral(id, severity, metricNames, evidenceKeys);
  }

  /**
   * Flags a word or phrase.
   *
   * @param phrase letters and digits, words separated by spaces, '-' or '_'
   * @param replacement the evidence-based wording auto-correction puts in its place; its first
   *     letter is capitalised where the flagged text's was
   */
  record Phrase(
      String id, ViolationType type, Severity severity, String phrase, String replacement)
      implements AuditRule {
    public Phrase {
      List<String> problems = new ArrayList<>();
      checkCommon(problems, id, type, severity);
      if (phrase == null || !Words.isPhrase(phrase)) {
        problems.add(
            "rule '" + id + "': phrase '" + phrase
                + "' must be letters and digits, words separated by spaces, '-' or '_'");
      }
      if (replacement == null) {
        problems.add("rule '" + id + "': replacement must not be null");
      }
      throwIfAny(problems);
    }

    @Override
    public Phrase withSeverity(Severity severity) {
      return new Phrase(id, type, severity, phrase, replacement);
    }
  }

  /**
   * Flags what a regular expression finds in the lowercased text.
   *
   * @param regex a {@link java.util.regex.Pattern}, matched case-insensitively
   * @param replacement what auto-correction puts in place of a match; {@code $1}... insert the
   *     groups' text as written in the original
   * @param triggers lowercase strings near which the regex runs (32 characters either side of
   *     each occurrence); empty means it runs over the whole text
   */
  record Regex(
      String id,
      ViolationType type,
      Severity severity,
      String regex,
      String replacement,
      List<String> triggers)
      implements AuditRule {
    public Regex {
      List<String> problems = new ArrayList<>();
      checkCommon(problems, id, type, severity);
      int groups = -1;
      if (regex == null || regex.isEmpty()) {
        problems.add("rule '" + id + "': regex must not be empty");
      } else {
        try {
          groups = java.util.regex.Pattern.compile(regex).matcher("").groupCount();
          if (java.util.regex.Pattern.compile(regex).matcher("").matches()) {
            problems.add("rule '" + id + "': regex '" + regex + "' matches the empty string");
          }
        } catch (PatternSyntaxException e) {
          problems.add(
              "rule '" + id + "': regex '" + regex + "' does not compile: " + e.getDescription());
        }
      }
      if (replacement == null) {
        problems.add("rule '" + id + "': replacement must not be null");
      } else if (groups >= 0) {
        for (int group : Regex.groupReferences(replacement)) {
          if (group > groups) {
            problems.add(
                "rule '" + id + "': replacement '" + replacement + "' refers to group $" + group
                    + " but the regex has " + groups);
          }
        }
      }
      if (triggers == null) {
        problems.add("rule '" + id + "': triggers must not be null (use an empty list)");
      } else {
        for (String trigger : triggers) {
          if (trigger == null || trigger.isEmpty() || !trigger.equals(Words.lower(trigger))) {
            problems.add(
                "rule '" + id + "': trigger '" + trigger + "' must be a non-empty lowercase string");
          }
        }
        triggers = List.copyOf(triggers);
      }
      throwIfAny(problems);
    }

    @Override
    public Regex withSeverity(Severity severity) {
      return new Regex(id, type, severity, regex, replacement, triggers);
    }

    /** The replacement with each {@code $n} replaced by the group's text in the original. */
    String expand(Matcher match, String original) {
      StringBuilder out = new StringBuilder(replacement.length() + 16);
      for (int i = 0; i < replacement.length(); i++) {
        char c = replacement.charAt(i);
        if (c == '$' && i + 1 < replacement.length() && Character.isDigit(replacement.charAt(i + 1))) {
          int group = replacement.charAt(++i) - '0';
          if (match.start(group) >= 0) {
            out.append(original, match.start(group), match.end(group));
          }
        } else {
          out.append(c);
        }
      }
      return out.toString();
    }

    /** The replacement with every group reference replaced by a placeholder word. */
    String expandWithPlaceholder(String placeholder) {
      return replacement.replaceAll("\\$\\d", placeholder);
    }

    private static List<Integer> groupReferences(String replacement) {
      List<Integer> groups = new ArrayList<>();
      for (int i = 0; i + 1 < replacement.length(); i++) {
        if (replacement.charAt(i) == '$' && Character.isDigit(replacement.charAt(i + 1))) {
          groups.add(replacement.charAt(i + 1) - '0');
        }
      }
      return groups;
    }
  }

  /**
   * Flags metrics written as literals.
   *
   * @param metricNames names such as "confidence" or "success rate" (letters and digits, words
   *     separated by spaces, '-' or '_')
   * @param evidenceKeys JSON keys that exempt the metrics of their object, e.g. "method"
   */
  record MetricLiteral(
      String id, Severity severity, List<String> metricNames, List<String> evidenceKeys)
      implements AuditRule {
    public MetricLiteral {
      List<String> problems = new ArrayList<>();
      checkCommon(problems, id, ViolationType.HARDCODED_VALUE, severity);
      if (metricNames == null || metricNames.isEmpty()) {
        problems.add("rule '" + id + "': metricNames must name at least one metric");
      } else {
        for (String name : metricNames) {
          if (name == null || !Words.isPhrase(name)) {
            problems.add(
                "rule '" + id + "': metric name '" + name
                    + "' must be letters and digits, words separated by spaces, '-' or '_'");
          }
        }
      }
      if (evidenceKeys == null) {
        problems.add("rule '" + id + "': evidenceKeys must not be null (use an empty list)");
      } else {
        for (String key : evidenceKeys) {
          if (key == null || key.isBlank()) {
            problems.add("rule '" + id + "': evidence keys must not be blank");
          }
        }
      }
      throwIfAny(problems);
      metricNames = List.copyOf(metricNames);
      evidenceKeys = List.copyOf(evidenceKeys);
    }

    @Override
    public ViolationType type() {
      return ViolationType.HARDCODED_VALUE;
    }

    @Override
    public MetricLiteral withSeverity(Severity severity) {
      return new MetricLiteral(id, severity, metricNames, evidenceKeys);
    }

    /** The marker auto-correction writes instead of a literal of this metric. */
    static String marker(List<String> nameWords) {
      String name = String.join("_", nameWords);
      return "calculated_" + name + (name.endsWith("score") ? "" : "_score");
    }
  }

  private static void checkCommon(
      List<String> problems, String id, ViolationType type, Severity severity) {
    if (id == null || !id.matches("[a-z0-9._-]{1,64}")) {
      problems.add(
          "rule id '" + id + "' must be 1-64 lowercase letters, digits, '.', '_' or '-'");
    }
    if (type == null) {
      problems.add("rule '" + id + "': type must not be null");
    }
    if (severity == null) {
      problems.add("rule '" + id + "': severity must not be null");
    }
  }

  private static void throwIfAny(List<String> problems) {
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
  }
}
