package org.btlm4j.generate;

import org.btlm4j.BtlmException;
import org.btlm4j.ScoreResult;

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
    public record Result(double perplexity, long tokens, double nll, int windows) {
    }

    private Perplexity() {
    }

    public static Result compute(Generator generator, int[] ids, int window, int stride) {
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
        double nll = 0;
        long scored = 0;
        int windows = 0;
        int prevEnd = 0;
        for (int begin = 0; ; begin += stride) {
            int end = Math.min(begin + window, ids.length);
            int fresh = end - Math.max(prevEnd, begin + 1); // tokens this window adds; its first has no context
            if (fresh > 0) {
                int[] w = java.util.Arrays.copyOfRange(ids, begin, end);
                ScoreResult r = generator.score(w);
                double[] lp = r.tokenLogprobs();
                for (int t = w.length - fresh; t < w.length; t++) {
                    nll -= lp[t];
                }
                scored += fresh;
                windows++;
            }
            prevEnd = end;
            if (end == ids.length) {
                break;
            }
        }
        return new Result(Math.exp(nll / scored), scored, nll, windows);
    }
}
