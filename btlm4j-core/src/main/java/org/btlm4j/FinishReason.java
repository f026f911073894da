package org.btlm4j;

/** Why generation ended. */
public enum FinishReason {
    /** max new tokens reached, or the context is full. */
    LENGTH,
    /** a stop string appeared. */
    STOP,
    /** the model produced the end-of-text token. */
    EOS;

    /** The lower-case word used in JSON output ({@code length}, {@code stop}, {@code eos}). */
    public String json() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
