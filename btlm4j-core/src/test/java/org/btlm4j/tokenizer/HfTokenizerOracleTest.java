package org.btlm4j.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.btlm4j.Fixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Differential test against HF's own Rust tokenizer (through DJL, offline) on random strings built
 * from the characters that trip GPT-2 re-implementations: Unicode spaces, contractions, digits,
 * punctuation runs, combining marks, emoji, CJK, controls and the end-of-text token.
 */
class HfTokenizerOracleTest {
    private static HuggingFaceTokenizer hf;
    private static Gpt2Tokenizer ours;

    @BeforeAll
    static void load() throws IOException {
        Path json = Fixtures.resource("fixtures/gpt2-tokenizer/tokenizer.json");
        // DJL's own default truncates at 512 tokens; HF does not.
        hf = HuggingFaceTokenizer.newInstance(json, Map.of("truncation", "false", "padding", "false"));
        ours = Gpt2Tokenizer.fromTokenizerJson(json);
    }

    @AfterAll
    static void close() {
        hf.close();
    }

    private static final String[] PIECES = {
        " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u2009", "\u3000", "\u0085", "\u200b", "\ufeff", "'s", "'t", "'re",
        "'ve", "'m", "'ll", "'d", "'S", "'", "a", "The", "word", "hello", "naïve", "café", "e\u0301", "123", "4",
        "٣", "½", "!!", "...", "?!", "-", "_", "{}", "()", "<|endoftext|>", "<|endoftext", "😀", "👩‍👩‍👧", "🇫🇷",
        "中文", "日本語", "한국어", "Привет", "שלום", "مرحبا", "\u0000", "\u001f", "\ud7ff", "\ue000", "\uffff", "𝔘"};

    @Test
    void encodesRandomTrickyStringsExactlyAsHf() {
        Random r = new Random(2026);
        for (int n = 0; n < 3000; n++) {
            StringBuilder b = new StringBuilder();
            int parts = 1 + r.nextInt(12);
            for (int i = 0; i < parts; i++) {
                b.append(PIECES[r.nextInt(PIECES.length)]);
            }
            String text = b.toString();
            Encoding e = hf.encode(text, false, false);
            long[] want = e.getIds();
            int[] got = ours.encode(text);
            int[] wantInts = new int[want.length];
            for (int i = 0; i < want.length; i++) {
                wantInts[i] = (int) want[i];
            }
            assertArrayEquals(wantInts, got, () -> "text " + escape(text));
            assertEquals(hf.decode(want, false), ours.decode(got), () -> "decode of " + escape(text));
        }
    }

    private static String escape(String s) {
        StringBuilder b = new StringBuilder("\"");
        s.codePoints().forEach(c -> b.append(c >= 0x20 && c < 0x7f ? Character.toString(c) : String.format("\\u{%x}", c)));
        return b.append('"').toString();
    }
}
