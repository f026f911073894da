package org.btlm4j.convert;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Map;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import org.btlm4j.Fixtures;
import org.btlm4j.GenerationParams;
import org.btlm4j.checkpoint.DType;
import org.btlm4j.checkpoint.GgufFile;
import org.btlm4j.model.Alibi;
import org.btlm4j.model.BtlmConfig;
import org.btlm4j.tensor.Parallel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** btlm-demo written in llama.cpp's JAIS layout loads back into the BTLM forward pass. */
class JaisLayoutTest {
    @TempDir
    Path tmp;

    private Path export(Path model, DType type) {
        Path out = tmp.resolve(model.getFileName() + "-jais-" + type + ".gguf");
        try (Parallel pool = new Parallel(2)) {
            GgufExport.export(model, type, type, GgufExport.Layout.JAIS, out, pool, null);
        }
        return out;
    }

    @Test
    void writesLlamaCppsNamesAndKeys() {
        Path gguf = export(Fixtures.demo(), DType.F32);
        try (GgufFile f = GgufFile.open(gguf)) {
            Map<String, Object> md = f.metadata();
            assertEquals("jais", md.get("general.architecture"));
            assertEquals(4L, ((Number) md.get("jais.block_count")).longValue());
            assertEquals(192L, ((Number) md.get("jais.embedding_length")).longValue());
            assertEquals(6L, ((Number) md.get("jais.attention.head_count")).longValue());
            assertEquals(512L, ((Number) md.get("jais.feed_forward_length")).longValue());
            assertEquals(512L, ((Number) md.get("jais.context_length")).longValue());
            // the demo's stored slopes are the standard ones: max bias 8
            assertEquals(8.0, ((Number) md.get("jais.attention.max_alibi_bias")).doubleValue(), 1e-5);
            for (String name : new String[] {"token_embd.weight", "output.weight", "output_norm.weight",
                    "output_norm.bias", "blk.0.attn_norm.weight", "blk.0.attn_qkv.weight", "blk.0.attn_qkv.bias",
                    "blk.3.attn_output.weight", "blk.1.ffn_norm.bias", "blk.2.ffn_up.weight", "blk.2.ffn_gate.weight",
                    "blk.2.ffn_down.weight", "blk.2.ffn_down.bias"}) {
                assertTrue(f.tensors().containsKey(name), name);
            }
            assertFalse(f.tensors().keySet().stream().anyMatch(n -> n.startsWith("transformer.")));
            // ggml order [in, out] is our row-major [out, in]: attn_qkv has 3·192 rows of 192
            assertArrayEquals(new long[] {576, 192}, f.tensors().get("blk.0.attn_qkv.weight").shape());
        }
        // the muP scales are folded into the embedding and the head
        try (BtlmModel src = BtlmModel.load(Fixtures.demo()); GgufFile f = GgufFile.open(gguf)) {
            BtlmConfig c = src.config();
            float[] row = new float[192];
            src.forwardPass().weights().wte().row(1000, row, 0);
            float[] emb = org.btlm4j.model.BtlmWeights.toFloats(f.tensors().get("token_embd.weight"));
            float[] out = org.btlm4j.model.BtlmWeights.toFloats(f.tensors().get("output.weight"));
            for (int i = 0; i < 192; i++) {
                assertEquals(row[i] * c.embeddingsScale(), emb[1000 * 192 + i], 0f);
                assertEquals(row[i] * c.outputScale(), out[1000 * 192 + i], 0f);
            }
        }
    }

