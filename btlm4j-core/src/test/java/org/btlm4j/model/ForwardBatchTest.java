package org.btlm4j.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import org.btlm4j.Fixtures;
import org.junit.jupiter.api.Test;

/** One batched step over several sequences gives each sequence what its own forward call gives. */
class ForwardBatchTest {
    /** Tolerance on hidden states (after ln_f, of unit scale): float32 summation order only. */
    static final double TOLERANCE = 1e-5;

    @Test
    void batchedRowsEqualPerSequenceForwardOnEveryFixture() {
        for (Path dir : List.of(Fixtures.tiny(), Fixtures.tinyBin(), Fixtures.demo(), Fixtures.extra("gpt2-learned"),
                Fixtures.extra("alibi-dynamic"))) {
            try (BtlmModel m = BtlmModel.load(dir, new BtlmModel.Options(2, 0))) {
                check(m, dir.toString());
            }
        }
    }

    @Test
    void f16CachesBatchTheSameWay() {
        try (BtlmModel m = BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0, true, KvCache.Type.F16))) {
            check(m, "demo f16");
        }
    }

    private static void check(BtlmModel m, String what) {
        Btlm model = m.forwardPass();
        BtlmConfig config = model.config();
        int e = config.nEmbd();
        SplittableRandom random = new SplittableRandom(7);
        int[] cached = {5, 1, 11, 2}; // sequences at different depths
        int[] counts = {1, 4, 1, 3};  // decode steps beside prompt chunks
        int b = cached.length;
        int[][] seqs = new int[b][];
        for (int s = 0; s < b; s++) {
            seqs[s] = random.ints(cached[s] + counts[s] + 2, 0, config.vocabSize()).toArray();
        }
        KvCache[] alone = new KvCache[b];
        KvCache[] batched = new KvCache[b];
        for (int s = 0; s < b; s++) {
            alone[s] = new KvCache(config, 64, m.kvType());
            batched[s] = new KvCache(config, 64, m.kvType());
            model.forward(seqs[s], 0, cached[s], alone[s], cached[s]);
            model.forward(seqs[s], 0, cached[s], batched[s], cached[s]);
        }
        // step 1: mixed counts; step 2: one token each
        for (int step = 0; step < 2; step++) {
            int[] n = step == 0 ? counts : new int[] {1, 1, 1, 1};
            int total = 0;
            for (int c : n) {
                total += c;
            }
            int[] tokens = new int[total];
            int[] scale = new int[b];
            float[][] expected = new float[b][];
            for (int s = 0, row = 0; s < b; row += n[s], s++) {
                int p = alone[s].length();
                System.arraycopy(seqs[s], p, tokens, row, n[s]);
                scale[s] = p + n[s];
                expected[s] = model.forward(seqs[s], p, n[s], alone[s], p + n[s]);
            }
            float[] got = model.forwardBatch(tokens, n, batched, scale);
            assertEquals(total * e, got.length);
            for (int s = 0, row = 0; s < b; row += n[s], s++) {
                assertEquals(alone[s].length(), batched[s].length());
                for (int i = 0; i < n[s] * e; i++) {
                    assertEquals(expected[s][i], got[row * e + i], TOLERANCE,
                            what + " step " + step + " sequence " + s + " element " + i);
                }
            }
        }
    }

    @Test
    void rejectsTokensOutsideTheVocabularyAndMismatchedArguments() {
        try (BtlmModel m = BtlmModel.load(Fixtures.tiny(), new BtlmModel.Options(1, 0))) {
            Btlm model = m.forwardPass();
            KvCache[] caches = {new KvCache(model.config(), 8), new KvCache(model.config(), 8)};
            assertThrows(BtlmException.class,
                    () -> model.forwardBatch(new int[] {1, model.config().vocabSize()}, new int[] {1, 1}, caches, new int[] {1, 1}));
            assertThrows(IllegalArgumentException.class,
                    () -> model.forwardBatch(new int[] {1, 2}, new int[] {1, 1}, caches, new int[] {1}));
            assertThrows(IllegalArgumentException.class,
                    () -> model.forwardBatch(new int[] {1}, new int[] {1, 0}, caches, new int[] {1, 1}));
            assertEquals(0, caches[0].length());
        }
    }
}
