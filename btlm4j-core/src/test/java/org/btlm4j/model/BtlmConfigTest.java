package org.btlm4j.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.btlm4j.BtlmException;
import org.btlm4j.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BtlmConfigTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static ObjectNode official() {
        // config.json of cerebras/btlm-3b-8k-base (spec section 2)
        return (ObjectNode) assertDoesNotFail(() -> JSON.readTree("""
                {"activation_function": "swiglu", "architectures": ["BTLMLMHeadModel"], "attn_pdrop": 0.0,
                 "bos_token_id": 50256, "embd_pdrop": 0.0, "eos_token_id": 50256, "initializer_range": 0.02,
                 "layer_norm_epsilon": 1e-05, "model_type": "btlm", "n_embd": 2560, "n_head": 32, "n_inner": 6826,
                 "n_layer": 32, "n_positions": 8192, "mup_embeddings_scale": 14.6,
                 "mup_output_alpha": 2.2200000000000003, "mup_scale_qk_dot_by_d": true, "mup_width_scale": 0.1,
                 "position_embedding_type": "alibi", "reorder_and_upcast_attn": false, "resid_pdrop": 0.0,
                 "scale_attn_by_inverse_layer_idx": false, "scale_attn_weights": true, "torch_dtype": "bfloat16",
                 "transformers_version": "4.30.0", "use_cache": true, "vocab_size": 50257}"""));
    }

    interface Io<T> {
        T get() throws IOException;
    }

    static <T> T assertDoesNotFail(Io<T> io) {
        try {
            return io.get();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    static String error(ObjectNode c) {
        return assertThrows(BtlmException.class, () -> BtlmConfig.parse(c)).getMessage();
    }

    @Test
    void readsTheOfficialConfigWithItsDefaults() {
        BtlmConfig c = BtlmConfig.parse(official());
        assertEquals(BtlmConfig.btlm3b8k(), c);
        assertEquals(80, c.headDim());
        assertEquals(14.6f, c.embeddingsScale());
        assertEquals(0.222f, c.outputScale());
        assertTrue(c.tieWordEmbeddings(), "tie_word_embeddings defaults to true");
        assertNull(c.alibiScaling(), "alibi_scaling defaults to null");
        assertEquals(2_646_255_744L, c.parameterCount());
    }

    @Test
    void appliesGpt2DefaultsForAbsentKeys() {
        BtlmConfig c = BtlmConfig.parse(JSON.createObjectNode());
        assertEquals(768, c.nEmbd());
        assertEquals(12, c.nLayer());
        assertEquals(12, c.nHead());
        assertEquals(4 * 768, c.nInner(), "n_inner null means 4·n_embd");
        assertEquals(1024, c.nPositions());
        assertEquals(BtlmConfig.Activation.GELU_NEW, c.activation());
        assertEquals(BtlmConfig.PositionEmbedding.LEARNED, c.positionEmbedding());
        assertEquals(1f, c.embeddingsScale());
        assertEquals(1f, c.outputScale());
        assertFalse(c.scaleQkDotByD());
        assertTrue(c.scaleAttnWeights());
    }

    @Test
    void acceptsTheOlderMupKeyNames() {
        ObjectNode c = official();
        c.remove("mup_embeddings_scale");
        c.remove("mup_output_alpha");
        c.remove("mup_width_scale");
        c.remove("mup_scale_qk_dot_by_d");
        c.put("embeddings_scale", 14.6);
        c.put("output_logits_scale", 0.222);
        c.put("scale_qk_dot_by_d", true);
        c.put("width_scale", 0.1);
        assertEquals(BtlmConfig.btlm3b8k(), BtlmConfig.parse(c));
    }

    @Test
    void readsAlibiScalingFactorAndDynamic() {
        ObjectNode c = official();
        c.set("alibi_scaling", JSON.createObjectNode().put("type", "linear").put("factor", 2.0));
        BtlmConfig.AlibiScaling s = BtlmConfig.parse(c).alibiScaling();
        assertFalse(s.isDynamic());
        assertEquals(2f, s.scaleFor(100));
        c.set("alibi_scaling", JSON.createObjectNode().put("type", "linear").put("train_seq_len", 8192));
        s = BtlmConfig.parse(c).alibiScaling();
        assertTrue(s.isDynamic());
        assertEquals(1f, s.scaleFor(8192), "no scaling up to the training length");
        assertEquals(2f, s.scaleFor(16384));
    }

    @Test
    void rejectsMalformedAlibiScaling() {
        ObjectNode c = official();
        c.set("alibi_scaling", JSON.createObjectNode().put("type", "linear").put("factor", 0.5));
        assertTrue(error(c).contains("alibi_scaling.factor must be a number > 1"));
        c.set("alibi_scaling", JSON.createObjectNode().put("type", "dynamic").put("factor", 2));
        assertTrue(error(c).contains("alibi_scaling.type must be \"linear\""));
        c.set("alibi_scaling", JSON.createObjectNode().put("type", "linear").put("factor", 2).put("train_seq_len", 9));
        assertTrue(error(c).contains("exactly two keys"));
        c.set("alibi_scaling", JSON.createObjectNode().put("type", "linear").put("train_seq_len", 1));
        assertTrue(error(c).contains("train_seq_len must be an integer > 1"));
        c.set("alibi_scaling", JSON.createObjectNode().put("type", "linear").put("scale", 2));
        assertTrue(error(c).contains("unknown key \"scale\""));
        c.put("alibi_scaling", "linear");
        assertTrue(error(c).contains("alibi_scaling must be null or an object"));
    }

    @Test
    void namesTheFieldAndTheProblem() {
        ObjectNode c = official();
        c.put("n_head", 30);
        assertEquals("config.json: n_head 30 does not divide n_embd 2560", error(c));
        c = official();
        c.put("n_layer", "32");
        assertEquals("config.json: n_layer must be an integer, got \"32\"", error(c));
        c = official();
        c.put("activation_function", "relu");
        assertTrue(error(c).startsWith("config.json: activation_function \"relu\" is not supported"));
        c = official();
        c.put("position_embedding_type", "rotary");
        assertTrue(error(c).contains("position_embedding_type \"rotary\" is not supported"));
        c = official();
        c.put("vocab_size", 0);
        assertTrue(error(c).contains("vocab_size must be positive"));
        c = official();
        c.put("model_type", "llama");
        assertTrue(error(c).contains("model_type \"llama\" is not supported"));
        c = official();
        c.put("tie_word_embeddings", "yes");
        assertTrue(error(c).contains("tie_word_embeddings must be true or false"));
        c = official();
        c.put("layer_norm_epsilon", -1);
        assertTrue(error(c).contains("layer_norm_epsilon must be a positive number"));
        c = official();
        c.put("n_embd", 1e20);
        assertTrue(error(c).contains("n_embd"));
    }

    @Test
    void readErrorsNameTheFile(@TempDir Path tmp) throws IOException {
        Path f = tmp.resolve("config.json");
        Files.writeString(f, "{\"n_embd\": 64,");
        String msg = assertThrows(BtlmException.class, () -> BtlmConfig.read(f)).getMessage();
        assertTrue(msg.startsWith(f + ": not valid JSON"), msg);
        Files.writeString(f, "[1, 2]");
        assertTrue(assertThrows(BtlmException.class, () -> BtlmConfig.read(f)).getMessage().contains("expected a JSON object"));
        assertTrue(assertThrows(BtlmException.class, () -> BtlmConfig.read(tmp.resolve("none.json"))).getMessage()
                .contains("file not found"));
    }

    @Test
    void readsTheFixtureConfigs() {
        BtlmConfig tiny = BtlmConfig.read(Fixtures.tiny().resolve("config.json"));
        assertEquals(64, tiny.nEmbd());
        assertEquals(170, tiny.nInner());
        assertEquals((float) (2.22 * 0.1), tiny.outputScale());
    }
}
