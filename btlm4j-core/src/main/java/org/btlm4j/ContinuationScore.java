package org.btlm4j;

/**
 * The log-probabilities of a continuation's tokens given everything before them, and whether
 * each was the most likely token (greedy decoding would have produced the continuation).
 */
public record ContinuationScore(double[] tokenLogprobs, boolean greedy) {
    public ContinuationScore {
        tokenLogprobs = tokenLogprobs.clone();
    }

    @Override
    public double[] tokenLogprobs() {
        return tokenLogprobs.clone();
    }

    /** Sum of the log-probabilities: log p(continuation | context). */
    public double logprob() {
        double sum = 0;
        for (double lp : tokenLogprobs) {
            sum += lp;
        }
        return sum;
    }

    public int tokens() {
        return tokenLogprobs.length;
    }
}
