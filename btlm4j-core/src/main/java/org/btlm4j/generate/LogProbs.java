package org.btlm4j.generate;

/** Log-softmax helpers in double precision for scoring. */
public final class LogProbs {
    private LogProbs() {
    }

    /** log Σ exp(logits[off..off+n)). */
    public static double logSumExp(float[] logits, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, logits[off + i]);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Math.exp(logits[off + i] - (double) max);
        }
        return max + Math.log(sum);
    }

    /** log p(token) under softmax(logits[off..off+n)). */
    public static double logProb(float[] logits, int off, int n, int token) {
        return logits[off + token] - logSumExp(logits, off, n);
    }
}
