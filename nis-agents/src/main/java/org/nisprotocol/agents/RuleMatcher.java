package org.nisprotocol.agents;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.nisprotocol.core.ValidationException;

/**
 * The compiled form of a rule set: finds violations in text and JSON content and corrects them.
 * Immutable and thread-safe; every call works on its own state.
 *
 * <p>Why it is fast. Phrases and metric names are looked up by their first word in an
 * open-addressing table, so one pass over the text, hashing each word once without allocating,
 * finds them all, whatever the number of rules; only words that start some phrase pay for more.
 * Regex rules run only when the text contains one of their trigger strings. A 1 KiB content costs
 * a few microseconds.
 *
 * <p>Overlaps: when two matches overlap, the more severe one is kept (then the longer, then the
 * earlier), so one piece of wording is never counted twice.
 */
final class RuleMatcher {
  /** Auto-correction re-audits its output and corrects again, at most this many times. */
  static final int MAX_CORRECTION_PASSES = 5;
  /** A regex rule looks this many characters either side of each occurrence of a trigger. */
  static final int REGEX_WINDOW = 32;

  private static final int[] NO_HITS = {};

  /** A phrase or metric name, filed under its first word. */
  private record Entry(AuditRule rule, char[][] rest, String marker) {
    int words() {
      return rest.length + 1;
    }
  }

  /** A regex rule, with which of the matcher's distinct triggers are its own. */
  private record CompiledRegex(AuditRule.Regex rule, Pattern pattern, boolean[] ownsTrigger) {}

  private record MetricName(AuditRule.MetricLiteral rule, List<String> words, String marker) {}

  private final String[] keys;
  private final Entry[][] entries;
  private final int mask;
  private final int minWordLength;
  private final int maxWordLength;
  private final List<CompiledRegex> regexes;
  private final List<MetricName> metricNames;
  private final Set<String> metricLastWords;
  private final char[][] triggers;
  /** For each ASCII character, the triggers that start with it. */
  private final int[][] triggersByAsciiStart = new int[128][];
  private final int[] nonAsciiTriggers;

  RuleMatcher(List<AuditRule> rules) {
    Map<String, List<Entry>> byFirstWord = new LinkedHashMap<>();
    List<AuditRule.Regex> regexRules = new ArrayList<>();
    List<String> distinctTriggers = new ArrayList<>();
    List<MetricName> names = new ArrayList<>();
    for (AuditRule rule : rules) {
      switch (rule) {
        case AuditRule.Phrase phrase -> file(byFirstWord, phrase, Words.split(phrase.phrase()), null);
        case AuditRule.Regex regex -> {
          regexRules.add(regex);
          regex.triggers().stream()
              .filter(trigger -> !distinctTriggers.contains(trigger))
              .forEach(distinctTriggers::add);
        }
        case AuditRule.MetricLiteral metric -> {
          for (String name : metric.metricNames()) {
            List<String> words = Words.split(name);
            String marker = AuditRule.MetricLiteral.marker(words);
            file(byFirstWord, metric, words, marker);
            names.add(new MetricName(metric, words, marker));
          }
        }
      }
    }
    List<CompiledRegex> compiled = new ArrayList<>();
    for (AuditRule.Regex regex : regexRules) {
      boolean[] owns = new boolean[distinctTriggers.size()];
      regex.triggers().forEach(trigger -> owns[distinctTriggers.indexOf(trigger)] = true);
      // the text is lowercased already: fold case only if the regex has upper-case literals
      int flags = hasUpperCaseLiteral(regex.regex()) ? Pattern.CASE_INSENSITIVE : 0;
      compiled.add(new CompiledRegex(regex, Pattern.compile(regex.regex(), flags), owns));
    }
    this.triggers = distinctTriggers.stream().map(String::toCharArray).toArray(char[][]::new);
    List<Integer> nonAscii = new ArrayList<>();
    for (int t = 0; t < triggers.length; t++) {
      char first = triggers[t][0];
      if (first < 128) {
        int[] list = triggersByAsciiStart[first];
        list = list == null ? new int[1] : java.util.Arrays.copyOf(list, list.length + 1);
        list[list.length - 1] = t;
        triggersByAsciiStart[first] = list;
      } else {
        nonAscii.add(t);
      }
    }
    this.nonAsciiTriggers = nonAscii.stream().mapToInt(Integer::intValue).toArray();
    int capacity = Integer.highestOneBit(Math.max(4, byFirstWord.size() * 4) - 1) << 1;
    this.keys = new String[capacity];
    this.entries = new Entry[capacity][];
    this.mask = capacity - 1;
    int min = Integer.MAX_VALUE;
    int max = 0;
    for (Map.Entry<String, List<Entry>> filed : byFirstWord.entrySet()) {
      String key = filed.getKey();
      List<Entry> list = new ArrayList<>(filed.getValue());
      list.sort(Comparator.comparingInt(Entry::words).reversed()); // longest phrase first
      int slot = spread(key.hashCode()) & mask;
      while (keys[slot] != null) {
        slot = (slot + 1) & mask;
      }
      keys[slot] = key;
      entries[slot] = list.toArray(Entry[]::new);
      min = Math.min(min, key.length());
      max = Math.max(max, key.length());
    }
    this.minWordLength = min;
    this.maxWordLength = max;
    this.regexes = List.copyOf(compiled);
    this.metricNames = List.copyOf(names);
    this.metricLastWords =
        names.stream().map(name -> name.words.get(name.words.size() - 1)).collect(
            java.util.stream.Collectors.toUnmodifiableSet());
  }

