package org.nisprotocol.agents;

import java.util.Locale;

/** The three kinds of wording the self-audit flags. On the wire each is its lowercase name. */
public enum ViolationType {
  /** Promotional wording that states no fact: "revolutionary", "perfect", "robust". */
  HYPE_LANGUAGE,
  /** A measurable claim stated without its measurement: "95% accuracy", "10x faster". */
  UNSUBSTANTIATED_CLAIM,
  /** A metric written as a literal instead of computed: "confidence: 0.95". */
  HARDCODED_VALUE;

  private final String wireName = name().toLowerCase(Locale.ROOT);

  /** The name used in JSON, e.g. {@code "hype_language"}. */
  public String wireName() {
    return wireName;
  }
}
