package org.btlm4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import org.btlm4j.model.KvCache;
import org.junit.jupiter.api.Test;

/** 16,384 positions on btlm-tiny (n_positions 256) with ALiBi scaling; the cache grows only as far as used. */
class LongContextTest {
    @Test
    void decodingAt16kPositionsAgreesWithOneScoringPass() {
        // factor scaling keeps c the same for every call, so decode steps and one long scoring call compare
        try (BtlmModel m = BtlmModel.load(Fixtures.tiny(), new BtlmModel.Options(2, 16384, true, KvCache.Type.F32,
                "factor:64"))) {
            int[] prompt = new Random(16).ints(16376, 0, 50000).toArray();
            GenerationResult r = m.generate(prompt, GenerationParams.defaults().withMaxNewTokens(8).withIgnoreEos(true));
            assertEquals(8, r.tokenIds().length);
            assertEquals(16384, prompt.length + r.tokenIds().length);
            int[] all = Arrays.copyOf(prompt, 16384);
            System.arraycopy(r.tokenIds(), 0, all, prompt.length, 8);
            m.setPromptReuse(false);
            ContinuationScore s = m.scoreContinuation(all, prompt.length);
            assertTrue(s.greedy(), "every generated token is the most likely one under a fresh pass");
            for (double lp : s.tokenLogprobs()) {
                assertTrue(Double.isFinite(lp) && lp < 0);
            }
        }
    }

    @Test
    void theCacheIsAllocatedForWhatIsUsed() {
        try (BtlmModel m = BtlmModel.load(Fixtures.tiny(), new BtlmModel.Options(1, 16384, true, KvCache.Type.F16,
                "dynamic"))) {
            m.generate(new int[] {1, 2, 3}, GenerationParams.defaults().withMaxNewTokens(3).withIgnoreEos(true));
            KvCache cache = m.generator().keptState().cache();
            assertEquals(256, cache.capacity(), "one chunk, not 16k up front");
            long full = 2L * m.config().nLayer() * m.config().nEmbd() * 2 * 16384;
            assertEquals(full / 64, cache.allocatedBytes());
        }
    }
}
