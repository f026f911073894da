package org.btlm4j.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.btlm4j.BtlmException;
import org.junit.jupiter.api.Test;

/** The token-list + merge-list form that GGUF files carry gives the very same tokenizer. */
class TokenListTokenizerTest {
    @Test
    void roundTripsThroughTokenAndMergeLists() {
        Gpt2Tokenizer original = Fixtures.vocabAndMerges();
        List<String> merges = original.mergeRules();
        assertEquals(50_000, merges.size());
        assertEquals("Ġ t", merges.get(0), "rank 0 of GPT-2's merges.txt");
        Gpt2Tokenizer copy = Gpt2Tokenizer.fromTokensAndMerges(original.tokenStrings(), merges, "test");
        for (String text : List.of("Hello world<|endoftext|> it's 2026!", "naïve café 中文 😀", "  indented\n\tcode()")) {
            assertArrayEquals(original.encode(text), copy.encode(text), text);
        }
        assertEquals(50256, copy.eosTokenId());
    }

    @Test
    void rejectsBrokenLists() {
        assertTrue(assertThrows(BtlmException.class, () -> Gpt2Tokenizer.fromTokensAndMerges(List.of(), List.of(), "x"))
                .getMessage().contains("empty"));
        assertTrue(assertThrows(BtlmException.class,
                () -> Gpt2Tokenizer.fromTokensAndMerges(List.of("a", "a"), List.of(), "x")).getMessage().contains("twice"));
    }
}
