package org.btlm4j.convert;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import org.btlm4j.Fixtures;
import org.btlm4j.GenerationParams;
import org.btlm4j.checkpoint.DType;
import org.btlm4j.generate.Sampler;
import org.btlm4j.model.Btlm;
import org.btlm4j.model.KvCache;
import org.btlm4j.tensor.Parallel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Models written as GGUF by {@link GgufExport} load back, exact for float types, close for Q8_0/Q4_0. */
class GgufExportTest {
    /** English the demo model did not train on (it saw the Bible and fortunes): a held-out text. */
    static final String HELD_OUT = """
            The engine reads every weight once for each token it writes, so the speed of decoding is set by \
            how fast memory can be read. A model stored with eight bits for each weight is read twice as fast \
            as one stored with sixteen, and the question is only how much of its judgement it keeps. We \
            answer it by letting both models read the same page and counting how often they agree on the \
            most likely next word. And it came to pass in those days, that the people went up unto the \
            mountain, and they said one to another, Let us build a city and a tower, whose top may reach \
            unto heaven; and let us make us a name.""";

    @TempDir
    Path tmp;

    Path export(Path model, DType type, DType embedding) {
        Path out = tmp.resolve(model.getFileName() + "-" + type + "-" + embedding + ".gguf");
        try (Parallel pool = new Parallel(2)) {
            GgufExport.export(model, type, embedding, out, pool, null);
        }
        return out;
    }

    @Test
    void floatGgufIsAsExactAsTheSource() {
        for (Path dir : new Path[] {Fixtures.tiny(), Fixtures.tinyBin()}) {
            for (DType type : new DType[] {DType.F32, DType.BF16}) {
                Path gguf = export(dir, type, type);
                try (BtlmModel m = BtlmModel.load(gguf, new BtlmModel.Options(2, 0))) {
                    for (Fixtures.Sequence s : Fixtures.expected(dir)) {
                        double[] lp = m.score(s.inputIds()).tokenLogprobs();
                        for (int t = 0; t < s.nextTokenLogprobs().length; t++) {
                            // BF16 weights written as F32 or BF16 lose nothing: spec section 5's 1e-4.
                            assertEquals(s.nextTokenLogprobs()[t], lp[t + 1], 1e-4, gguf + " " + s.name() + " " + t);
                        }
                        assertArrayEquals(s.greedyNewTokens(), m.generate(s.inputIds(), GenerationParams.defaults()
                                .withMaxNewTokens(s.greedyNewTokens().length).withIgnoreEos(true)).tokenIds());
                    }
                    // The tokenizer travels in the file.
                    assertArrayEquals(new int[] {15496, 995, 50256}, m.tokenizer().encode("Hello world<|endoftext|>"));
                }
            }
        }
    }

    /** Fraction of positions of the held-out text where the two models' top-1 tokens agree. */
    static double top1Agreement(BtlmModel a, BtlmModel b, int[] ids) {
        int vocab = a.config().vocabSize();
        float[] la = new float[ids.length * vocab];
        float[] lb = new float[ids.length * vocab];
        Btlm fa = a.forwardPass();
        Btlm fb = b.forwardPass();
        fa.logits(fa.forward(ids, 0, ids.length, new KvCache(a.config(), 512), ids.length), 0, ids.length, la);
        fb.logits(fb.forward(ids, 0, ids.length, new KvCache(b.config(), 512), ids.length), 0, ids.length, lb);
        int same = 0;
        for (int t = 0; t < ids.length; t++) {
            float[] ra = java.util.Arrays.copyOfRange(la, t * vocab, (t + 1) * vocab);
            float[] rb = java.util.Arrays.copyOfRange(lb, t * vocab, (t + 1) * vocab);
            same += Sampler.argmax(ra, vocab) == Sampler.argmax(rb, vocab) ? 1 : 0;
        }
        return (double) same / ids.length;
    }

    @Test
    void q8_0KeepsTheTrainedModelsChoices() {
        Path gguf = export(Fixtures.demo(), DType.Q8_0, DType.Q8_0);
        try (BtlmModel f = BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0));
                BtlmModel q = BtlmModel.load(gguf, new BtlmModel.Options(2, 0))) {
            int[] ids = f.tokenizer().encode(HELD_OUT);
            double agree = top1Agreement(f, q, ids);
            System.out.printf("Q8_0 top-1 agreement on %d held-out tokens: %.4f%n", ids.length, agree);
            assertTrue(agree >= 0.99, "Q8_0 top-1 agreement " + agree);
            for (Fixtures.Sequence s : Fixtures.expected(Fixtures.demo())) {
                assertArrayEquals(s.greedyNewTokens(), q.generate(s.inputIds(), GenerationParams.defaults()
                        .withMaxNewTokens(s.greedyNewTokens().length).withIgnoreEos(true)).tokenIds(), s.name());
            }
        }
    }

    @Test
    void q4_0RunsWithAMeasuredLoss() {
        Path gguf = export(Fixtures.demo(), DType.Q4_0, DType.Q8_0);
        try (BtlmModel f = BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0));
                BtlmModel q = BtlmModel.load(gguf, new BtlmModel.Options(2, 0))) {
            int[] ids = f.tokenizer().encode(HELD_OUT);
            double agree = top1Agreement(f, q, ids);
            System.out.printf("Q4_0 (Q8_0 embedding) top-1 agreement on %d held-out tokens: %.4f%n", ids.length, agree);
            // 4-bit weights of a 192-wide model: most choices survive; the figure is recorded, the bound is loose.
            assertTrue(agree >= 0.85, "Q4_0 top-1 agreement " + agree);
            double pf = f.score(ids).perplexity();
            double pq = q.score(ids).perplexity();
            System.out.printf("perplexity float %.3f, Q4_0 %.3f%n", pf, pq);
            assertTrue(pq < pf * 1.25, "Q4_0 perplexity " + pq + " vs " + pf);
        }
    }

    static long tensorBytes(Path gguf) {
        try (org.btlm4j.checkpoint.GgufFile f = org.btlm4j.checkpoint.GgufFile.open(gguf)) {
            return f.tensors().values().stream().mapToLong(t -> t.data().byteSize()).sum();
        }
    }

    @Test
    void quantizedWeightsTakeTheirBlockSize() {
        long q8 = tensorBytes(export(Fixtures.tiny(), DType.Q8_0, DType.Q8_0));
        long q4 = tensorBytes(export(Fixtures.tiny(), DType.Q4_0, DType.Q4_0));
        long f32 = tensorBytes(export(Fixtures.tiny(), DType.F32, DType.F32));
        // 34 and 18 bytes per 32 weights against 128 (the few F32 vectors and the padding of the
        // 170-wide rows to 192 add a little).
        assertEquals(34.0 / 128, (double) q8 / f32, 0.02, "Q8_0 / F32");
        assertEquals(18.0 / 128, (double) q4 / f32, 0.02, "Q4_0 / F32");
    }

    @Test
    void foreignGgufIsRefusedWithAReason() throws IOException {
        Path other = tmp.resolve("other.gguf");
        org.btlm4j.checkpoint.GgufWriter w = new org.btlm4j.checkpoint.GgufWriter();
        w.put("general.architecture", "llama");
        w.write(other, null);
        String msg = assertThrows(BtlmException.class, () -> BtlmModel.load(other).close()).getMessage();
        assertTrue(msg.contains("architecture llama"), msg);
    }
}
