package org.btlm4j.generate;

import org.btlm4j.BtlmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Perplexity of a token sequence, HF's definition: exp of the mean negative log-probability of
 * every token after the first. A sequence longer than the window is scored in sliding windows of
 * {@code window} tokens moved by {@code stride}: every token is scored exactly once, in the window
 * that gives it the most context the stride allows (the first window scores all its tokens, each
 * later one only the tokens it adds).
 */
public final class Perplexity {

    /**
     * @param tokens the number of tokens scored (all but the first)
     * @param nll    their total negative log-probability, in nats
     */
    public record Result(double perplexity, long tokens, double nll, int windows, List<Bucket> buckets) {
        public Result(double perplexity, long tokens, double nll, int windows) {
            this(perplexity, tokens, nll, windows, List.of());
        }
    }

    /**
     * The tokens scored at positions {@code [from, to)} of their window (the position is the
     * number of tokens of context the token had): how perplexity changes along the context.
     */
    public record Bucket(int from, int to, long tokens, double nll) {
        public double perplexity() {
            return tokens == 0 ? Double.NaN : Math.exp(nll / tokens);
        }
    }

    private Perplexity() {
    }

    public static Result compute(Generator generator, int[] ids, int window, int stride) {
        return compute(generator, ids, window, stride, 0);
    }

    /** As {@link #compute(Generator, int[], int, int)}, with the tokens also counted in buckets of {@code bucket} positions (0: none). */
    public static Result compute(Generator generator, int[] ids, int window, int stride, int bucket) {
        if (bucket < 0) {
            throw new BtlmException("the bucket size must be 0 (none) or more, got " + bucket);
        }
        int nBuckets = bucket == 0 ? 0 : (window + bucket - 1) / bucket;
        double[] bucketNll = new double[nBuckets];
        long[] bucketTokens = new long[nBuckets];
        double[] nll = {0};
        long[] scored = {0};
        int windows = forEachScored(generator, ids, window, stride, (t, position, logits, off, vocab) -> {
            double lp = LogProbs.logProb(logits, off, vocab, ids[t]);
            nll[0] -= lp;
            scored[0]++;
            if (nBuckets > 0) {
                bucketNll[position / bucket] -= lp;
                bucketTokens[position / bucket]++;
            }
        });
        List<Bucket> buckets = new ArrayList<>(nBuckets);
        for (int b = 0; b < nBuckets; b++) {
            buckets.add(new Bucket(b * bucket, Math.min(window, (b + 1) * bucket), bucketTokens[b], bucketNll[b]));
        }
        return new Result(Math.exp(nll[0] / scored[0]), scored[0], nll[0], windows, List.copyOf(buckets));
    }

    /** Receives the logits predicting ids[t], scored at {@code position} of its window. */
    @FunctionalInterface
    public interface ScoredSink {
        void accept(int t, int position, float[] logits, int off, int vocab);
    }

    /**
     * Walks the windows and hands {@code sink} the logits that predict each token after the first,
     * each once, in order of t (indices into {@code ids}); returns the number of windows. Only the
     * logits of the tokens a window adds are computed.
     */
    public static int forEachScored(Generator generator, int[] ids, int window, int stride, ScoredSink sink) {
        if (ids.length < 2) {
            throw new BtlmException("perplexity needs at least two tokens, got " + ids.length);
        }
        if (window < 2 || window > generator.contextLength()) {
            throw new BtlmException("the window must be between 2 and the context of " + generator.contextLength()
                    + " tokens, got " + window);
        }
        if (stride < 1 || stride > window) {
            throw new BtlmException("the stride must be between 1 and the window (" + window + "), got " + stride);
        }
        int windows = 0;
        int prevEnd = 0;
        for (int begin = 0; ; begin += stride) {
            int end = Math.min(begin + window, ids.length);
            int fresh = end - Math.max(prevEnd, begin + 1); // tokens this window adds; its first has no context
            if (fresh > 0) {
                int b = begin;
                int[] w = Arrays.copyOfRange(ids, begin, end);
                generator.forEachLogits(w, w.length - fresh,
                        (t, logits, off, vocab) -> sink.accept(b + t, t, logits, off, vocab));
                windows++;
            }
            prevEnd = end;
            if (end == ids.length) {
                break;
            }
        }
        return windows;
    }
}
