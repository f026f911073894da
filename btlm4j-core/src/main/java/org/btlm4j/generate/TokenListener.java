package org.btlm4j.generate;

/** Receives generation output as it appears. */
@FunctionalInterface
public interface TokenListener {
    /**
     * Called after each new token with the text that became final (possibly empty while a
     * character or a possible stop string is incomplete).
     */
    void onToken(int tokenId, String text);
}