  /**
   * Whether a regex has an upper-case letter outside escapes ({@code \D}, {@code \p{Lu}}):
   * only then must it be matched case-insensitively against the lowercased text.
   */
  static boolean hasUpperCaseLiteral(String regex) {
    for (int i = 0; i < regex.length(); i++) {
      char c = regex.charAt(i);
      if (c == '\\' && i + 1 < regex.length()) {
        char escaped = regex.charAt(++i);
        if ((escaped == 'p' || escaped == 'P' || escaped == 'x') && i + 1 < regex.length()
            && regex.charAt(i + 1) == '{') {
          int close = regex.indexOf('}', i);
          i = close < 0 ? regex.length() : close;
        }
      } else if (Character.isUpperCase(c)) {
        return true;
      }
    }
    return false;
  }

  private static void file(
      Map<String, List<Entry>> byFirstWord, AuditRule rule, List<String> words, String marker) {
    char[][] rest = new char[words.size() - 1][];
    for (int i = 1; i < words.size(); i++) {
      rest[i - 1] = words.get(i).toCharArray();
    }
    byFirstWord.computeIfAbsent(words.get(0), w -> new ArrayList<>()).add(new Entry(rule, rest, marker));
  }

  private static int spread(int hash) {
    return hash ^ (hash >>> 16);
  }

  // ---------------------------------------------------------------- text

  /** The violations in one text, without overlaps, in text order. */
  List<Violation> scanText(String text, String path) {
    return scanText(text, (Object) path);
  }

  /** As {@link #scanText(String, String)}; path is a String or a {@link JsonPaths.Lazy}. */
  private List<Violation> scanText(String text, Object path) {
    if (text.isEmpty()) {
      return List.of();
    }
    char[] lower = Words.lowerChars(text);
    List<Violation> found = new ArrayList<>(4);
    Hits hits = triggers.length == 0 ? null : new Hits();
    scanWords(text, lower, path, found, hits);
    if (!regexes.isEmpty()) {
      scanRegexes(text, lower, hits, path, found);
    }
    return resolveOverlaps(found);
  }

  /**
   * Finds the phrases and metric literals, and notes where the regex triggers occur (in the same
   * pass, so the regexes cost nothing when no trigger is present).
   */
  private void scanWords(
      String text, char[] lower, Object path, List<Violation> found, Hits hits) {
    int n = lower.length;
    int i = 0;
    while (i < n) {
      int gap = i;
      while (i < n && !Words.isWordChar(lower[i])) {
        i++;
      }
      if (hits != null) {
        noteTriggers(lower, gap, Math.min(i + 1, n), hits); // the gap and the next word's start
      }
      int start = i;
      int hash = 0;
      while (i < n && Words.isWordChar(lower[i])) {
        hash = 31 * hash + lower[i];
        i++;
      }
      int length = i - start;
      if (length < minWordLength || length > maxWordLength) {
        continue;
      }
      Entry[] candidates = lookup(lower, start, length, hash);
      if (candidates == null) {
        continue;
      }
      for (Entry entry : candidates) {
        int end = matchRest(lower, i, entry.rest);
        if (end < 0) {
          continue;
        }
        if (entry.marker == null) {
          String flagged = text.substring(start, end);
          found.add(violation(entry.rule, flagged, path, start, end,
              capitalizedLike(flagged, ((AuditRule.Phrase) entry.rule).replacement())));
          if (hits != null) {
            noteTriggers(lower, i, end, hits);
          }
          i = end;
          break;
        }
        long number = literalAfter(lower, end);
        if (number >= 0) {
          int numberStart = (int) (number >>> 32);
          int numberEnd = (int) number;
          found.add(violation(entry.rule, text.substring(start, numberEnd), path, start, numberEnd,
              text.substring(start, numberStart) + entry.marker));
          if (hits != null) {
            noteTriggers(lower, i, numberEnd, hits);
          }
          i = numberEnd;
          break;
        }
      }
    }
  }

