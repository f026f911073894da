package org.btlm4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The rules of spec sections 2–4 that the shared fixtures do not exercise, each on a fixture made
 * by {@code tools/make_fixtures.py} with an independent float64 reference: ALiBi scaling (factor,
 * and dynamic with HF's per-call rule), computed slopes for 3 heads with √d and 1/(layer+1), F16
 * and F32 weights, sharded safetensors and .bin, GPT-2 learned positions with gelu_new, an untied
 * head and the older muP key names.
 */
class ExtraRulesParityTest {

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"alibi-factor", "alibi-dynamic", "heads3-formula", "f16", "f32", "sharded-safetensors",
        "sharded-bin", "gpt2-learned", "untied-head", "old-keys"})
    void matchesReference(String variant) {
        Path dir = Fixtures.extra(variant);
        try (BtlmModel model = BtlmModel.load(dir, new BtlmModel.Options(2, 0))) {
            double[] slopes = Fixtures.alibiSlopes(dir);
            float[] used = model.forwardPass().weights().slopes();
            if (slopes.length > 0) {
                for (int h = 0; h < slopes.length; h++) {
                    // Stored slopes are exact bf16 values; computed ones are rounded once to float32.
                    assertEquals(slopes[h], used[h], 1e-7, variant + " slope " + h);
                }
            }
            for (Fixtures.Sequence s : Fixtures.expected(dir)) {
                double[] lp = model.score(s.inputIds()).tokenLogprobs();
                for (int t = 0; t < s.nextTokenLogprobs().length; t++) {
                    // float32 engine vs float64 reference (spec section 5)
                    assertEquals(s.nextTokenLogprobs()[t], lp[t + 1], 1e-4, variant + " " + s.name() + " position " + t);
                }
                GenerationResult g = model.generate(s.inputIds(), GenerationParams.defaults()
                        .withMaxNewTokens(s.greedyNewTokens().length).withIgnoreEos(true));
                assertArrayEquals(s.greedyNewTokens(), g.tokenIds(), variant + " " + s.name() + " greedy");
            }
        }
    }

    @org.junit.jupiter.api.Test
    void chunkedPromptUsesTheScalingOfTheWholePrompt() {
        Path dir = Fixtures.extra("alibi-dynamic");
        try (BtlmModel model = BtlmModel.load(dir, new BtlmModel.Options(2, 0))) {
            org.btlm4j.model.Btlm btlm = model.forwardPass();
            int vocab = model.config().vocabSize();
            int[] ids = Fixtures.expected(dir).stream().filter(s -> s.inputIds().length > 16).findFirst()
                    .orElseThrow().inputIds();
            int n = ids.length;
            float[] whole = new float[vocab];
            btlm.logits(btlm.forward(ids, 0, n, new org.btlm4j.model.KvCache(model.config(), 64), n), n - 1, 1, whole);

            // The same prompt in two chunks, both with c of the whole prompt: HF's one call.
            org.btlm4j.model.KvCache cache = new org.btlm4j.model.KvCache(model.config(), 64);
            btlm.forward(ids, 0, 10, cache, n);
            float[] chunked = new float[vocab];
            btlm.logits(btlm.forward(ids, 10, n - 10, cache, n), n - 11, 1, chunked);

            // Token by token, each step with its own c: different numbers past train_seq_len.
            org.btlm4j.model.KvCache steps = new org.btlm4j.model.KvCache(model.config(), 64);
            float[] stepwise = new float[vocab];
            for (int t = 0; t < n; t++) {
                btlm.logits(btlm.forward(ids, t, 1, steps, t + 1), 0, 1, stepwise);
            }
            double chunkDiff = 0;
            double stepDiff = 0;
            for (int v = 0; v < vocab; v++) {
                chunkDiff = Math.max(chunkDiff, Math.abs(chunked[v] - whole[v]));
                stepDiff = Math.max(stepDiff, Math.abs(stepwise[v] - whole[v]));
            }
            org.junit.jupiter.api.Assertions.assertTrue(chunkDiff < 1e-4, "chunks differ from one call by " + chunkDiff);
            org.junit.jupiter.api.Assertions.assertTrue(stepDiff > 1e-3,
                    "dynamic scaling should make token-by-token decoding differ, but the difference is " + stepDiff);
        }
    }
}
