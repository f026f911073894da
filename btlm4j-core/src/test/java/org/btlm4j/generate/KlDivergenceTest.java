package org.btlm4j.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import org.btlm4j.Fixtures;
import org.btlm4j.GenerationParams;
import org.btlm4j.checkpoint.DType;
import org.btlm4j.convert.GgufExport;
import org.btlm4j.model.Btlm;
import org.btlm4j.model.KvCache;
import org.btlm4j.tensor.Parallel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The KL-divergence mode against the same figures computed directly from two models' logits. */
class KlDivergenceTest {
    @TempDir
    Path tmp;

    /** The demo's held-out text: its validation sequences (expected.json's val200 and val40), 240 tokens. */
    static int[] heldOut() {
        var seqs = Fixtures.expected(Fixtures.demo());
        int[] a = seqs.stream().filter(s -> s.name().equals("val200")).findFirst().orElseThrow().inputIds();
        int[] b = seqs.stream().filter(s -> s.name().equals("val40")).findFirst().orElseThrow().inputIds();
        int[] ids = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, ids, a.length, b.length);
        return ids;
    }

    private Path q8_0Demo() {
        Path out = tmp.resolve("demo-q8_0.gguf");
        try (Parallel pool = new Parallel(2)) {
            GgufExport.export(Fixtures.demo(), DType.Q8_0, DType.Q8_0, out, pool, null);
        }
        return out;
    }

    /** log-softmax of every position's logits, in double, from one forward call over all of ids. */
    static double[][] logProbs(BtlmModel m, int[] ids, KvCache.Type kv) {
        Btlm f = m.forwardPass();
        int vocab = m.config().vocabSize();
        float[] logits = new float[ids.length * vocab];
        f.logits(f.forward(ids, 0, ids.length, new KvCache(m.config(), ids.length, kv), ids.length), 0, ids.length,
                logits);
        double[][] lp = new double[ids.length][vocab];
        for (int t = 0; t < ids.length; t++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int v = 0; v < vocab; v++) {
                max = Math.max(max, logits[t * vocab + v]);
            }
            double sum = 0;
            for (int v = 0; v < vocab; v++) {
                sum += Math.exp(logits[t * vocab + v] - max);
            }
            for (int v = 0; v < vocab; v++) {
                lp[t][v] = logits[t * vocab + v] - max - Math.log(sum);
            }
        }
        return lp;
    }

    /** KL(P‖Q) with P's top k one by one and the rest as one outcome (k = vocab: the full divergence). */
    static double bucketedKl(double[] p, double[] q, int k) {
        Integer[] order = IntStream.range(0, p.length).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble((Integer v) -> -p[v]));
        double kl = 0;
        double pRest = 0;
        double qRest = 0;
        for (int j = 0; j < p.length; j++) {
            int v = order[j];
            if (j < k) {
                kl += Math.exp(p[v]) * (p[v] - q[v]);
            } else {
                pRest += Math.exp(p[v]);
                qRest += Math.exp(q[v]);
            }
        }
        return pRest > 0 ? kl + pRest * Math.log(pRest / qRest) : kl;
    }

    static int argmax(double[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }

    @Test
    void q8_0AgainstTheFloatModelEqualsADirectComputation() {
        int[] ids = heldOut();
        Path base = tmp.resolve("base.kld");
        Path q8 = q8_0Demo();
        try (BtlmModel f = BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0));
                BtlmModel q = BtlmModel.load(q8, new BtlmModel.Options(2, 0))) {
            Perplexity.Result saved = f.perplexityWithKlBase(ids, 0, 0, 16, base);
            assertEquals(f.perplexity(ids, 0, 0).nll(), saved.nll(), 1e-9, "saving a base scores as perplexity does");
            KlDivergence.Result r = q.klDivergence(ids, 0, 0, base);

            double[][] pf = logProbs(f, ids, KvCache.Type.F32);
            double[][] pq = logProbs(q, ids, KvCache.Type.F32);
            int n = ids.length - 1;
            double[] kld = new double[n];
            double nllF = 0;
            double nllQ = 0;
            int same = 0;
            for (int t = 0; t < n; t++) {
                kld[t] = bucketedKl(pf[t], pq[t], 16);
                nllF -= pf[t][ids[t + 1]];
                nllQ -= pq[t][ids[t + 1]];
                same += argmax(pf[t]) == argmax(pq[t]) ? 1 : 0;
            }
            double[] sorted = kld.clone();
            Arrays.sort(sorted);
            assertEquals(n, r.tokens());
            // the base file holds log-probabilities as float32: relative 1e-7 of each term, and the
            // model runs agree with these one-call runs to float32 rounding
            assertEquals(Arrays.stream(kld).average().orElseThrow(), r.meanKld(), 1e-6);
            assertEquals(sorted[n / 2 - 1 + (n % 2)], r.kldP50(), 1e-6); // nearest rank: ⌈0.5 n⌉
            assertEquals(sorted[(int) Math.ceil(0.9 * n) - 1], r.kldP90(), 1e-6);
            assertEquals(sorted[(int) Math.ceil(0.99 * n) - 1], r.kldP99(), 1e-6);
            assertEquals(sorted[n - 1], r.kldMax(), 1e-6);
            assertEquals((double) same / n, r.top1Agreement(), 1e-12);
            assertEquals(Math.exp(nllF / n), r.basePerplexity(), 1e-4 * r.basePerplexity());
            assertEquals(Math.exp(nllQ / n), r.perplexity(), 1e-4 * r.perplexity());
            assertTrue(r.meanKld() > 0, "Q8_0 is not the float model");

            // the quality bar: Q8_0 agrees on the top-1 token at ≥ 99 % of held-out positions ...
            assertTrue(r.top1Agreement() >= 0.99, "Q8_0 top-1 agreement " + r.top1Agreement());
            // ... and keeps the float model's greedy continuations
            for (Fixtures.Sequence s : Fixtures.expected(Fixtures.demo())) {
                GenerationParams g = GenerationParams.defaults().withMaxNewTokens(s.greedyNewTokens().length)
                        .withIgnoreEos(true);
                assertArrayEquals(f.generate(s.inputIds(), g).tokenIds(), q.generate(s.inputIds(), g).tokenIds(),
                        s.name());
            }
        }
    }

    @Test
    void topKOfTheWholeVocabularyGivesTheFullDivergenceInSlidingWindows() {
        int[] ids = heldOut();
        Path base = tmp.resolve("full.kld");
        try (BtlmModel f = BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0));
                BtlmModel q = BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0, true, KvCache.Type.Q4_0))) {
            // one window of 240 tokens: every position compared with its whole context
            f.perplexityWithKlBase(ids, 0, 0, 1 << 20, base);
            KlDivergence.Result r = q.klDivergence(ids, 0, 0, base);
            assertEquals(f.config().vocabSize(), r.topK());
            double[][] pf = logProbs(f, ids, KvCache.Type.F32);
            double[][] pq = logProbs(q, ids, KvCache.Type.Q4_0);
            double sum = 0;
            for (int t = 0; t < ids.length - 1; t++) {
                double full = 0;
                for (int v = 0; v < pf[t].length; v++) {
                    full += Math.exp(pf[t][v]) * (pf[t][v] - pq[t][v]);
                }
                sum += full;
            }
            assertEquals(sum / (ids.length - 1), r.meanKld(), 1e-6);
            assertTrue(r.meanKld() > 0);

            // windows of 100 moved by 60: the comparison walks the same windows as the base
            Path windowed = tmp.resolve("windowed.kld");
            Perplexity.Result p = f.perplexityWithKlBase(ids, 100, 60, 8, windowed);
            KlDivergence.Result self = f.klDivergence(ids, 100, 60, windowed);
            assertEquals(ids.length - 1, self.tokens());
            assertEquals(1.0, self.top1Agreement());
            assertEquals(p.perplexity(), self.basePerplexity(), 1e-5 * p.perplexity());
            assertEquals(self.basePerplexity(), self.perplexity(), 1e-5 * p.perplexity());
            assertEquals(0, self.kldMax(), 1e-6, "a model against itself");
        }
    }

    @Test
    void aBaseOfAnotherTextOrWindowIsRefused() {
        int[] ids = heldOut();
        Path base = tmp.resolve("base.kld");
        try (BtlmModel f = BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0))) {
            f.perplexityWithKlBase(Arrays.copyOf(ids, 50), 0, 0, 4, base);
            String msg = assertThrows(BtlmException.class, () -> f.klDivergence(Arrays.copyOf(ids, 60), 0, 0, base))
                    .getMessage();
            assertTrue(msg.contains("another text"), msg);
            msg = assertThrows(BtlmException.class, () -> f.klDivergence(Arrays.copyOf(ids, 50), 40, 20, base))
                    .getMessage();
            assertTrue(msg.contains("same --window and --stride"), msg);
            msg = assertThrows(BtlmException.class, () -> f.klDivergence(ids, 0, 0, tmp.resolve("missing.kld")))
                    .getMessage();
            assertTrue(msg.contains("does not exist"), msg);
        }
    }
}
