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

    /**
     * The {@code k} most likely tokens under softmax(logits[off..off+n)), most likely first (ties:
     * the lower id first), with their log-probabilities in {@code logprobs[0..k)}; returns their ids.
     */
    public static int[] top(float[] logits, int off, int n, int k, double[] logprobs) {
        k = Math.min(k, n);
        if (k <= 0) {
            return new int[0];
        }
        double lse = logSumExp(logits, off, n);
        int[] ids = new int[k];
        int found = 0;
        for (int i = 0; i < n; i++) {
            float v = logits[off + i];
            if (Float.isNaN(v)) {
                continue;
            }
            if (found < k) {
                found++;
            } else if (!(v > logits[off + ids[k - 1]])) {
                continue;
            }
            int j = found - 1; // insert i, keeping ids sorted by descending logit
            while (j > 0 && logits[off + ids[j - 1]] < v) {
                ids[j] = ids[j - 1];
                j--;
            }
            ids[j] = i;
        }
        for (int r = 0; r < found; r++) {
            logprobs[r] = logits[off + ids[r]] - lse;
        }
        return found == k ? ids : java.util.Arrays.copyOf(ids, found);
    }
}
