package org.btlm4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.stream.Stream;
import org.btlm4j.generate.LogProbs;
import org.btlm4j.model.Btlm;
import org.btlm4j.model.KvCache;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The engine against the fixtures' float64 reference: every next-token log-prob within 1e-4 (what a
 * correct float32 engine reaches, spec section 5) and every greedy continuation identical.
 */
class ModelParityTest {

    static Stream<Arguments> models() {
        return Stream.of(
                Arguments.of("btlm-tiny (safetensors)", Fixtures.tiny(), 1),
                Arguments.of("btlm-tiny-bin (torch .bin)", Fixtures.tinyBin(), 2),
                Arguments.of("btlm-demo (trained)", Fixtures.demo(), 2),
                Arguments.of("btlm-demo, 3 threads", Fixtures.demo(), 3));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("models")
    void matchesReferenceLogProbsAndGreedyTokens(String label, Path dir, int threads) {
        try (BtlmModel model = BtlmModel.load(dir, new BtlmModel.Options(threads, 0))) {
            for (Fixtures.Sequence s : Fixtures.expected(dir)) {
                ScoreResult r = model.score(s.inputIds());
                double[] lp = r.tokenLogprobs();
                assertEquals(s.inputIds().length, lp.length);
                for (int t = 0; t < s.nextTokenLogprobs().length; t++) {
                    // float32 engine vs float64 reference: 1e-4 absolute (spec section 5).
                    assertEquals(s.nextTokenLogprobs()[t], lp[t + 1], 1e-4, label + " " + s.name() + " position " + t);
                }
                GenerationResult g = model.generate(s.inputIds(), GenerationParams.defaults()
                        .withMaxNewTokens(s.greedyNewTokens().length).withIgnoreEos(true));
                assertArrayEquals(s.greedyNewTokens(), g.tokenIds(), label + " " + s.name() + " greedy");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("models")
    void lastPositionLogitsMatchReference(String label, Path dir, int threads) {
        try (BtlmModel model = BtlmModel.load(dir, new BtlmModel.Options(threads, 0))) {
            Btlm btlm = model.forwardPass();
            int vocab = model.config().vocabSize();
            for (Fixtures.Sequence s : Fixtures.expected(dir)) {
                if (s.first8Logits().length == 0) {
                    continue;
                }
                int[] ids = s.inputIds();
                KvCache cache = new KvCache(model.config(), model.contextLength());
                float[] hidden = btlm.forward(ids, 0, ids.length, cache, ids.length);
                float[] logits = new float[vocab];
                btlm.logits(hidden, ids.length - 1, 1, logits);
                for (int i = 0; i < s.first8Logits().length; i++) {
                    // Logits are ~O(1-10); float32 through a few layers keeps ~1e-5 relative.
                    assertEquals(s.first8Logits()[i], logits[i], 2e-4, label + " " + s.name() + " logit " + i);
                }
                assertEquals(s.lastLogsumexp(), LogProbs.logSumExp(logits, 0, vocab), 2e-4, label + " logsumexp");
                assertEquals(s.lastArgmax(), org.btlm4j.generate.Sampler.argmax(logits, vocab), label + " argmax");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("models")
    void tokenByTokenDecodingEqualsOneCall(String label, Path dir, int threads) {
        try (BtlmModel model = BtlmModel.load(dir, new BtlmModel.Options(threads, 0))) {
            Btlm btlm = model.forwardPass();
            int vocab = model.config().vocabSize();
            Fixtures.Sequence s = Fixtures.expected(dir).stream().max((a, b) -> a.inputIds().length - b.inputIds().length)
                    .orElseThrow();
            int[] ids = s.inputIds();
            int n = Math.min(ids.length, 48);
            KvCache whole = new KvCache(model.config(), model.contextLength());
            float[] all = new float[n * vocab];
            btlm.logits(btlm.forward(ids, 0, n, whole, n), 0, n, all);

            KvCache step = new KvCache(model.config(), model.contextLength());
            float[] one = new float[vocab];
            double maxDiff = 0;
            for (int t = 0; t < n; t++) {
                btlm.logits(btlm.forward(ids, t, 1, step, t + 1), 0, 1, one);
                for (int v = 0; v < vocab; v++) {
                    maxDiff = Math.max(maxDiff, Math.abs(one[v] - all[t * vocab + v]));
                }
            }
            // Same arithmetic, different blocking of the sums: float32 rounding only.
            assertTrue(maxDiff < 1e-4, label + ": token-by-token logits differ by " + maxDiff);
            assertEquals(n, step.length());
        }
    }
}
