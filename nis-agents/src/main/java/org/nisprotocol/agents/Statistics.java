package org.nisprotocol.agents;

/** The interval arithmetic of the simulator. */
final class Statistics {
  private Statistics() {}

  /**
   * The two-sided normal quantile for a confidence level: 1.96 at 0.95 and 1.645 at 0.90 (the
   * values the NIS documents use), the exact quantile at any other level. The original used 1.645
   * for every level but 0.95, which at 0.99 would give a 90 % interval labelled 99 %.
   */
  static double zFor(double confidenceLevel) {
    if (Math.abs(confidenceLevel - 0.95) < 1e-12) {
      return 1.96;
    }
    if (Math.abs(confidenceLevel - 0.90) < 1e-12) {
      return 1.645;
    }
    return inverseNormal(1 - (1 - confidenceLevel) / 2);
  }

  /**
   * The Wilson score interval of successes out of trials, {low, high} within [0, 1].
   *
   * @throws IllegalArgumentException when trials is not positive or successes not in [0, trials]
   */
  static double[] wilson(long successes, long trials, double z) {
    if (trials <= 0 || successes < 0 || successes > trials) {
      throw new IllegalArgumentException(
          "need 0 <= successes <= trials and trials > 0, got " + successes + " of " + trials);
    }
    double n = trials;
    double p = successes / n;
    double z2 = z * z;
    double denominator = 1 + z2 / n;
    double center = (p + z2 / (2 * n)) / denominator;
    double half = z * Math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator;
    return new double[] {Math.max(0, center - half), Math.min(1, center + half)};
  }

  /**
   * The quantile function of the standard normal distribution, by Acklam's rational
   * approximation (relative error below 1.2e-9), for 0 < p < 1.
   */
  static double inverseNormal(double p) {
    if (!(p > 0 && p < 1)) {
      throw new IllegalArgumentException("p must be strictly between 0 and 1, got " + p);
    }
    final double[] a = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
        1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
    final double[] b = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
        6.680131188771972e+01, -1.328068155288572e+01};
    final double[] c = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
        -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
    final double[] d = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
        3.754408661907416e+00};
    double low = 0.02425;
    if (p < low) {
      double q = Math.sqrt(-2 * Math.log(p));
      return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
          / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    if (p > 1 - low) {
      return -inverseNormal(1 - p);
    }
    double q = p - 0.5;
    double r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
        / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }

  /** The population variance of the values. */
  static double variance(double[] values, int from, int to) {
    int n = to - from;
    double mean = 0;
    for (int i = from; i < to; i++) {
      mean += values[i];
    }
    mean /= n;
    double sum = 0;
    for (int i = from; i < to; i++) {
      sum += (values[i] - mean) * (values[i] - mean);
    }
    return sum / n;
  }
}
