package org.btlm4j.generate;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.btlm4j.GenerationParams;

/**
 * Picks the next token from logits: repetition penalty, then greedy (temperature 0) or
 * temperature → top-k → top-p → min-p → a draw, in HF's order. Seeded, so a run is reproducible.
 */
public final class Sampler {
    private final GenerationParams params;
    private final SplittableRandom random;
    private long[] order = new long[0];
    private float[] probs = new float[0];

    public Sampler(GenerationParams params) {
        this.params = params;
        this.random = params.seed() == null ? new SplittableRandom() : new SplittableRandom(params.seed());
    }

    /**
     * Samples from {@code logits[0..vocab)} (modified in place by the penalty) given the
     * {@code history} of tokens already in the context.
     */
    public int sample(float[] logits, int vocab, int[] history, int historyLength) {
        if (params.repeatPenalty() != 1f) {
            applyRepetitionPenalty(logits, vocab, history, historyLength, params.repeatPenalty());
        }
        if (params.temperature() == 0f) {
            return argmax(logits, vocab);
        }
        return draw(logits, vocab);
    }

    /** HF's rule: a seen token's logit is divided by the penalty when positive, multiplied when not. */
    static void applyRepetitionPenalty(float[] logits, int vocab, int[] history, int n, float penalty) {
        boolean[] seen = new boolean[vocab];
        for (int i = 0; i < n; i++) {
            int id = history[i];
            if (id >= 0 && id < vocab && !seen[id]) {
                seen[id] = true;
                logits[id] = logits[id] > 0 ? logits[id] / penalty : logits[id] * penalty;
            }
        }
    }

    /** The first index of the largest logit, as torch.argmax. NaN logits never win. */
    public static int argmax(float[] logits, int vocab) {
        return argmax(logits, 0, vocab);
    }

    /** The most likely token of the row of {@code vocab} logits at {@code off} (the first of ties). */
    public static int argmax(float[] logits, int off, int vocab) {
        int best = 0;
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            if (logits[off + i] > max) {
                max = logits[off + i];
                best = i;
            }
        }
        return best;
    }

    private int draw(float[] logits, int vocab) {
        float invT = 1f / params.temperature();
        // Sort token ids by logit, descending: the key packs a sortable form of the float above the id.
        if (order.length < vocab) {
            order = new long[vocab];
            probs = new float[vocab];
        }
        for (int i = 0; i < vocab; i++) {
            float v = logits[i] * invT;
            if (Float.isNaN(v)) {
                v = Float.NEGATIVE_INFINITY;
            }
            int bits = Float.floatToIntBits(v);
            int sortable = bits >= 0 ? bits : bits ^ 0x7fffffff; // monotone in v as a signed int
            order[i] = ((long) ~sortable << 32) | i; // ~ makes ascending sort give descending logits
        }
        Arrays.sort(order, 0, vocab);
        int kept = params.topK() > 0 ? Math.min(params.topK(), vocab) : vocab;
        float max = logits[(int) order[0]] * invT;
        double sum = 0;
        for (int r = 0; r < kept; r++) {
            float p = (float) Math.exp(logits[(int) order[r]] * invT - max);
            probs[r] = p;
            sum += p;
        }
        if (params.topP() < 1f) {
            double cumulative = 0;
            int keep = kept;
            for (int r = 0; r < kept; r++) {
                cumulative += probs[r] / sum;
                if (cumulative >= params.topP()) {
                    keep = r + 1;
                    break;
                }
            }
            sum = 0;
            for (int r = 0; r < keep; r++) {
                sum += probs[r];
            }
            kept = keep;
        }
        if (params.minP() > 0f) {
            // probs[0] is the top probability (unnormalised, as are the others: the ratio is what counts).
            float threshold = params.minP() * probs[0];
            int keep = 1;
            while (keep < kept && probs[keep] >= threshold) {
                keep++;
            }
            sum = 0;
            for (int r = 0; r < keep; r++) {
                sum += probs[r];
            }
            kept = keep;
        }
        double u = random.nextDouble() * sum;
        double acc = 0;
        for (int r = 0; r < kept; r++) {
            acc += probs[r];
            if (u < acc) {
                return (int) order[r];
            }
        }
        return (int) order[kept - 1];
    }
}
