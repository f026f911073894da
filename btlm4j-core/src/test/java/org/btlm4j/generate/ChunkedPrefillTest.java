package org.btlm4j.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.btlm4j.BtlmModel;
import org.btlm4j.Fixtures;
import org.btlm4j.GenerationParams;
import org.btlm4j.model.KvCache;
import org.junit.jupiter.api.Test;

/** Prompts fed in several chunks (as long prompts are) give what one call gives. */
class ChunkedPrefillTest {
    @Test
    void smallChunksGiveTheSameScoresAndText() {
        try (BtlmModel m = BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0))) {
            Generator whole = new Generator(m.forwardPass(), m.tokenizer(), m.contextLength(), KvCache.Type.F32, 512);
            Generator chunked = new Generator(m.forwardPass(), m.tokenizer(), m.contextLength(), KvCache.Type.F32, 7);
            for (Fixtures.Sequence s : Fixtures.expected(Fixtures.demo())) {
                double[] a = whole.score(s.inputIds()).tokenLogprobs();
                double[] b = chunked.score(s.inputIds()).tokenLogprobs();
                assertEquals(a.length, b.length);
                for (int t = 1; t < a.length; t++) {
                    assertEquals(a[t], b[t], 1e-4, s.name() + " position " + t); // float32 blocking only
                }
                GenerationParams p = GenerationParams.defaults().withMaxNewTokens(s.greedyNewTokens().length)
                        .withIgnoreEos(true);
                assertArrayEquals(s.greedyNewTokens(), chunked.generate(s.inputIds(), p, null).tokenIds(), s.name());
            }
        }
    }
}
