package org.btlm4j;

import java.util.List;

/**
 * How to generate: the sampling rules and the stop conditions. {@code temperature} 0 is greedy
 * (HF's default for BTLM, whose generation config sets nothing else).
 *
 * @param maxNewTokens  the most tokens to generate (0 allowed)
 * @param temperature   0 for greedy, else logits are divided by it
 * @param topK          keep the k most likely tokens (0: no limit)
 * @param topP          keep the smallest set whose probability reaches p (1: no limit)
 * @param minP          drop tokens less likely than minP × the top probability (0: off)
 * @param repeatPenalty HF's repetition penalty on every token already in the context (1: off)
 * @param seed          seed of the sampler; null draws one
 * @param stop          generation ends when the text contains one of these (the stop string itself
 *                      is not returned)
 * @param ignoreEos     keep generating after the end-of-text token
 */
public record GenerationParams(int maxNewTokens, float temperature, int topK, float topP, float minP,
        float repeatPenalty, Long seed, List<String> stop, boolean ignoreEos) {

    /** Checks the values; a {@link BtlmException} names the first one out of range. */
    public GenerationParams {
        stop = stop == null ? List.of() : List.copyOf(stop);
        if (maxNewTokens < 0) {
            throw new BtlmException("max new tokens must be 0 or more, got " + maxNewTokens);
        }
        if (!(temperature >= 0) || !Float.isFinite(temperature)) {
            throw new BtlmException("temperature must be a number >= 0, got " + temperature);
        }
        if (topK < 0) {
            throw new BtlmException("top-k must be 0 (off) or more, got " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new BtlmException("top-p must be in (0, 1], got " + topP);
        }
        if (!(minP >= 0 && minP <= 1)) {
            throw new BtlmException("min-p must be in [0, 1], got " + minP);
        }
        if (!(repeatPenalty > 0) || !Float.isFinite(repeatPenalty)) {
            throw new BtlmException("repeat penalty must be a positive number, got " + repeatPenalty);
        }
        for (String s : stop) {
            if (s.isEmpty()) {
                throw new BtlmException("a stop string must not be empty");
            }
        }
    }

    /** Greedy, 128 new tokens, stop at end of text. */
    public static GenerationParams defaults() {
        return new GenerationParams(128, 0f, 0, 1f, 0f, 1f, null, List.of(), false);
    }

    /** A copy with another maximum of new tokens. */
    public GenerationParams withMaxNewTokens(int n) {
        return new GenerationParams(n, temperature, topK, topP, minP, repeatPenalty, seed, stop, ignoreEos);
    }

    /** A copy with another temperature (0: greedy). */
    public GenerationParams withTemperature(float t) {
        return new GenerationParams(maxNewTokens, t, topK, topP, minP, repeatPenalty, seed, stop, ignoreEos);
    }

    /** A copy with another top-k (0: off). */
    public GenerationParams withTopK(int k) {
        return new GenerationParams(maxNewTokens, temperature, k, topP, minP, repeatPenalty, seed, stop, ignoreEos);
    }

    /** A copy with another top-p (1: off). */
    public GenerationParams withTopP(float p) {
        return new GenerationParams(maxNewTokens, temperature, topK, p, minP, repeatPenalty, seed, stop, ignoreEos);
    }

    /** A copy with another min-p (0: off). */
    public GenerationParams withMinP(float p) {
        return new GenerationParams(maxNewTokens, temperature, topK, topP, p, repeatPenalty, seed, stop, ignoreEos);
    }

    /** A copy with another repetition penalty (1: off). */
    public GenerationParams withRepeatPenalty(float r) {
        return new GenerationParams(maxNewTokens, temperature, topK, topP, minP, r, seed, stop, ignoreEos);
    }

    /** A copy with another sampler seed (null: a random one). */
    public GenerationParams withSeed(Long s) {
        return new GenerationParams(maxNewTokens, temperature, topK, topP, minP, repeatPenalty, s, stop, ignoreEos);
    }

    /** A copy with other stop strings. */
    public GenerationParams withStop(List<String> s) {
        return new GenerationParams(maxNewTokens, temperature, topK, topP, minP, repeatPenalty, seed, s, ignoreEos);
    }

    /** A copy that does or does not keep going after the end-of-text token. */
    public GenerationParams withIgnoreEos(boolean i) {
        return new GenerationParams(maxNewTokens, temperature, topK, topP, minP, repeatPenalty, seed, stop, i);
    }
}
