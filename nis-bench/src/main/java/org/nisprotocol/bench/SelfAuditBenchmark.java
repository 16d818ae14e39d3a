package org.nisprotocol.bench;

import com.fasterxml.jackson.core.type.TypeReference;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.nisprotocol.agents.AuditRule;
import org.nisprotocol.agents.AuditRuleSet;
import org.nisprotocol.agents.SelfAuditEngine;
import org.nisprotocol.core.MessageCodec;
import org.nisprotocol.core.MessageType;
import org.nisprotocol.core.NisMessage;

/**
 * Self-audit throughput on one thread: 1 KiB message contents (as JSON) audited per second, next
 * to two baselines measured in the same run on the same content: parsing its JSON (what reading
 * the message costs anyway) and the naive scan, one case-insensitive regex alternation of the
 * default phrases run over the content's text. The issue aims at 50,000 audits a second.
 *
 * <p>Each measurement warms up, then runs timed rounds and reports the median rate, by the wall
 * clock and by the thread's CPU time (on a shared machine the second says what one core does when
 * the thread gets it). The ratios use the CPU rates. Run with {@code bin/nis bench audit
 * [seconds-per-round] [rounds]}.
 */
public final class SelfAuditBenchmark {
  private static final int CONTENT_BYTES = 1024;
  private static final double TARGET_PER_SECOND = 50_000;
  private static final TypeReference<Map<String, Object>> JSON_OBJECT = new TypeReference<>() {};

  private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

  private static volatile long sink;

  /** A measurement's median rates per second, by wall clock and by thread CPU time. */
  private record Rate(double wall, double cpu) {}

  private SelfAuditBenchmark() {}

  public static void main(String[] args) throws Exception {
    double secondsPerRound = args.length > 0 ? Double.parseDouble(args[0]) : 1.0;
    int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 5;
    SelfAuditEngine engine = SelfAuditEngine.create();

    Map<String, Object> content = content();
    byte[] json = MessageCodec.mapper().writeValueAsBytes(content);
    String text = textOf(content);
    NisMessage message =
        NisMessage.builder(MessageType.SIMULATION_RESULT, "bench").content(content).build();
    Pattern naive = naivePattern(AuditRuleSet.defaults());
    int violations = engine.auditContent(content).violationCount();

    System.out.printf(Locale.ROOT,
        "content: %d bytes of JSON, %d fields, %d violations found (score %.0f)%n",
        json.length, content.size(), violations, engine.auditContent(content).integrityScore());

    List<String[]> rows = new ArrayList<>();
    Rate audit = measure("auditContent(content)", secondsPerRound, rounds,
        () -> engine.auditContent(content).violationCount());
    Rate auditMessage = measure("audit(message)", secondsPerRound, rounds,
        () -> (int) engine.audit(message).integrityScore().orElse(0));
    Rate parseAndAudit = measure("parse JSON + auditContent", secondsPerRound, rounds,
        () -> engine.auditContent(MessageCodec.mapper().readValue(json, JSON_OBJECT))
            .violationCount());
    Rate parse = measure("baseline: parse JSON", secondsPerRound, rounds,
        () -> MessageCodec.mapper().readValue(json, JSON_OBJECT).size());
    Rate regex = measure("baseline: naive regex scan", secondsPerRound, rounds,
        () -> count(naive.matcher(text)));

    rows.add(row("auditContent(content)", audit, parse, regex));
    rows.add(row("audit(message)", auditMessage, parse, regex));
    rows.add(row("parse JSON + auditContent", parseAndAudit, parse, regex));
    rows.add(row("baseline: parse JSON", parse, parse, regex));
    rows.add(row("baseline: naive regex scan", regex, parse, regex));
    System.out.println();
    System.out.printf(Locale.ROOT, "%-28s %12s %12s %10s %10s%n", "1 KiB contents, one thread",
        "wall /s", "cpu /s", "vs parse", "vs regex");
    for (String[] row : rows) {
      System.out.printf(Locale.ROOT, "%-28s %12s %12s %10s %10s%n", (Object[]) row);
    }
    System.out.printf(Locale.ROOT,
        "%naudits per second: %,.0f wall, %,.0f per CPU-second (target %,.0f: %s)%n",
        audit.wall(), audit.cpu(), TARGET_PER_SECOND,
        audit.cpu() >= TARGET_PER_SECOND ? "met" : "NOT met");
    System.out.println("(sink " + sink + ")");
  }

  @FunctionalInterface
  private interface Work {
    int run() throws Exception;
  }

