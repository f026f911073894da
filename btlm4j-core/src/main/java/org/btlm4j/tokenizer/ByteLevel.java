package org.btlm4j.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * GPT-2's byte-level alphabet ({@code bytes_to_unicode}): every byte value gets a printable
 * character so that vocabulary entries can be stored as ordinary strings. Bytes that are already
 * printable (and not a space) stand for themselves; the remaining 68 bytes are mapped, in byte
 * order, to U+0100, U+0101, ... That is why a leading space shows up as "Ġ" (U+0120) in tokens.
 */
final class ByteLevel {
    /** BYTE_TO_CHAR[b] is the alphabet character for byte b (0..255). */
    private static final char[] BYTE_TO_CHAR = new char[256];
    /** CHAR_TO_BYTE[c] is the byte for alphabet character c, or -1; all alphabet chars are < 0x144. */
    private static final short[] CHAR_TO_BYTE = new short[0x200];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, (short) -1);
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + extra++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = (short) b;
        }
    }

    private ByteLevel() {
    }

    static char charOf(int b) {
        return BYTE_TO_CHAR[b & 0xFF];
    }

    /** The byte for an alphabet character, or -1 when the character is not in the alphabet. */
    static int byteOf(char c) {
        return c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    }

    /**
     * Raw bytes of a token string. Mirrors HF's ByteLevel decoder: if every character belongs to
     * the alphabet the token is mapped back byte by byte, otherwise (e.g. an added token such as
     * "<|im_start|>" containing characters outside the alphabet) its plain UTF-8 is used.
     */
    static byte[] tokenBytes(String token) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(token.length());
        for (int i = 0; i < token.length(); i++) {
            int b = byteOf(token.charAt(i));
            if (b < 0) {
                return token.getBytes(StandardCharsets.UTF_8);
            }
            out.write(b);
        }
        return out.toByteArray();
    }
}
