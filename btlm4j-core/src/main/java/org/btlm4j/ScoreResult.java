package org.btlm4j;

/**
 * Log-probabilities of a text under the model: {@code tokenLogprobs[t]} = log p(ids[t] | ids[0..t-1])
 * for t ≥ 1; the first token has none ({@code NaN} here, {@code null} in JSON, as in OpenAI's echo).
 *
 * @param tokenIds      the scored tokens
 * @param tokenLogprobs natural-log probability of each token given those before it ({@code NaN} first)
 */
public record ScoreResult(int[] tokenIds, double[] tokenLogprobs) {
    /** Copies the arrays, so that the record cannot change. */
    public ScoreResult {
        tokenIds = tokenIds.clone();
        tokenLogprobs = tokenLogprobs.clone();
    }

    /** A copy of the token ids. */
    @Override
    public int[] tokenIds() {
        return tokenIds.clone();
    }

    /** A copy of the log-probabilities. */
    @Override
    public double[] tokenLogprobs() {
        return tokenLogprobs.clone();
    }

    /** Sum of the log-probabilities of every token after the first. */
    public double totalLogprob() {
        double sum = 0;
        for (int t = 1; t < tokenLogprobs.length; t++) {
            sum += tokenLogprobs[t];
        }
        return sum;
    }

    /** exp of the mean negative log-probability of the scored tokens (NaN with fewer than two tokens). */
    public double perplexity() {
        int n = tokenLogprobs.length - 1;
        return n <= 0 ? Double.NaN : Math.exp(-totalLogprob() / n);
    }
}
