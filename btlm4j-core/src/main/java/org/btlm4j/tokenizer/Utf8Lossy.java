package org.btlm4j.tokenizer;

/**
 * UTF-8 decoding with the WHATWG / Unicode "maximal subpart" replacement rule, which is what
 * Rust's {@code String::from_utf8_lossy} (and therefore HF's ByteLevel decoder) does: every
 * maximal prefix of a would-be-valid sequence that is cut short becomes one U+FFFD, and the byte
 * that broke it is examined afresh. Java's own decoder differs for encoded surrogates (ED A0 80
 * gives one U+FFFD in Java, three here), which is why this is hand-written.
 */
final class Utf8Lossy {
    static final char REPLACEMENT = '\uFFFD';

    private Utf8Lossy() {
    }

    /**
     * Decodes {@code bytes[from..to)} into {@code out}.
     *
     * @param endOfInput when false, a sequence cut short by {@code to} that could still become
     *                   valid is left undecoded, for the streaming decoder to complete later
     * @return the index of the first byte not consumed ({@code to} when endOfInput is true)
     */
    static int decode(byte[] bytes, int from, int to, boolean endOfInput, StringBuilder out) {
        int i = from;
        while (i < to) {
            int b0 = bytes[i] & 0xFF;
            if (b0 < 0x80) {
                out.append((char) b0);
                i++;
                continue;
            }
            int need; // continuation bytes after the lead
            int lo = 0x80; // allowed range of the first continuation byte; later ones are 80..BF
            int hi = 0xBF;
            int cp;
            if (b0 >= 0xC2 && b0 <= 0xDF) {
                need = 1;
                cp = b0 & 0x1F;
            } else if (b0 >= 0xE0 && b0 <= 0xEF) {
                need = 2;
                cp = b0 & 0x0F;
                if (b0 == 0xE0) {
                    lo = 0xA0; // excludes overlong forms
                } else if (b0 == 0xED) {
                    hi = 0x9F; // excludes UTF-16 surrogates
                }
            } else if (b0 >= 0xF0 && b0 <= 0xF4) {
                need = 3;
                cp = b0 & 0x07;
                if (b0 == 0xF0) {
                    lo = 0x90;
                } else if (b0 == 0xF4) {
                    hi = 0x8F; // excludes code points above U+10FFFF
                }
            } else {
                out.append(REPLACEMENT); // 80..C1 or F5..FF can never start a character
                i++;
                continue;
            }
            int j = i + 1;
            boolean broken = false;
            for (int k = 0; k < need; k++, j++) {
                if (j >= to) {
                    if (!endOfInput) {
                        return i; // may still be completed by later bytes
                    }
                    broken = true;
                    break;
                }
                int b = bytes[j] & 0xFF;
                if (b < lo || b > hi) {
                    broken = true;
                    break;
                }
                cp = (cp << 6) | (b & 0x3F);
                lo = 0x80;
                hi = 0xBF;
            }
            if (broken) {
                out.append(REPLACEMENT); // the maximal subpart i..j-1; byte j is looked at again
            } else {
                out.appendCodePoint(cp);
            }
            i = j;
        }
        return i;
    }

    static String decode(byte[] bytes, int from, int to) {
        StringBuilder sb = new StringBuilder(to - from);
        decode(bytes, from, to, true, sb);
        return sb.toString();
    }
}
