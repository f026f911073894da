package org.btlm4j.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import org.btlm4j.BtlmException;
import org.btlm4j.HostileInput;

/**
 * Coverage-guided fuzzing of the GPT-2 tokenizer (Jazzer) with the fixture GPT-2 vocabulary.
 * Regression inputs live in {@code src/test/resources/org/btlm4j/tokenizer/TokenizerFuzzTestInputs/};
 * {@code JAZZER_FUZZ=1} fuzzes one target for {@code maxDuration}.
 */
class TokenizerFuzzTest {

    private static Gpt2Tokenizer tokenizer() {
        return Fixtures.tokenizerJson();
    }

    /**
     * Any well-formed text comes back unchanged from decode(encode(text)), with and without the
     * special-token handling, and the streaming decoder gives the same text; a lone surrogate
     * (which UTF-8 cannot carry) comes back as U+FFFD, as it would through UTF-8. The input is read
     * as UTF-16LE, so that it can hold any Java string, lone surrogates included.
     */
    @FuzzTest(maxDuration = "60s")
    void textRoundTrip(byte[] utf16) {
        char[] chars = new char[utf16.length / 2]; // by hand: the JDK's UTF-16 decoder replaces lone surrogates
        for (int i = 0; i < chars.length; i++) {
            chars[i] = (char) ((utf16[2 * i] & 0xff) | (utf16[2 * i + 1] & 0xff) << 8);
        }
        String text = new String(chars);
        Gpt2Tokenizer tok = tokenizer();
        int[] ids = tok.encode(text);
        int[] ordinary = tok.encodeOrdinary(text);
        String expected = replaceLoneSurrogates(text);
        assertEquals(expected, tok.decode(ids));
        assertEquals(expected, tok.decode(ordinary));
        assertEquals(expected, streamed(tok, ids));
        for (int id : ordinary) {
            assertTrue(id >= 0 && id < tok.vocabSize() && id != tok.eosTokenId(), "ordinary encoding gave id " + id);
        }
        // encoding is a function of the text: the same text gives the same ids again
        assertArrayEquals(ids, tok.encode(text));
    }

    /** Arbitrary bytes read as UTF-8 (always well-formed after decoding) round-trip exactly. */
    @FuzzTest(maxDuration = "60s")
    void bytesRoundTrip(byte[] bytes) {
        String text = new String(bytes, StandardCharsets.UTF_8);
        Gpt2Tokenizer tok = tokenizer();
        assertEquals(text, tok.decode(tok.encodeOrdinary(text)));
    }

    /**
     * Arbitrary ids: valid ones decode to their bytes read as lossy UTF-8 (compared with the JDK's
     * decoder where the two rules agree), streamed or not; any invalid id is refused with a
     * BtlmException naming it.
     */
    @FuzzTest(maxDuration = "60s")
    void decodeIds(FuzzedDataProvider data) {
        Gpt2Tokenizer tok = tokenizer();
        int n = data.consumeInt(0, 64);
        int[] ids = new int[n];
        boolean valid = true;
        for (int i = 0; i < n; i++) {
            ids[i] = data.consumeBoolean() ? data.consumeInt(0, tok.vocabSize() - 1) : data.consumeInt();
            valid &= ids[i] >= 0 && ids[i] < tok.vocabSize();
        }
        if (!valid) {
            BtlmException e = HostileInput.refusalOf(() -> tok.decode(ids));
            assertTrue(e != null && e.getMessage().contains("token id"), "invalid ids were decoded");
            return;
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (int id : ids) {
            bytes.writeBytes(tok.tokenBytes(id));
        }
        String decoded = tok.decode(ids);
        if (!hasEncodedSurrogate(bytes.toByteArray())) { // where Java's decoder differs (see Utf8Lossy)
            assertEquals(new String(bytes.toByteArray(), StandardCharsets.UTF_8), decoded);
        }
        assertEquals(decoded, streamed(tok, ids));
    }

    private static String streamed(Gpt2Tokenizer tok, int[] ids) {
        StreamingDecoder d = tok.newStreamingDecoder();
        StringBuilder b = new StringBuilder();
        for (int id : ids) {
            b.append(d.accept(id));
        }
        return b.append(d.flush()).toString();
    }

    private static String replaceLoneSurrogates(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                b.append(c).append(s.charAt(++i));
            } else {
                b.append(Character.isSurrogate(c) ? Utf8Lossy.REPLACEMENT : c);
            }
        }
        return b.toString();
    }

    /** ED A0..BF: the start of a UTF-8-encoded surrogate. */
    private static boolean hasEncodedSurrogate(byte[] b) {
        for (int i = 0; i + 1 < b.length; i++) {
            if ((b[i] & 0xff) == 0xED && (b[i + 1] & 0xff) >= 0xA0 && (b[i + 1] & 0xff) <= 0xBF) {
                return true;
            }
        }
        return false;
    }
}