  /** Where the regex triggers occur: (trigger index, position) pairs in position order. */
  private static final class Hits {
    int[] pairs = NO_HITS;
    int count;

    void add(int trigger, int position) {
      if (count + 2 > pairs.length) {
        pairs = java.util.Arrays.copyOf(pairs, Math.max(8, pairs.length * 2));
      }
      pairs[count++] = trigger;
      pairs[count++] = position;
    }
  }

  /**
   * Notes the triggers that start in [from, to): anywhere for triggers that start with a
   * non-word character, at the start of a word for the others. Scanning stops at {@code to} but
   * a trigger may run past it.
   */
  private void noteTriggers(char[] lower, int from, int to, Hits hits) {
    for (int i = from; i < to; i++) {
      char c = lower[i];
      int[] candidates = c < 128 ? triggersByAsciiStart[c] : nonAsciiTriggers;
      if (candidates == null || candidates.length == 0) {
        continue;
      }
      if (Words.isWordChar(c) && i > 0 && Words.isWordChar(lower[i - 1])) {
        continue;
      }
      for (int t : candidates) {
        char[] trigger = triggers[t];
        if (trigger[0] == c && i + trigger.length <= lower.length && startsAt(lower, i, trigger)) {
          hits.add(t, i);
        }
      }
    }
  }

  private Entry[] lookup(char[] lower, int start, int length, int hash) {
    int slot = spread(hash) & mask;
    while (true) {
      String key = keys[slot];
      if (key == null) {
        return null;
      }
      if (key.length() == length && regionEquals(lower, start, key)) {
        return entries[slot];
      }
      slot = (slot + 1) & mask;
    }
  }

  private static boolean regionEquals(char[] lower, int start, String key) {
    for (int k = 0; k < key.length(); k++) {
      if (lower[start + k] != key.charAt(k)) {
        return false;
      }
    }
    return true;
  }

  /** Where the phrase ends if its remaining words follow at {@code from}, else -1. */
  private static int matchRest(char[] lower, int from, char[][] rest) {
    int p = from;
    for (char[] word : rest) {
      int q = p;
      while (q < lower.length && Words.isSeparator(lower[q])) {
        q++;
      }
      if (q == p || q + word.length > lower.length) {
        return -1;
      }
      for (int k = 0; k < word.length; k++) {
        if (lower[q + k] != word[k]) {
          return -1;
        }
      }
      p = q + word.length;
      if (p < lower.length && Words.isWordChar(lower[p])) {
        return -1;
      }
    }
    return p;
  }

  /**
   * After a metric name: an optional closing quote, ':' or '=', an optional opening quote and a
   * number (sign, decimals, exponent, '%' allowed). Returns the number's start and end packed in a
   * long, or -1.
   */
  private static long literalAfter(char[] s, int from) {
    int n = s.length;
    int p = from;
    if (p < n && (s[p] == '"' || s[p] == '\'')) {
      p++;
    }
    p = skipBlanks(s, p);
    if (p < n && (s[p] == ':' || s[p] == '=')) {
      p++;
      if (p < n && s[p] == '=') {
        p++;
      }
    } else {
      return -1;
    }
    p = skipBlanks(s, p);
    if (p < n && (s[p] == '"' || s[p] == '\'')) {
      p++;
    }
    int numberStart = p;
    int end = numberEnd(s, p);
    if (end < 0 || (end < n && Words.isWordChar(s[end]))) {
      return -1;
    }
    return ((long) numberStart << 32) | end;
  }

  private static int skipBlanks(char[] s, int p) {
    while (p < s.length && (s[p] == ' ' || s[p] == '\t')) {
      p++;
    }
    return p;
  }

