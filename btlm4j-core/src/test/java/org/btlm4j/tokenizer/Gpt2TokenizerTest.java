package org.btlm4j.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.btlm4j.BtlmException;
import org.junit.jupiter.api.Test;

/** Behaviour beyond the fixture cases: streaming, special tokens, and randomized cross-checks. */
class Gpt2TokenizerTest {

    private final Gpt2Tokenizer tok = Fixtures.tokenizerJson();

    @Test
    void decodesTokenSplitInsideUtf8Character() {
        String emoji = "\uD83D\uDE00"; // 😀 = F0 9F 98 80, which GPT-2 splits over two tokens
        int[] ids = tok.encode(emoji);
        assertTrue(ids.length >= 2, "expected the emoji to span several tokens");
        assertTrue(tok.tokenBytes(ids[0]).length < 4, "first token must end inside the character");
        StreamingDecoder d = tok.newStreamingDecoder();
        for (int i = 0; i < ids.length - 1; i++) {
            assertEquals("", d.accept(ids[i]), "nothing is complete before the last token");
        }
        assertEquals(emoji, d.accept(ids[ids.length - 1]));
        assertEquals("", d.flush());
    }

    @Test
    void streamingEmitsTextBeforeAndAfterASplitCharacter() {
        int[] ids = tok.encode("Hi \uD83D\uDE00!");
        StreamingDecoder d = tok.newStreamingDecoder();
        List<String> parts = new ArrayList<>();
        for (int id : ids) {
            parts.add(d.accept(id));
        }
        parts.add(d.flush());
        assertEquals("Hi \uD83D\uDE00!", String.join("", parts));
        assertEquals("Hi", parts.get(0));
    }

    @Test
    void streamingFlushTurnsAnUnfinishedCharacterIntoOneReplacement() {
        int[] ids = tok.encode("\uD83D\uDE00");
        StreamingDecoder d = tok.newStreamingDecoder();
        assertEquals("", d.accept(ids[0]));
        assertEquals("\uFFFD", d.flush());
        assertEquals("", d.flush(), "flush empties the decoder");
        assertEquals("a", d.accept(tok.encode("a")[0]));
    }

