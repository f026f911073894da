package org.btlm4j;

/**
 * What a generation produced.
 *
 * @param tokenIds the new tokens (all of them, including the one that completed a stop string;
 *                 the end-of-text token is not included)
 * @param text     the new text, cut before a stop string
 */
public record GenerationResult(int[] promptTokenIds, int[] tokenIds, String text, FinishReason finishReason) {
    public GenerationResult {
        promptTokenIds = promptTokenIds.clone();
        tokenIds = tokenIds.clone();
    }

    @Override
    public int[] promptTokenIds() {
        return promptTokenIds.clone();
    }

    @Override
    public int[] tokenIds() {
        return tokenIds.clone();
    }
}
