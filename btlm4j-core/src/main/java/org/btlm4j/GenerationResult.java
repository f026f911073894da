package org.btlm4j;

/**
 * What a generation produced.
 *
 * @param promptTokenIds the prompt's tokens
 * @param tokenIds the new tokens (all of them, including the one that completed a stop string;
 *                 the end-of-text token is not included)
 * @param text     the new text, cut before a stop string
 * @param finishReason why the generation ended
 */
public record GenerationResult(int[] promptTokenIds, int[] tokenIds, String text, FinishReason finishReason) {
    /** Copies the arrays, so that the record cannot change. */
    public GenerationResult {
        promptTokenIds = promptTokenIds.clone();
        tokenIds = tokenIds.clone();
    }

    /** A copy of the prompt's token ids. */
    @Override
    public int[] promptTokenIds() {
        return promptTokenIds.clone();
    }

    /** A copy of the new token ids. */
    @Override
    public int[] tokenIds() {
        return tokenIds.clone();
    }
}