  /** The end of a number starting at p, or -1 if none starts there. */
  private static int numberEnd(char[] s, int p) {
    int n = s.length;
    if (p < n && (s[p] == '-' || s[p] == '+')) {
      p++;
    }
    int digits = p;
    while (p < n && s[p] >= '0' && s[p] <= '9') {
      p++;
    }
    if (p == digits) {
      return -1;
    }
    if (p + 1 < n && s[p] == '.' && s[p + 1] >= '0' && s[p + 1] <= '9') {
      p += 2;
      while (p < n && s[p] >= '0' && s[p] <= '9') {
        p++;
      }
    }
    if (p + 1 < n && s[p] == 'e') {
      int q = p + 1;
      if (q < n && (s[q] == '-' || s[q] == '+')) {
        q++;
      }
      int exponent = q;
      while (q < n && s[q] >= '0' && s[q] <= '9') {
        q++;
      }
      if (q > exponent) {
        p = q;
      }
    }
    if (p < n && s[p] == '%') {
      p++;
    }
    return p;
  }

  private void scanRegexes(
      String text, char[] lower, Hits triggerHits, Object path, List<Violation> found) {
    String lowerText = null;
    int[] hits = triggerHits == null ? NO_HITS : triggerHits.pairs;
    int hitCount = triggerHits == null ? 0 : triggerHits.count;
    for (CompiledRegex regex : regexes) {
      if (regex.rule.triggers().isEmpty()) {
        lowerText = lowerText == null ? new String(lower) : lowerText;
        findAll(regex, regex.pattern.matcher(lowerText), text, path, found);
        continue;
      }
      Matcher match = null;
      int windowStart = -1;
      int windowEnd = -1;
      for (int h = 0; h < hitCount; h += 2) {
        if (!regex.ownsTrigger[hits[h]]) {
          continue;
        }
        int at = hits[h + 1];
        int start = Math.max(0, at - REGEX_WINDOW);
        int end = Math.min(lower.length, at + triggers[hits[h]].length + REGEX_WINDOW);
        if (windowStart >= 0 && start <= windowEnd) {
          windowEnd = Math.max(windowEnd, end);
          continue;
        }
        if (windowStart >= 0) {
          lowerText = lowerText == null ? new String(lower) : lowerText;
          match = findIn(regex, match, lowerText, windowStart, windowEnd, text, path, found);
        }
        windowStart = start;
        windowEnd = end;
      }
      if (windowStart >= 0) {
        lowerText = lowerText == null ? new String(lower) : lowerText;
        findIn(regex, match, lowerText, windowStart, windowEnd, text, path, found);
      }
    }
  }

  private static Matcher findIn(CompiledRegex regex, Matcher match, String lowerText, int start,
      int end, String text, Object path, List<Violation> found) {
    Matcher m = match != null
        ? match
        : regex.pattern.matcher(lowerText).useTransparentBounds(true).useAnchoringBounds(false);
    m.region(start, end);
    findAll(regex, m, text, path, found);
    return m;
  }

  private static boolean startsAt(char[] text, int at, char[] word) {
    for (int k = 1; k < word.length; k++) {
      if (text[at + k] != word[k]) {
        return false;
      }
    }
    return true;
  }

  private static void findAll(
      CompiledRegex regex, Matcher match, String text, Object path, List<Violation> found) {
    while (match.find()) {
      if (match.end() == match.start()) {
        continue;
      }
      String flagged = text.substring(match.start(), match.end());
      found.add(violation(regex.rule, flagged, path, match.start(), match.end(),
          capitalizedLike(flagged, regex.rule.expand(match, text))));
    }
  }

  private static Violation violation(
      AuditRule rule, String text, Object path, int start, int end, String suggestion) {
    return new Violation(
        rule.type(), rule.severity(), rule.id(), text, path.toString(), start, end, suggestion);
  }

  /** The replacement, with its first letter capitalised if the flagged text's is. */
  private static String capitalizedLike(String flagged, String replacement) {
    if (replacement.isEmpty()
        || !Character.isUpperCase(flagged.charAt(0))
        || !Character.isLowerCase(replacement.charAt(0))) {
      return replacement;
    }
    return Character.toUpperCase(replacement.charAt(0)) + replacement.substring(1);
  }

  /** Sorted by start; of two overlapping matches the more severe, longer, earlier one stays. */
  private static List<Violation> resolveOverlaps(List<Violation> found) {
    if (found.size() < 2) {
      return found;
    }
    found.sort(Comparator.comparingInt(Violation::start));
    List<Violation> kept = new ArrayList<>(found.size());
    for (Violation next : found) {
      if (kept.isEmpty()) {
        kept.add(next);
        continue;
      }
      Violation last = kept.get(kept.size() - 1);
      if (next.start() >= last.end()) {
        kept.add(next);
      } else if (better(next, last)) {
        kept.set(kept.size() - 1, next);
      }
    }
    return kept;
  }

