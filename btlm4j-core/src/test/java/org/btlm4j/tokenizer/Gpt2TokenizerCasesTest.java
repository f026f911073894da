package org.btlm4j.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * The shared expectations from HF tokenizers (fixtures/gpt2-tokenizer/README.md): every case is
 * checked with both loaders so that a loader-specific difference shows up as a failing case.
 */
class Gpt2TokenizerCasesTest {

    private static Stream<DynamicTest> forBothLoaders(String what, java.util.function.BiConsumer<Gpt2Tokenizer, Fixtures.EncodeCase> check) {
        List<DynamicTest> tests = new ArrayList<>();
        for (Fixtures.EncodeCase c : Fixtures.encodeCases()) {
            tests.add(DynamicTest.dynamicTest(what + " tokenizer.json " + c, () -> check.accept(Fixtures.tokenizerJson(), c)));
            tests.add(DynamicTest.dynamicTest(what + " vocab+merges " + c, () -> check.accept(Fixtures.vocabAndMerges(), c)));
        }
        return tests.stream();
    }

    @TestFactory
    Stream<DynamicTest> encodeMatchesHf() {
        return forBothLoaders("encode", (tok, c) -> assertArrayEquals(c.ids(), tok.encode(c.text()), c.toString()));
    }

    @TestFactory
    Stream<DynamicTest> decodeRoundTrips() {
        return forBothLoaders("decode", (tok, c) -> assertEquals(c.text(), tok.decode(c.ids()), c.toString()));
    }

    @TestFactory
    Stream<DynamicTest> encodeOrdinaryTreatsSpecialTokensAsText() {
        return forBothLoaders("encodeOrdinary", (tok, c) -> {
            // Without ids_plain the text holds no special token, so both encodings must agree.
            int[] expected = c.idsPlain() != null ? c.idsPlain() : c.ids();
            assertArrayEquals(expected, tok.encodeOrdinary(c.text()), c.toString());
        });
    }

    @TestFactory
    Stream<DynamicTest> streamingDecoderAgreesWithDecode() {
        return forBothLoaders("streaming", (tok, c) -> {
            StreamingDecoder d = tok.newStreamingDecoder();
            StringBuilder sb = new StringBuilder();
            for (int id : c.ids()) {
                sb.append(d.accept(id));
            }
            sb.append(d.flush());
            assertEquals(c.text(), sb.toString(), c.toString());
        });
    }

    @TestFactory
    Stream<DynamicTest> decodeCases() {
        List<DynamicTest> tests = new ArrayList<>();
        for (Fixtures.DecodeCase c : Fixtures.decodeCases()) {
            tests.add(DynamicTest.dynamicTest("decode-cases " + c.name(), () -> {
                for (Gpt2Tokenizer tok : List.of(Fixtures.tokenizerJson(), Fixtures.vocabAndMerges())) {
                    assertEquals(c.decoded(), tok.decode(c.ids()), c.name());
                    StreamingDecoder d = tok.newStreamingDecoder();
                    StringBuilder sb = new StringBuilder();
                    for (int id : c.ids()) {
                        sb.append(d.accept(id));
                    }
                    assertEquals(c.decoded(), sb.append(d.flush()).toString(), c.name() + " (streaming)");
                }
            }));
        }
        return tests.stream();
    }

    @Test
    void bothLoadersBuildTheSameVocabulary() {
        Gpt2Tokenizer a = Fixtures.tokenizerJson();
        Gpt2Tokenizer b = Fixtures.vocabAndMerges();
        assertEquals(50257, a.vocabSize());
        assertEquals(50257, b.vocabSize());
        assertEquals(50256, a.eosTokenId());
        assertEquals(50256, b.eosTokenId());
        for (int id = 0; id < a.vocabSize(); id++) {
            assertEquals(a.tokenText(id), b.tokenText(id), "token " + id);
            assertArrayEquals(a.tokenBytes(id), b.tokenBytes(id), "token " + id);
        }
    }

    @Test
    void tinyModelTokenizerJsonIsGpt2() {
        Gpt2Tokenizer tiny = Gpt2Tokenizer.fromTokenizerJson(Fixtures.path("btlm-tiny-bin/tokenizer.json"));
        assertEquals(50257, tiny.vocabSize());
        assertEquals(50256, tiny.eosTokenId());
        for (Fixtures.EncodeCase c : Fixtures.encodeCases()) {
            assertArrayEquals(c.ids(), tiny.encode(c.text()), c.toString());
        }
    }
}
