package org.btlm4j.tokenizer;

/**
 * GPT-2's pre-tokenizer regex, hand-compiled into a single forward scan:
 *
 * <pre>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</pre>
 *
 * A regex engine would try the alternatives in order at each position and backtrack; here every
 * alternative is decided by at most two code points of look-ahead, so a piece is found in time
 * linear in its length (no blow-up on 5000-character words) and without allocation.
 *
 * <p>{@code \s} is Unicode White_Space, as in Oniguruma / Rust regex / Java's
 * UNICODE_CHARACTER_CLASS, which is what HF tokenizers uses; {@link Character#isWhitespace} is a
 * different set and would give wrong pieces around U+00A0, U+2007, U+202F and U+001C..U+001F.
 */
final class PreTokenizer {
    static final byte LETTER = 0;
    static final byte NUMBER = 1;
    static final byte SPACE = 2;
    static final byte OTHER = 3;

    /** Class of every BMP code point, precomputed because Character.getType is a multi-level lookup. */
    private static final byte[] BMP_CLASS = new byte[0x10000];

    static {
        for (int cp = 0; cp < 0x10000; cp++) {
            BMP_CLASS[cp] = computeClass(cp);
        }
    }

    private PreTokenizer() {
    }

    /** The exact Unicode White_Space property (PropList.txt), not Java's isWhitespace. */
    static boolean isWhiteSpace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F
                || cp == 0x205F || cp == 0x3000;
    }

    static byte computeClass(int cp) {
        if (isWhiteSpace(cp)) {
            return SPACE;
        }
        return switch (Character.getType(cp)) {
            case Character.UPPERCASE_LETTER, Character.LOWERCASE_LETTER, Character.TITLECASE_LETTER,
                 Character.MODIFIER_LETTER, Character.OTHER_LETTER -> LETTER;
            case Character.DECIMAL_DIGIT_NUMBER, Character.LETTER_NUMBER, Character.OTHER_NUMBER -> NUMBER;
            // Lone surrogates (not valid Unicode, only possible in Java strings) land here too.
            default -> OTHER;
        };
    }

    static byte classOf(int cp) {
        return cp < 0x10000 ? BMP_CLASS[cp] : computeClass(cp);
    }

    /** Code point at i, treating a surrogate pair that straddles {@code end} as two lone surrogates. */
    private static int codePointAt(String s, int i, int end) {
        char c = s.charAt(i);
        if (Character.isHighSurrogate(c) && i + 1 < end) {
            char d = s.charAt(i + 1);
            if (Character.isLowSurrogate(d)) {
                return Character.toCodePoint(c, d);
            }
        }
        return c;
    }

    /**
     * End (exclusive, in chars) of the pre-token that starts at {@code start}; {@code start < end}.
     * Callers loop {@code start = pieceEnd(...)} until {@code end}.
     */
    static int pieceEnd(String s, int start, int end) {
        char c = s.charAt(start);
        // Alternatives 1-7: the contractions, case-sensitive exactly as GPT-2's regex is.
        if (c == '\'' && start + 1 < end) {
            char d = s.charAt(start + 1);
            if (d == 's' || d == 't' || d == 'm' || d == 'd') {
                return start + 2;
            }
            if (start + 2 < end) {
                char e = s.charAt(start + 2);
                if ((e == 'e' && (d == 'r' || d == 'v')) || (d == 'l' && e == 'l')) {
                    return start + 3;
                }
            }
        }
        int cp = codePointAt(s, start, end);
        int after = start + Character.charCount(cp);
        byte cls = classOf(cp);
        if (cp == ' ' && after < end) {
            // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": a single U+0020 glues onto whatever
            // non-space run follows it.
            int next = codePointAt(s, after, end);
            byte nextCls = classOf(next);
            if (nextCls != SPACE) {
                return runEnd(s, after + Character.charCount(next), end, nextCls);
            }
        }
        if (cls != SPACE) {
            return runEnd(s, after, end, cls);
        }
        // "\s+(?!\S)|\s+": take the whole whitespace run if it reaches the end of the text;
        // otherwise leave its last character for the next piece (so " word" keeps its space),
        // unless the run is a single character, which "\s+" then takes alone.
        int lastStart = start;
        int i = after;
        while (i < end) {
            int next = codePointAt(s, i, end);
            if (classOf(next) != SPACE) {
                return lastStart == start ? i : lastStart;
            }
            lastStart = i;
            i += Character.charCount(next);
        }
        return end;
    }

    /** End of the maximal run of code points of class {@code cls} starting at {@code i}. */
    private static int runEnd(String s, int i, int end, byte cls) {
        while (i < end) {
            char c = s.charAt(i);
            if (c < 0xD800 || c > 0xDFFF) {
                if (BMP_CLASS[c] != cls) {
                    return i;
                }
                i++;
            } else {
                int cp = codePointAt(s, i, end);
                if (classOf(cp) != cls) {
                    return i;
                }
                i += Character.charCount(cp);
            }
        }
        return end;
    }
}