  /** Operations per second: the medians of the timed rounds, after a warm-up of three rounds. */
  private static Rate measure(String name, double secondsPerRound, int rounds, Work work)
      throws Exception {
    long roundNanos = (long) (secondsPerRound * 1e9);
    for (int i = 0; i < 3; i++) {
      round(work, roundNanos);
    }
    double[] wall = new double[rounds];
    double[] cpu = new double[rounds];
    for (int i = 0; i < rounds; i++) {
      double[] rates = round(work, roundNanos);
      wall[i] = rates[0];
      cpu[i] = rates[1];
    }
    Arrays.sort(wall);
    Arrays.sort(cpu);
    Rate rate = new Rate(wall[rounds / 2], cpu[rounds / 2]);
    System.out.printf(Locale.ROOT, "%-28s median %,10.0f/s wall, %,10.0f/s cpu  (cpu rounds %s)%n",
        name, rate.wall(), rate.cpu(),
        Arrays.stream(cpu).mapToObj(r -> String.format(Locale.ROOT, "%,.0f", r))
            .collect(Collectors.joining(", ")));
    return rate;
  }

  /** Runs the work for about the given time; returns {wall rate, CPU rate}. */
  private static double[] round(Work work, long roundNanos) throws Exception {
    long start = System.nanoTime();
    long cpuStart = THREADS.getCurrentThreadCpuTime();
    long deadline = start + roundNanos;
    long operations = 0;
    long local = 0;
    long now;
    do {
      for (int i = 0; i < 256; i++) {
        local += work.run();
      }
      operations += 256;
      now = System.nanoTime();
    } while (now < deadline);
    long cpu = THREADS.getCurrentThreadCpuTime() - cpuStart;
    sink += local;
    return new double[] {operations * 1e9 / (now - start), operations * 1e9 / Math.max(1, cpu)};
  }

  private static String[] row(String name, Rate rate, Rate parse, Rate regex) {
    return new String[] {
      name,
      String.format(Locale.ROOT, "%,.0f", rate.wall()),
      String.format(Locale.ROOT, "%,.0f", rate.cpu()),
      String.format(Locale.ROOT, "%.2fx", rate.cpu() / parse.cpu()),
      String.format(Locale.ROOT, "%.2fx", rate.cpu() / regex.cpu())
    };
  }

  private static int count(Matcher matcher) {
    int found = 0;
    while (matcher.find()) {
      found++;
    }
    return found;
  }

  /**
   * One regex, every default phrase as an alternative, case-insensitive, on word boundaries: the
   * obvious way to write the audit, finding the phrases only (not the numeric claims nor the
   * metric literals), so it does less than the engine.
   */
  private static Pattern naivePattern(AuditRuleSet rules) {
    String alternatives =
        rules.rules().stream()
            .filter(rule -> rule instanceof AuditRule.Phrase)
            .map(rule -> ((AuditRule.Phrase) rule).phrase().replaceAll("[ _-]+", "[ _-]+"))
            .collect(Collectors.joining("|"));
    return Pattern.compile("\\b(?:" + alternatives + ")\\b", Pattern.CASE_INSENSITIVE);
  }

  /** The string values of the content, joined, as the naive scan sees them. */
  private static String textOf(Object value) {
    StringBuilder out = new StringBuilder();
    collect(value, out);
    return out.toString();
  }

  private static void collect(Object value, StringBuilder out) {
    if (value instanceof String text) {
      out.append(text).append('\n');
    } else if (value instanceof Map<?, ?> map) {
      map.values().forEach(v -> collect(v, out));
    } else if (value instanceof List<?> list) {
      list.forEach(v -> collect(v, out));
    }
  }

  /**
   * A simulation report of exactly {@value #CONTENT_BYTES} bytes of JSON: prose with a few
   * flagged phrases, a hard-coded confidence, numbers and a nested list, padded by its notes.
   */
  public static Map<String, Object> content() throws Exception {
    Map<String, Object> content = new LinkedHashMap<>();
    content.put("scenario_id", "archaeological_site_001");
    content.put("summary",
        "Monte Carlo estimate of the excavation plan over 30 days with a team of five. The model"
            + " is robust to weather and reaches 95% accuracy on the validation seasons.");
    content.put("success_probability", 0.847);
    content.put("confidence", 0.95);
    content.put("confidence_interval", List.of(0.81, 0.88));
    content.put("recommendations", List.of(
        "Increase team size to cover the northern trench before the rains",
        "Extend the timeline by ten days if the survey finds a second layer"));
    content.put("risk_factors", List.of(
        Map.of("name", "weather", "weight", 0.3, "note", "seasonal rain in the last week"),
        Map.of("name", "permits", "weight", 0.1, "note", "renewal pending with the ministry")));
    content.put("analysis", "calculated_from_monte_carlo_simulation");
    content.put("notes", "");
    int size = MessageCodec.mapper().writeValueAsBytes(content).length;
    String filler = "Field notes: measured dig rates per square, logged daily by the site lead. ";
    StringBuilder notes = new StringBuilder();
    while (notes.length() < CONTENT_BYTES - size) {
      notes.append(filler);
    }
    notes.setLength(CONTENT_BYTES - size);
    content.put("notes", notes.toString());
    byte[] json = MessageCodec.mapper().writeValueAsBytes(content);
    if (json.length != CONTENT_BYTES) {
      throw new IllegalStateException("content is " + json.length + " bytes, wanted " + CONTENT_BYTES
          + ": " + new String(json, StandardCharsets.UTF_8));
    }
    return content;
  }
}