    @Test
    void jaisLayoutGivesTheSourcesLogits() {
        Path gguf = export(Fixtures.demo(), DType.F32);
        try (BtlmModel src = BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0));
                BtlmModel jais = BtlmModel.load(gguf, new BtlmModel.Options(2, 0))) {
            BtlmConfig c = jais.config();
            assertEquals(1f, c.embeddingsScale());
            assertEquals(1f, c.outputScale());
            assertFalse(c.tieWordEmbeddings());
            assertArrayEquals(src.forwardPass().weights().slopes(), jais.forwardPass().weights().slopes(), 1e-7f);
            for (Fixtures.Sequence s : Fixtures.expected(Fixtures.demo())) {
                double[] a = src.score(s.inputIds()).tokenLogprobs();
                double[] b = jais.score(s.inputIds()).tokenLogprobs();
                for (int t = 1; t < a.length; t++) {
                    // the scales multiply the weights instead of the activations: float32 rounding only
                    assertEquals(a[t], b[t], 1e-4, s.name() + " token " + t);
                    // and the independent float64 reference of the fixture (spec section 5's 1e-4 plus the folding)
                    assertEquals(s.nextTokenLogprobs()[t - 1], b[t], 2e-4, s.name() + " reference " + t);
                }
                GenerationParams g = GenerationParams.defaults().withMaxNewTokens(s.greedyNewTokens().length)
                        .withIgnoreEos(true);
                assertArrayEquals(s.greedyNewTokens(), jais.generate(s.inputIds(), g).tokenIds(), s.name());
            }
            assertArrayEquals(src.tokenizer().encode("Hello world<|endoftext|>"),
                    jais.tokenizer().encode("Hello world<|endoftext|>"));
        }
    }

    @Test
    void quantizedJaisLayoutStaysClose() {
        Path gguf = export(Fixtures.demo(), DType.Q8_0);
        try (BtlmModel src = BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0));
                BtlmModel jais = BtlmModel.load(gguf, new BtlmModel.Options(2, 0))) {
            int[] ids = Fixtures.expected(Fixtures.demo()).get(2).inputIds();
            double a = src.score(ids).perplexity();
            double b = jais.score(ids).perplexity();
            assertEquals(a, b, 0.02 * a, "Q8_0 JAIS perplexity");
        }
    }

    @Test
    void namesMapBothWays() {
        assertEquals("blk.12.ffn_gate.bias", JaisLayout.ggufName("transformer.h.12.mlp.c_fc2.bias"));
        assertEquals("transformer.h.12.mlp.c_fc2.bias", JaisLayout.btlmName("blk.12.ffn_gate.bias"));
        assertEquals("lm_head.weight", JaisLayout.btlmName("output.weight"));
        assertNull(JaisLayout.ggufName("transformer.h.0.attn.bias"));
        assertNull(JaisLayout.btlmName("rope_freqs.weight"));
    }

    @Test
    void maxAlibiBiasIsRecoveredOrRefused() {
        assertEquals(8.0, Alibi.maxBias(Alibi.slopes(32)), 1e-5);
        assertEquals(8.0, Alibi.maxBias(Alibi.slopes(6)), 1e-5);
        assertEquals(5.0, Alibi.maxBias(Alibi.slopes(12, 5)), 1e-5);
        float[] odd = Alibi.slopes(8);
        odd[3] *= 1.1f;
        assertTrue(Double.isNaN(Alibi.maxBias(odd)));
    }

    @Test
    void aModelJaisCannotExpressIsRefused() {
        // btlm-tiny has gelu_new? if not, it is expressible; the message names the reason either way
        BtlmConfig c = BtlmConfig.read(Fixtures.tiny().resolve("config.json"));
        if (c.activation() != BtlmConfig.Activation.SWIGLU || !c.usesAlibi() || !c.scaleQkDotByD()) {
            String msg = assertThrows(BtlmException.class, () -> export(Fixtures.tiny(), DType.F32)).getMessage();
            assertTrue(msg.contains("cannot write this model in the JAIS layout"), msg);
        } else {
            float[] odd = Alibi.slopes(c.nHead());
            odd[0] *= 1.5f;
            String msg = assertThrows(BtlmException.class, () -> JaisLayout.maxAlibiBias(c, odd)).getMessage();
            assertTrue(msg.contains("follow no max_alibi_bias"), msg);
        }
    }
}