  private static boolean better(Violation a, Violation b) {
    if (a.severity() != b.severity()) {
      return a.severity().ordinal() < b.severity().ordinal();
    }
    return a.end() - a.start() > b.end() - b.start();
  }

  // ---------------------------------------------------------------- JSON content

  /**
   * The violations in a JSON object, walking nested objects and arrays, in document order: the
   * first {@link AuditReport#MAX_LISTED} listed, all counted.
   */
  AuditReport scanContent(Map<?, ?> content, String path) {
    Found found = new Found();
    scanObject(content, path, found);
    return AuditReport.of(found.listed, found.count);
  }

  /**
   * Violations as a content scan finds them: the first {@link AuditReport#MAX_LISTED} kept, all
   * counted. Content with a flagged value in each of many thousands of places would otherwise
   * make as many violations, each with its own path, and reports and flags as large.
   */
  private static final class Found {
    final List<Violation> listed = new ArrayList<>();
    int count;

    boolean full() {
      return listed.size() >= AuditReport.MAX_LISTED;
    }

    void add(Violation violation) {
      count++;
      if (!full()) {
        listed.add(violation);
      }
    }

    void addAll(List<Violation> violations) {
      violations.forEach(this::add);
    }
  }

  private void scanObject(Map<?, ?> object, String path, Found found) {
    for (Map.Entry<?, ?> field : object.entrySet()) {
      String key = keyOf(field.getKey(), path);
      Object value = field.getValue();
      if (isNumeric(value)) {
        MetricName metric = metricOf(key, object);
        if (metric != null) {
          if (found.full()) {
            found.count++; // counted, without building its path
          } else {
            String literal = literalText(value);
            found.add(violation(metric.rule, literal, JsonPaths.field(path, key), 0,
                literal.length(), metricMarker(key)));
          }
          continue;
        }
      }
      if (value instanceof String text) {
        found.addAll(scanText(text, new JsonPaths.Lazy(path, key, -1)));
      } else {
        scanValue(value, path, key, -1, found);
      }
    }
  }

  private void scanValue(Object value, String parent, String key, int index, Found found) {
    switch (value) {
      case null -> {}
      case String text -> found.addAll(scanText(text, new JsonPaths.Lazy(parent, key, index)));
      case Map<?, ?> object -> scanObject(object, JsonPaths.child(parent, key, index), found);
      case List<?> array -> {
        String path = JsonPaths.child(parent, key, index);
        for (int i = 0; i < array.size(); i++) {
          scanValue(array.get(i), path, null, i, found);
        }
      }
      case Number number -> {}
      case Boolean bool -> {}
      default -> throw notJson(value, JsonPaths.child(parent, key, index));
    }
  }

  private static String keyOf(Object key, String path) {
    if (key instanceof String text) {
      return text;
    }
    throw new ValidationException(path + " has a key that is not a string: " + key);
  }

  private static ValidationException notJson(Object value, String path) {
    return new ValidationException(
        path + " holds a " + value.getClass().getName()
            + ", which is not a JSON value (use maps, lists, strings, numbers, booleans or null)");
  }

  private static boolean isNumeric(Object value) {
    return value instanceof Number
        || (value instanceof String text && mayBeNumber(text) && isNumericText(text));
  }

