package org.btlm4j.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.math.BigInteger;
import org.btlm4j.HostileInput;

/**
 * Coverage-guided fuzzing of {@code config.json} validation (Jazzer). Regression inputs live in
 * {@code src/test/resources/org/btlm4j/model/BtlmConfigFuzzTestInputs/}; {@code JAZZER_FUZZ=1}
 * fuzzes one target for {@code maxDuration}. A config is refused with a BtlmException, or accepted
 * only if the model it describes can exist: positive sizes, heads that divide the width, token ids
 * inside the vocabulary, a c_attn width (3·n_embd) that fits an int and a parameter count that fits a
 * long (checked here with BigInteger).
 */
class BtlmConfigFuzzTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Fields of config.json, for the structured target. */
    private static final String[] FIELDS = {
        "model_type", "vocab_size", "n_embd", "n_layer", "n_head", "n_inner", "n_positions", "activation_function",
        "position_embedding_type", "layer_norm_epsilon", "mup_embeddings_scale", "embeddings_scale",
        "mup_output_alpha", "mup_width_scale", "output_logits_scale", "width_scale", "mup_scale_qk_dot_by_d",
        "scale_qk_dot_by_d", "reorder_and_upcast_attn", "scale_attn_weights", "scale_attn_by_inverse_layer_idx",
        "tie_word_embeddings", "alibi_scaling", "bos_token_id", "eos_token_id",
    };

    /** Any JSON text (the input read as UTF-8). */
    @FuzzTest(maxDuration = "60s")
    void configJson(byte[] utf8) {
        JsonNode node;
        try {
            node = JSON.readTree(utf8);
        } catch (IOException e) {
            return; // not JSON: BtlmConfig.read says so before parse is reached
        }
        if (node instanceof ObjectNode object) {
            check(object);
        }
    }

    /** The fixture's config with fields replaced by fuzzed values of fuzzed JSON types. */
    @FuzzTest(maxDuration = "60s")
    void configFields(FuzzedDataProvider data) {
        ObjectNode c = JSON.createObjectNode();
        c.put("model_type", "btlm").put("n_embd", 64).put("n_head", 4).put("n_inner", 170).put("n_layer", 2)
                .put("n_positions", 256).put("vocab_size", 50257).put("activation_function", "swiglu")
                .put("position_embedding_type", "alibi");
        int changes = data.consumeInt(1, 6);
        for (int i = 0; i < changes; i++) {
            String field = data.pickValue(FIELDS);
            switch (data.consumeInt(0, 7)) {
                case 0 -> c.put(field, data.consumeInt());
                case 1 -> c.put(field, data.consumeLong());
                case 2 -> c.put(field, data.consumeDouble());
                case 3 -> c.put(field, data.consumeString(16));
                case 4 -> c.put(field, data.consumeBoolean());
                case 5 -> c.putNull(field);
                case 6 -> {
                    byte[] magnitude = data.consumeBytes(12);
                    c.put(field, magnitude.length == 0 ? BigInteger.ZERO : new BigInteger(magnitude));
                }
                default -> {
                    ObjectNode o = c.putObject(field);
                    o.put("type", data.consumeBoolean() ? "linear" : data.consumeString(8));
                    if (data.consumeBoolean()) {
                        o.put("factor", data.consumeDouble());
                    } else {
                        o.put("train_seq_len", data.consumeLong());
                    }
                }
            }
        }
        check(c);
    }

    private static void check(ObjectNode c) {
        BtlmConfig[] parsed = new BtlmConfig[1];
        if (HostileInput.refusalOf(() -> parsed[0] = BtlmConfig.parse(c)) != null) {
            return;
        }
        BtlmConfig config = parsed[0];
        assertTrue(config.vocabSize() > 0 && config.nEmbd() > 0 && config.nLayer() > 0 && config.nHead() > 0
                && config.nInner() > 0 && config.nPositions() > 0, config::toString);
        assertTrue(config.nEmbd() % config.nHead() == 0, config::toString);
        assertTrue(config.bosTokenId() >= 0 && config.bosTokenId() < config.vocabSize()
                && config.eosTokenId() >= 0 && config.eosTokenId() < config.vocabSize(), config::toString);
        assertTrue(Float.isFinite(config.layerNormEpsilon()) && config.layerNormEpsilon() > 0, config::toString);
        assertTrue(3L * config.nEmbd() <= Integer.MAX_VALUE, config::toString); // c_attn's output is int-indexed
        BigInteger count = parameterCount(config);
        assertTrue(count.bitLength() < 64 && count.longValueExact() == config.parameterCount(),
                () -> config + ": " + count + " parameters, parameterCount() says " + config.parameterCount());
    }

    /** The parameter count with unbounded integers: an independent check of parameterCount(). */
    private static BigInteger parameterCount(BtlmConfig c) {
        BigInteger e = BigInteger.valueOf(c.nEmbd());
        BigInteger inner = BigInteger.valueOf(c.nInner());
        BigInteger mlpIn = e.multiply(inner).add(inner)
                .multiply(BigInteger.valueOf(c.activation() == BtlmConfig.Activation.SWIGLU ? 2 : 1));
        BigInteger perLayer = e.multiply(BigInteger.valueOf(4)) // ln_1, ln_2
                .add(e.multiply(e).multiply(BigInteger.valueOf(3))).add(e.multiply(BigInteger.valueOf(3))) // c_attn
                .add(e.multiply(e)).add(e) // attn.c_proj
                .add(mlpIn)
                .add(inner.multiply(e)).add(e); // mlp.c_proj
        BigInteger vocab = BigInteger.valueOf(c.vocabSize());
        BigInteger total = vocab.multiply(e).add(perLayer.multiply(BigInteger.valueOf(c.nLayer())))
                .add(e.multiply(BigInteger.TWO));
        if (!c.tieWordEmbeddings()) {
            total = total.add(vocab.multiply(e));
        }
        if (c.positionEmbedding() == BtlmConfig.PositionEmbedding.LEARNED) {
            total = total.add(BigInteger.valueOf(c.nPositions()).multiply(e));
        }
        return total;
    }
}
