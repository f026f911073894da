package org.btlm4j.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import org.btlm4j.BtlmException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loading errors must be BtlmExceptions that name the file and the problem. */
class TokenizerFilesTest {
    @TempDir
    Path dir;

    private static Path vocab() {
        return Fixtures.path("gpt2-tokenizer/vocab.json");
    }

    private static Path merges() {
        return Fixtures.path("gpt2-tokenizer/merges.txt");
    }

    private Path write(String name, String content) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, content, StandardCharsets.UTF_8);
        return p;
    }

    private static BtlmException fails(org.junit.jupiter.api.function.Executable e, String... fragments) {
        BtlmException ex = assertThrows(BtlmException.class, e);
        for (String f : fragments) {
            assertTrue(ex.getMessage().contains(f), "message \"" + ex.getMessage() + "\" lacks \"" + f + "\"");
        }
        return ex;
    }

    @Test
    void missingFiles() {
        Path missing = dir.resolve("nope/tokenizer.json");
        fails(() -> Gpt2Tokenizer.fromTokenizerJson(missing), missing.toString(), "file not found");
        Path missingMerges = dir.resolve("merges.txt");
        fails(() -> Gpt2Tokenizer.fromVocabAndMerges(vocab(), missingMerges), missingMerges.toString(), "file not found");
        fails(() -> Gpt2Tokenizer.fromVocabAndMerges(dir.resolve("vocab.json"), merges()), "vocab.json", "file not found");
        fails(() -> Gpt2Tokenizer.fromTokenizerJson(null), "tokenizer.json");
    }

    @Test
    void directoryInsteadOfFile() {
        fails(() -> Gpt2Tokenizer.fromTokenizerJson(dir), dir.toString());
    }

    @Test
    void malformedMergesLine() throws IOException {
        Path m = write("merges.txt", "#version: 0.2\n\u0120 t\nbad\n");
        fails(() -> Gpt2Tokenizer.fromVocabAndMerges(vocab(), m),
                "merges.txt line 3: expected two tokens separated by a space");
        Path m2 = write("merges2.txt", "#version: 0.2\na b c\n");
        fails(() -> Gpt2Tokenizer.fromVocabAndMerges(vocab(), m2), "merges2.txt line 2");
    }

    @Test
    void mergeWithUnknownToken() throws IOException {
        Path m = write("merges.txt", "#version: 0.2\n\u0120 t\nqqqq zzzz\n");
        fails(() -> Gpt2Tokenizer.fromVocabAndMerges(vocab(), m), "merges.txt line 3", "\"qqqq\"", "not in the vocabulary");
    }

    @Test
    void mergesNotUtf8() throws IOException {
        Path m = dir.resolve("merges.txt");
        Files.write(m, new byte[] {'a', ' ', (byte) 0xFF, '\n'});
        fails(() -> Gpt2Tokenizer.fromVocabAndMerges(vocab(), m), "merges.txt", "not valid UTF-8");
    }

    @Test
    void vocabNotAnObject() throws IOException {
        Path v = write("vocab.json", "[1, 2, 3]");
        fails(() -> Gpt2Tokenizer.fromVocabAndMerges(v, merges()), "vocab.json: not a JSON object");
    }

    @Test
    void vocabNotJson() throws IOException {
        Path v = write("vocab.json", "{\"a\": 1,");
        fails(() -> Gpt2Tokenizer.fromVocabAndMerges(v, merges()), "vocab.json", "not valid JSON");
        Path empty = write("empty.json", "");
        fails(() -> Gpt2Tokenizer.fromVocabAndMerges(empty, merges()), "empty.json");
    }

    @Test
    void vocabWithBadIdOrMissingBytes() throws IOException {
        Path v = write("vocab.json", "{\"a\": \"one\"}");
        fails(() -> Gpt2Tokenizer.fromVocabAndMerges(v, merges()), "vocab.json", "\"a\"", "expected an integer");
        Path v2 = write("vocab2.json", "{\"a\": 0, \"b\": 0}");
        fails(() -> Gpt2Tokenizer.fromVocabAndMerges(v2, merges()), "vocab2.json", "id 0 is used by both");
        Path v3 = write("vocab3.json", "{\"a\": 0, \"b\": 1}");
        fails(() -> Gpt2Tokenizer.fromVocabAndMerges(v3, merges()), "vocab3.json", "no token for byte 0x00");
    }

    @Test
    void tokenizerJsonProblems() throws IOException {
        fails(() -> Gpt2Tokenizer.fromTokenizerJson(write("t1.json", "42")), "t1.json: not a JSON object");
        fails(() -> Gpt2Tokenizer.fromTokenizerJson(write("t2.json", "{}")), "t2.json", "model");
        fails(() -> Gpt2Tokenizer.fromTokenizerJson(write("t3.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}")),
                "t3.json", "WordPiece", "only \"BPE\"");
        fails(() -> Gpt2Tokenizer.fromTokenizerJson(write("t4.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}")),
                "t4.json", "merges");
        fails(() -> Gpt2Tokenizer.fromTokenizerJson(write("t5.json",
                        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [7]}}")),
                "t5.json: model.merges[0]");
        fails(() -> Gpt2Tokenizer.fromTokenizerJson(write("t6.json",
                        "{\"added_tokens\": [{\"id\": 1}], \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}")),
                "t6.json: added_tokens[0]", "content");
    }

    @Test
    void foreignPipelinesAreRejected() throws IOException {
        String model = "\"model\": {\"type\": \"BPE\", \"vocab\": " + byteVocabJson("\"ab\": 256") + ", \"merges\": [\"a b\"]}";
        fails(() -> Gpt2Tokenizer.fromTokenizerJson(write("n.json", "{\"normalizer\": {\"type\": \"NFC\"}, " + model + "}")),
                "n.json", "normalizer (NFC)");
        fails(() -> Gpt2Tokenizer.fromTokenizerJson(write("p.json", "{\"pre_tokenizer\": {\"type\": \"Metaspace\"}, " + model + "}")),
                "p.json", "Metaspace");
        fails(() -> Gpt2Tokenizer.fromTokenizerJson(write("s.json",
                        "{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true}, " + model + "}")),
                "s.json", "add_prefix_space");
        Gpt2Tokenizer ok = Gpt2Tokenizer.fromTokenizerJson(write("ok.json",
                "{\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false}, " + model + "}"));
        assertArrayEquals(new int[] {256}, ok.encode("ab"));
    }

    /** A minimal vocabulary: the 256 byte tokens (ids 0..255 in byte order), plus extras. */
    private static String byteVocabJson(String extra) {
        StringBuilder sb = new StringBuilder("{");
        for (int b = 0; b < 256; b++) {
            char c = ByteLevel.charOf(b);
            sb.append(String.format("\"\\u%04x\": %d, ", (int) c, b));
        }
        return sb.append(extra).append('}').toString();
    }

    @Test
    void newerArrayMergesAndAddedTokensWork() throws IOException {
        // ["A","B"] merges (HF >= 0.20 layout) may contain spaces; "Ġ" is the alphabet's space.
        String json = "{\"added_tokens\": ["
                + "{\"id\": 300, \"content\": \"<|im_start|>\", \"special\": true},"
                + "{\"id\": 301, \"content\": \"[X]\", \"special\": false, \"lstrip\": true, \"rstrip\": true}],"
                + "\"model\": {\"type\": \"BPE\", \"vocab\": " + byteVocabJson("\"ab\": 256, \"\u0120ab\": 257")
                + ", \"merges\": [[\"a\", \"b\"], [\"\u0120\", \"ab\"]]}}";
        Gpt2Tokenizer t = Gpt2Tokenizer.fromTokenizerJson(write("tokenizer.json", json));
        assertEquals(302, t.vocabSize());
        assertEquals(-1, t.eosTokenId());
        assertArrayEquals(new int[] {256, 257}, t.encode("ab ab"));
        assertArrayEquals(new int[] {256, 300, 257}, t.encode("ab<|im_start|> ab"));
        // lstrip/rstrip: the whitespace around [X] is swallowed.
        assertArrayEquals(new int[] {256, 301, 256}, t.encode("ab  [X]  ab"));
        assertEquals("ab<|im_start|> ab", t.decode(new int[] {256, 300, 257}));
        // An added token outside the byte alphabet decodes to its own UTF-8.
        assertEquals("<|im_start|>", t.tokenText(300));
        // Ids 258..299 are unassigned.
        fails(() -> t.decode(new int[] {280}), "token id 280 is not assigned");
    }

    @Test
    void stringMergesWithWindowsLineEndings() throws IOException {
        Path v = write("vocab.json", byteVocabJson("\"ab\": 256"));
        Path m = write("merges.txt", "#version: 0.2\r\na b\r\n");
        Gpt2Tokenizer t = Gpt2Tokenizer.fromVocabAndMerges(v, m);
        assertArrayEquals(new int[] {256, 256}, t.encode("abab"));
    }
}
