package org.btlm4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.btlm4j.model.KvCache;
import org.junit.jupiter.api.Test;

/** Overriding alibi_scaling at load time, to run past n_positions. */
class AlibiScalingOptionTest {
    static BtlmModel load(java.nio.file.Path dir, int context, String scaling) {
        return BtlmModel.load(dir, new BtlmModel.Options(2, context, true, KvCache.Type.F32, scaling));
    }

    @Test
    void overrideGivesTheSameNumbersAsTheConfigSayingIt() {
        java.nio.file.Path dir = Fixtures.extra("alibi-dynamic"); // config: train_seq_len 16
        Fixtures.Sequence s = Fixtures.expected(dir).stream().filter(q -> q.inputIds().length > 16).findFirst().orElseThrow();
        try (BtlmModel same = load(dir, 0, "dynamic:16"); BtlmModel none = load(dir, 0, "none")) {
            assertEquals(16, same.config().alibiScaling().trainSeqLen());
            assertNull(none.config().alibiScaling());
            double[] lp = same.score(s.inputIds()).tokenLogprobs();
            double[] off = none.score(s.inputIds()).tokenLogprobs();
            double maxOff = 0;
            for (int t = 0; t < s.nextTokenLogprobs().length; t++) {
                assertEquals(s.nextTokenLogprobs()[t], lp[t + 1], 1e-4);
                maxOff = Math.max(maxOff, Math.abs(s.nextTokenLogprobs()[t] - off[t + 1]));
            }
            assertTrue(maxOff > 1e-3, "without scaling the numbers must move, moved " + maxOff);
        }
    }

    @Test
    void dynamicScalingRunsPastNPositions() {
        try (BtlmModel m = load(Fixtures.tiny(), 600, "dynamic")) { // n_positions 256
            assertEquals(256, m.config().alibiScaling().trainSeqLen());
            int[] ids = new Random(3).ints(400, 0, 50000).toArray();
            double[] lp = m.score(ids).tokenLogprobs();
            for (int t = 1; t < lp.length; t++) {
                assertTrue(Double.isFinite(lp[t]) && lp[t] < 0, "position " + t + ": " + lp[t]);
            }
            GenerationResult g = m.generate(ids, GenerationParams.defaults().withMaxNewTokens(8).withIgnoreEos(true));
            assertEquals(8, g.tokenIds().length);
        }
        try (BtlmModel m = load(Fixtures.tiny(), 600, "factor:2.5")) {
            assertEquals(2.5, m.config().alibiScaling().factor());
        }
    }

    @Test
    void badRulesAreExplained() {
        assertTrue(assertThrows(BtlmException.class, () -> load(Fixtures.tiny(), 0, "quadratic").close()).getMessage()
                .contains("expected dynamic, dynamic:N, factor:F or none"));
        assertTrue(assertThrows(BtlmException.class, () -> load(Fixtures.tiny(), 0, "factor:0.5").close()).getMessage()
                .contains("must be a number > 1"));
        assertTrue(assertThrows(BtlmException.class, () -> load(Fixtures.tiny(), 0, "dynamic:x").close()).getMessage()
                .contains("not a number"));
        assertTrue(assertThrows(BtlmException.class, () -> load(Fixtures.extra("gpt2-learned"), 0, "dynamic").close())
                .getMessage().contains("learned positions"));
        String msg = assertThrows(BtlmException.class, () -> load(Fixtures.tiny(), 600, null).close()).getMessage();
        assertTrue(msg.contains("--alibi-scaling dynamic"), msg);
    }

    @Test
    void overrideSurvivesTheGgufRoute(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) {
        java.nio.file.Path gguf = tmp.resolve("tiny.gguf");
        try (org.btlm4j.tensor.Parallel pool = new org.btlm4j.tensor.Parallel(2)) {
            org.btlm4j.convert.GgufExport.export(Fixtures.tiny(), org.btlm4j.checkpoint.DType.F32,
                    org.btlm4j.checkpoint.DType.F32, gguf, pool, null);
        }
        try (BtlmModel m = load(gguf, 300, "dynamic")) {
            assertEquals(300, m.contextLength());
            int[] ids = new Random(4).ints(280, 0, 50000).toArray();
            assertEquals(280, m.score(ids).tokenIds().length);
        }
    }
}
