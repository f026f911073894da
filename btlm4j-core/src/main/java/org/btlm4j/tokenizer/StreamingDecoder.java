package org.btlm4j.tokenizer;

import java.util.Arrays;

/**
 * Turns generated token ids into text as they arrive. A byte-level token can end in the middle
 * of a UTF-8 character (an emoji is often two or three tokens), so the bytes of an unfinished
 * character are held back until a later token completes it. The concatenation of all
 * {@link #accept} results plus {@link #flush()} equals {@link Gpt2Tokenizer#decode} of the whole
 * sequence, because the lossy rule only ever needs to look ahead within one character.
 *
 * <p>Not thread-safe: one instance per output stream.
 */
public final class StreamingDecoder {
    private final Gpt2Tokenizer tokenizer;
    /** Bytes of an unfinished character; at most 3 between calls. */
    private byte[] pending = new byte[16];
    private int pendingLength;

    StreamingDecoder(Gpt2Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /**
     * Adds one token and returns the text it completed: whole characters only, possibly "" while
     * a multi-byte character is still split. Bytes that can no longer become valid UTF-8 come out
     * as U+FFFD right away.
     *
     * @throws org.btlm4j.BtlmException if the id is outside the vocabulary
     */
    public String accept(int id) {
        byte[] bytes = tokenizer.bytesOf(id);
        if (pendingLength + bytes.length > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(pending.length * 2, pendingLength + bytes.length));
        }
        System.arraycopy(bytes, 0, pending, pendingLength, bytes.length);
        pendingLength += bytes.length;
        StringBuilder out = new StringBuilder(pendingLength);
        int consumed = Utf8Lossy.decode(pending, 0, pendingLength, false, out);
        System.arraycopy(pending, consumed, pending, 0, pendingLength - consumed);
        pendingLength -= consumed;
        return out.toString();
    }

    /** Ends the stream: an unfinished character left over becomes U+FFFD. The decoder is then empty. */
    public String flush() {
        String rest = Utf8Lossy.decode(pending, 0, pendingLength);
        pendingLength = 0;
        return rest;
    }
}
