package org.btlm4j.generate;

import org.btlm4j.BtlmException;

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
        double[] nll = {0};
        long[] scored = {0};
        int windows = forEachScored(generator, ids, window, stride, (t, logits, off, vocab) -> {
            nll[0] -= LogProbs.logProb(logits, off, vocab, ids[t]);
            scored[0]++;
        });
        return new Result(Math.exp(nll[0] / scored[0]), scored[0], nll[0], windows);
    }

    /**
     * Walks the windows and hands {@code sink} the logits that predict each token after the first,
     * each once, in order of t (indices into {@code ids}); returns the number of windows.
     */
    public static int forEachScored(Generator generator, int[] ids, int window, int stride, Generator.LogitsSink sink) {
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
            int firstFresh = Math.max(prevEnd, begin + 1); // tokens this window adds; its first has no context
            if (end > firstFresh) {
                final int b = begin;
                generator.forEachLogits(java.util.Arrays.copyOfRange(ids, begin, end), (t, logits, off, vocab) -> {
                    if (b + t >= firstFresh) {
                        sink.accept(b + t, logits, off, vocab);
                    }
                });
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