    @Test
    void streamingMatchesDecodeOnRandomIdSequences() {
        // Random ids make plenty of invalid and cut-off UTF-8, which is where streaming is fragile.
        Random r = new Random(7);
        for (int iter = 0; iter < 3000; iter++) {
            int[] ids = new int[r.nextInt(12)];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = r.nextInt(4) == 0 ? r.nextInt(256) : r.nextInt(tok.vocabSize());
            }
            StreamingDecoder d = tok.newStreamingDecoder();
            StringBuilder sb = new StringBuilder();
            for (int id : ids) {
                sb.append(d.accept(id));
            }
            sb.append(d.flush());
            assertEquals(tok.decode(ids), sb.toString(), java.util.Arrays.toString(ids));
        }
    }

    @Test
    void decodeFollowsRustLossyUtf8() {
        assertEquals("\uFFFD\uFFFD\uFFFD", Utf8Lossy.decode(bytes(0xED, 0xA0, 0x80), 0, 3));
        assertEquals("\uFFFDa", Utf8Lossy.decode(bytes(0xE2, 0x82, 'a'), 0, 3));
        assertEquals("\uFFFD\uFFFD", Utf8Lossy.decode(bytes(0xF0, 0x9F, 0x98, 0xF0, 0x9F), 0, 5));
        assertEquals("\uFFFD\uFFFD", Utf8Lossy.decode(bytes(0xC0, 0xAF), 0, 2));
        assertEquals("\uD7FF\uE000\uDBFF\uDFFF", Utf8Lossy.decode(
                bytes(0xED, 0x9F, 0xBF, 0xEE, 0x80, 0x80, 0xF4, 0x8F, 0xBF, 0xBF), 0, 10));
        assertEquals("\uFEFFx", Utf8Lossy.decode(bytes(0xEF, 0xBB, 0xBF, 'x'), 0, 4), "BOM is kept");
    }

    @Test
    void lossyDecoderAgreesWithJavaOnRandomBytesWithoutSurrogateForms() {
        // Java's decoder follows the same maximal-subpart rule except for ED A0..BF (surrogates).
        Random r = new Random(11);
        int[] interesting = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                0xE0, 0xE1, 0xEC, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF};
        for (int iter = 0; iter < 20000; iter++) {
            byte[] b = new byte[r.nextInt(10)];
            for (int i = 0; i < b.length; i++) {
                b[i] = (byte) interesting[r.nextInt(interesting.length)];
            }
            assertEquals(new String(b, StandardCharsets.UTF_8), Utf8Lossy.decode(b, 0, b.length), hex(b));
        }
    }

    @Test
    void specialTokenIsSplitOutOnlyByEncode() {
        assertArrayEquals(new int[] {64, 220, 50256, 275}, tok.encode("a <|endoftext|> b"));
        assertArrayEquals(tok.encodeOrdinary("a <|endoftext|> b"), tok.encodeOrdinary("a <|endoftext|> b"));
        assertEquals("a <|endoftext|> b", tok.decode(tok.encodeOrdinary("a <|endoftext|> b")));
        assertEquals("<|endoftext|>", tok.tokenText(50256));
        assertEquals("\u0120the", tok.tokenText(262));
        assertArrayEquals(" the".getBytes(StandardCharsets.UTF_8), tok.tokenBytes(262));
    }

    @Test
    void longWordsAreLinearEnough() {
        // 200k chars of one letter: the rescan algorithm would be quadratic here.
        String word = "a".repeat(200_000);
        long t0 = System.nanoTime();
        int[] ids = tok.encode(word);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(word, tok.decode(ids));
        assertTrue(ms < 5_000, "took " + ms + " ms");
    }

    @Test
    void heapAndRescanMergesAgree() {
        Random r = new Random(3);
        Gpt2Tokenizer t = Fixtures.vocabAndMerges();
        MergeTable merges = mergeTableOf(t);
        int[] byteIds = new int[256];
        for (int id = 0; id < t.vocabSize(); id++) {
            byte[] tb = t.tokenBytes(id);
            if (tb.length == 1) {
                byteIds[tb[0] & 0xFF] = id;
            }
        }
        String[] pool = {"a", "b", "e", "h", "t", " ", "th", "the", "er", "é", "\uD83D\uDE00", "1", "0", "!", "\n", "ing"};
        for (int iter = 0; iter < 3000; iter++) {
            StringBuilder sb = new StringBuilder();
            int n = r.nextInt(iter < 2000 ? 30 : 400);
            for (int i = 0; i < n; i++) {
                sb.append(pool[r.nextInt(pool.length)]);
            }
            byte[] bytes = sb.toString().getBytes(StandardCharsets.UTF_8);
            int[] sym = new int[bytes.length];
            for (int i = 0; i < bytes.length; i++) {
                sym[i] = byteIds[bytes[i] & 0xFF];
            }
            int[] a = sym.clone();
            int[] b = sym.clone();
            int na = BytePairMerger.mergeByRescan(merges, a, a.length);
            int nb = BytePairMerger.mergeWithHeap(merges, b, b.length);
            assertArrayEquals(java.util.Arrays.copyOf(a, na), java.util.Arrays.copyOf(b, nb), sb.toString());
        }
    }

    /** Rebuilds the merge table from the fixture merges, independently of the loader. */
    private static MergeTable mergeTableOf(Gpt2Tokenizer t) {
        List<String> lines;
        try {
            lines = java.nio.file.Files.readAllLines(Fixtures.path("gpt2-tokenizer/merges.txt"));
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
        Map<String, Integer> ids = vocabMap(t);
        MergeTable m = new MergeTable(lines.size());
        int rank = 0;
        for (String line : lines) {
            if (line.startsWith("#") || line.isEmpty()) {
                continue;
            }
            String[] p = line.split(" ");
            m.put(ids.get(p[0]), ids.get(p[1]), rank++, ids.get(p[0] + p[1]));
        }
        return m;
    }

    private static Map<String, Integer> vocabMap(Gpt2Tokenizer t) {
        Map<String, Integer> ids = new HashMap<>();
        for (int id = 0; id < t.vocabSize(); id++) {
            ids.put(t.tokenText(id), id);
        }
        return ids;
    }

    /**
     * Differential test: random strings through (a) this tokenizer and (b) a slow reference made
     * of java.util.regex with UNICODE_CHARACTER_CLASS (so \s is White_Space) and a naive
     * string-based BPE. Catches pre-tokenizer corner cases the fixtures do not spell out.
     */
    @Test
    void agreesWithRegexAndNaiveBpeOnRandomText() {
        Pattern gpt2 = Pattern.compile(
                "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
                Pattern.UNICODE_CHARACTER_CLASS);
        Map<String, Integer> vocab = vocabMap(tok);
        Map<String, Integer> ranks = new HashMap<>();
        try {
            int rank = 0;
            for (String line : java.nio.file.Files.readAllLines(Fixtures.path("gpt2-tokenizer/merges.txt"))) {
                if (!line.startsWith("#version")) {
                    ranks.put(line, rank++);
                }
            }
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
        String[] pool = {"a", "Z", "é", "the", "The", " ", " ", "  ", "\t", "\n", "\r\n", "\u00A0", "\u0085", "\u2007",
                "\u202F", "\u3000", "\u2028", "\u001C", "\u001F", "\u000B", "\u200B", "\uFEFF", "'", "'s", "'S", "'re",
                "'ll", "'ve", "'d", "'m", "'t", "'x", "1", "42", "\u00B2", "\u2167", "\u0663", "!", "?!", ".", "-",
                "\u4E2D\u6587", "\u0416", "\u05D0", "\u0915\u093F", "\u0301", "\uD83D\uDE00", "\uD83D\uDC4D\uD83C\uDFFD",
                "\uD835\uDC00", "\uD800\uDC00", "<|endoftext|>", "<|", "|>", "\u00AD", "$", "_", "\u0000"};
        Random r = new Random(42);
        for (int iter = 0; iter < 4000; iter++) {
            StringBuilder sb = new StringBuilder();
            int n = r.nextInt(iter % 100 == 0 ? 300 : 16);
            for (int i = 0; i < n; i++) {
                sb.append(pool[r.nextInt(pool.length)]);
            }
            String text = sb.toString();
            List<Integer> expected = new ArrayList<>();
            Matcher m = gpt2.matcher(text);
            while (m.find()) {
                for (String t : naiveBpe(m.group(), ranks)) {
                    expected.add(vocab.get(t));
                }
            }
            int[] want = expected.stream().mapToInt(Integer::intValue).toArray();
            assertArrayEquals(want, tok.encodeOrdinary(text), Fixtures.show(text));
            assertEquals(text, tok.decode(want), Fixtures.show(text));
        }
    }

    /** Textbook BPE on strings: merge the lowest-ranked adjacent pair (leftmost on ties), repeat. */
    private static List<String> naiveBpe(String piece, Map<String, Integer> ranks) {
        List<String> parts = new ArrayList<>();
        for (byte b : piece.getBytes(StandardCharsets.UTF_8)) {
            parts.add(String.valueOf(ByteLevel.charOf(b & 0xFF)));
        }
        while (parts.size() > 1) {
            int best = -1;
            int bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < parts.size(); i++) {
                Integer rank = ranks.get(parts.get(i) + " " + parts.get(i + 1));
                if (rank != null && rank < bestRank) {
                    bestRank = rank;
                    best = i;
                }
            }
            if (best < 0) {
                break;
            }
            parts.set(best, parts.get(best) + parts.remove(best + 1));
        }
        return parts;
    }

    @Test
    void decodeRejectsIdsOutsideTheVocabulary() {
        BtlmException e = assertThrows(BtlmException.class, () -> tok.decode(new int[] {1, 60000}));
        assertEquals("token id 60000 is outside the vocabulary (0..50256)", e.getMessage());
        assertThrows(BtlmException.class, () -> tok.decode(new int[] {-1}));
        assertThrows(BtlmException.class, () -> tok.newStreamingDecoder().accept(50257));
        assertThrows(BtlmException.class, () -> tok.tokenBytes(50257));
        assertThrows(BtlmException.class, () -> tok.tokenText(-5));
        assertThrows(BtlmException.class, () -> tok.encode(null));
        assertThrows(BtlmException.class, () -> tok.decode(null));
    }

    @Test
    void sharedTokenizerIsSafeAcrossThreads() throws Exception {
        // The piece cache is written racily by design; a fresh tokenizer makes every thread miss.
        Gpt2Tokenizer fresh = Gpt2Tokenizer.fromTokenizerJson(Fixtures.path("gpt2-tokenizer/tokenizer.json"));
        List<Fixtures.EncodeCase> cases = Fixtures.encodeCases();
        List<java.util.concurrent.Callable<Void>> jobs = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            int seed = t;
            jobs.add(() -> {
                List<Fixtures.EncodeCase> mine = new ArrayList<>(cases);
                java.util.Collections.shuffle(mine, new Random(seed));
                for (int round = 0; round < 5; round++) {
                    for (Fixtures.EncodeCase c : mine) {
                        assertArrayEquals(c.ids(), fresh.encode(c.text()), c.toString());
                    }
                }
                return null;
            });
        }
        try (var pool = java.util.concurrent.Executors.newFixedThreadPool(4)) {
            for (var f : pool.invokeAll(jobs)) {
                f.get();
            }
        }
    }

    @Test
    void loneSurrogatesEncodeAsReplacementCharacter() {
        assertArrayEquals(tok.encode("a\uFFFDb"), tok.encode("a\uD800b"));
        assertArrayEquals(tok.encode("\uFFFD"), tok.encode("\uDC00"));
    }

    private static byte[] bytes(int... values) {
        byte[] b = new byte[values.length];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) values[i];
        }
        return b;
    }

    private static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) {
            sb.append(String.format("%02X ", x));
        }
        return sb.toString();
    }
}