  /** A cheap first test: whether the first non-blank character could start a number. */
  private static boolean mayBeNumber(String text) {
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c != ' ' && c != '\t') {
        return (c >= '0' && c <= '9') || c == '-' || c == '+';
      }
    }
    return false;
  }

  /** Whether a string is only a number, like "0.95" or "95%". */
  static boolean isNumericText(String text) {
    String trimmed = text.strip();
    if (trimmed.isEmpty() || trimmed.length() > 64) {
      return false;
    }
    char[] chars = trimmed.toCharArray();
    return numberEnd(chars, 0) == chars.length;
  }

  private static String literalText(Object value) {
    return switch (value) {
      // Plain digits for the numbers text holds; as written for one of absurd size (1e999999999),
      // which in plain digits would take a gigabyte.
      case BigDecimal decimal -> Math.abs(decimal.scale()) <= 400 ? decimal.toPlainString() : decimal.toString();
      case String text -> text;
      default -> value.toString();
    };
  }

  /** The metric rule a field name falls under, unless its object holds an evidence key. */
  private MetricName metricOf(String key, Map<?, ?> object) {
    if (metricNames.isEmpty()) {
      return null;
    }
    if (!metricLastWords.contains(lastWord(key))) {
      return null;
    }
    List<String> keyWords = Words.split(key);
    for (MetricName name : metricNames) {
      if (endsWith(keyWords, name.words) && !hasEvidence(object, name.rule.evidenceKeys())) {
        return name;
      }
    }
    return null;
  }

  /** The last word of a key, lowercased; empty if it has none. */
  private static String lastWord(String key) {
    int end = key.length();
    while (end > 0 && !Words.isWordChar(key.charAt(end - 1))) {
      end--;
    }
    int start = end;
    while (start > 0 && Words.isWordChar(key.charAt(start - 1))) {
      start--;
    }
    return Words.lower(key.substring(start, end));
  }

  private static boolean endsWith(List<String> words, List<String> suffix) {
    int offset = words.size() - suffix.size();
    if (offset < 0) {
      return false;
    }
    for (int i = 0; i < suffix.size(); i++) {
      if (!words.get(offset + i).equals(suffix.get(i))) {
        return false;
      }
    }
    return true;
  }

  private static boolean hasEvidence(Map<?, ?> object, List<String> evidenceKeys) {
    for (String key : evidenceKeys) {
      if (object.containsKey(key)) {
        return true;
      }
    }
    return false;
  }

  /** The marker for a literal field: {@code confidence} becomes {@code calculated_confidence_score}. */
  static String metricMarker(String key) {
    List<String> words = Words.split(key);
    return AuditRule.MetricLiteral.marker(words.isEmpty() ? List.of("metric") : words);
  }

  // ---------------------------------------------------------------- correction

  /**
   * The text with every violation replaced by its suggestion, re-audited and corrected again up
   * to {@link #MAX_CORRECTION_PASSES} times. Of the original and each pass, the last one with the
   * best score is returned, so the result never scores lower than the original.
   */
  String correctText(String text) {
    List<Violation> violations = scanText(text, "text");
    if (violations.isEmpty()) {
      return text;
    }
    String best = text;
    double bestScore = AuditReport.scoreOf(violations);
    String current = text;
    for (int pass = 0; pass < MAX_CORRECTION_PASSES && !violations.isEmpty(); pass++) {
      String next = splice(current, violations);
      if (next.equals(current)) {
        break;
      }
      violations = scanText(next, "text");
      double score = AuditReport.scoreOf(violations);
      if (score >= bestScore) {
        best = next;
        bestScore = score;
      }
      current = next;
    }
    return best;
  }

  private static String splice(String text, List<Violation> violations) {
    StringBuilder out = new StringBuilder(text.length() + 32);
    int from = 0;
    for (Violation violation : violations) {
      out.append(text, from, violation.start()).append(violation.suggestion());
      from = violation.end();
    }
    return out.append(text, from, text.length()).toString();
  }

  /**
   * A copy of the JSON object with every string corrected ({@link #correctText}) and every
   * hard-coded metric replaced by its marker. Keys, order and other values are kept.
   */
  Map<String, Object> correctContent(Map<?, ?> content, String path) {
    return correctObject(content, path);
  }

  private Map<String, Object> correctObject(Map<?, ?> object, String path) {
    Map<String, Object> out = new LinkedHashMap<>(Math.max(4, object.size() * 2));
    for (Map.Entry<?, ?> field : object.entrySet()) {
      String key = keyOf(field.getKey(), path);
      Object value = field.getValue();
      if (isNumeric(value) && metricOf(key, object) != null) {
        out.put(key, metricMarker(key));
      } else {
        out.put(key, correctValue(value, JsonPaths.field(path, key)));
      }
    }
    return Collections.unmodifiableMap(out);
  }

  private Object correctValue(Object value, String path) {
    return switch (value) {
      case null -> null;
      case String text -> correctText(text);
      case Map<?, ?> object -> correctObject(object, path);
      case List<?> array -> {
        List<Object> out = new ArrayList<>(array.size());
        for (int i = 0; i < array.size(); i++) {
          out.add(correctValue(array.get(i), path + '[' + i + ']'));
        }
        yield Collections.unmodifiableList(out);
      }
      case Number number -> number;
      case Boolean bool -> bool;
      default -> throw notJson(value, path);
    };
  }
}
