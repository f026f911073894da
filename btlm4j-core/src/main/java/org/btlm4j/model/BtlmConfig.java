package org.btlm4j.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import org.btlm4j.BtlmException;

/**
 * The hyper-parameters of a BTLM (or GPT-2 / Cerebras-GPT) model, read from {@code config.json}
 * per spec section 2: every field, the older key names, the config class's defaults, and validation
 * that names the field and the problem.
 *
 * @param nInner          width of the MLP (already resolved: {@code n_inner} null means 4·n_embd)
 * @param embeddingsScale muP s_emb that multiplies the token embedding
 * @param outputScale     muP s_out = mup_output_alpha · mup_width_scale that multiplies the logits
 * @param alibiScaling    null, or the {@code alibi_scaling} rule
 */
public record BtlmConfig(
        String modelType,
        int vocabSize,
        int nEmbd,
        int nLayer,
        int nHead,
        int nInner,
        int nPositions,
        Activation activation,
        PositionEmbedding positionEmbedding,
        float layerNormEpsilon,
        float embeddingsScale,
        float outputScale,
        boolean scaleQkDotByD,
        boolean scaleAttnWeights,
        boolean scaleAttnByInverseLayerIdx,
        boolean tieWordEmbeddings,
        AlibiScaling alibiScaling,
        int bosTokenId,
        int eosTokenId) {

    /** The MLP non-linearity. */
    public enum Activation {
        /** (x·c_fc + b) ⊙ silu(x·c_fc2 + b2), BTLM's MLP. */
        SWIGLU("swiglu"),
        /** GPT-2's tanh approximation of GELU. */
        GELU_NEW("gelu_new");

        private final String configName;

        Activation(String configName) {
            this.configName = configName;
        }

        public String configName() {
            return configName;
        }
    }

    /** How positions enter the model. */
    public enum PositionEmbedding {
        ALIBI("alibi"), LEARNED("learned");

        private final String configName;

        PositionEmbedding(String configName) {
            this.configName = configName;
        }

        public String configName() {
            return configName;
        }
    }

    /**
     * {@code alibi_scaling}: exactly one of a fixed {@code factor} (> 1) or a {@code train_seq_len}
     * (> 1) for dynamic scaling; the unused one is 0.
     */
    public record AlibiScaling(double factor, int trainSeqLen) {
        public boolean isDynamic() {
            return trainSeqLen > 0;
        }

        /** Scaling c of spec section 4 for a forward call whose total key length is {@code keyLength}. */
        public float scaleFor(int keyLength) {
            if (!isDynamic()) {
                return (float) factor;
            }
            return keyLength > trainSeqLen ? (float) keyLength / trainSeqLen : 1f;
        }

        @Override
        public String toString() {
            return isDynamic() ? "linear, train_seq_len " + trainSeqLen : "linear, factor " + factor;
        }
    }

    public BtlmConfig {
        require(vocabSize > 0, "vocab_size", "must be positive, got " + vocabSize);
        require(nEmbd > 0, "n_embd", "must be positive, got " + nEmbd);
        require(nLayer > 0, "n_layer", "must be positive, got " + nLayer);
        require(nHead > 0, "n_head", "must be positive, got " + nHead);
        require(nEmbd % nHead == 0, "n_head", nHead + " does not divide n_embd " + nEmbd);
        require(nInner > 0, "n_inner", "must be positive, got " + nInner);
        require(nPositions > 0, "n_positions", "must be positive, got " + nPositions);
        require(layerNormEpsilon > 0 && Float.isFinite(layerNormEpsilon), "layer_norm_epsilon",
                "must be a positive number, got " + layerNormEpsilon);
        require(Float.isFinite(embeddingsScale) && embeddingsScale != 0, "mup_embeddings_scale",
                "must be a non-zero number, got " + embeddingsScale);
        require(Float.isFinite(outputScale) && outputScale != 0, "mup_output_alpha",
                "with mup_width_scale must give a non-zero output scale, got " + outputScale);
        require(bosTokenId >= 0 && bosTokenId < vocabSize, "bos_token_id",
                bosTokenId + " is outside the vocabulary of " + vocabSize);
        require(eosTokenId >= 0 && eosTokenId < vocabSize, "eos_token_id",
                eosTokenId + " is outside the vocabulary of " + vocabSize);
        // c_attn's output [q | k | v] is indexed with ints; and the sizes must describe a model whose
        // parameter count (the sum of every weight's size) is a number at all
        require(3L * nEmbd <= Integer.MAX_VALUE, "n_embd", nEmbd + " is too large (3·n_embd must be below 2^31)");
        try {
            exactParameterCount(nEmbd, nInner, nLayer, vocabSize, nPositions, activation, positionEmbedding,
                    tieWordEmbeddings);
        } catch (ArithmeticException e) {
            throw new BtlmException("config.json: n_embd " + nEmbd + ", n_inner " + nInner + ", n_layer " + nLayer
                    + " and vocab_size " + vocabSize + " describe a model of more than 2^63 parameters");
        }
    }

    /** This config with another {@code alibi_scaling} (null: none). */
    public BtlmConfig withAlibiScaling(AlibiScaling scaling) {
        return new BtlmConfig(modelType, vocabSize, nEmbd, nLayer, nHead, nInner, nPositions, activation,
                positionEmbedding, layerNormEpsilon, embeddingsScale, outputScale, scaleQkDotByD, scaleAttnWeights,
                scaleAttnByInverseLayerIdx, tieWordEmbeddings, scaling, bosTokenId, eosTokenId);
    }

    /** Dimension of one attention head (80 for BTLM-3B). */
    public int headDim() {
        return nEmbd / nHead;
    }

    /** Whether the attention logits get an ALiBi bias. */
    public boolean usesAlibi() {
        return positionEmbedding == PositionEmbedding.ALIBI;
    }

    /** The configuration of cerebras/btlm-3b-8k-base (spec section 2). */
    public static BtlmConfig btlm3b8k() {
        return new BtlmConfig("btlm", 50257, 2560, 32, 32, 6826, 8192, Activation.SWIGLU, PositionEmbedding.ALIBI,
                1e-5f, 14.6f, (float) (2.2200000000000003 * 0.1), true, true, false, true, null, 50256, 50256);
    }

    private static void require(boolean ok, String field, String problem) {
        if (!ok) {
            throw new BtlmException("config.json: " + field + " " + problem);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Reading config.json

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Reads and validates {@code config.json}. */
    public static BtlmConfig read(Path file) {
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            // a broken limit (nesting too deep, a number too long) has no location
            throw new BtlmException(file + ": not valid JSON (" + e.getOriginalMessage()
                    + (e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr()) + ")");
        } catch (NoSuchFileException | java.io.FileNotFoundException e) {
            throw new BtlmException(file + (java.nio.file.Files.exists(file) ? ": cannot read" : ": file not found"));
        } catch (IOException e) {
            throw new BtlmException(file + ": cannot read (" + e.getMessage() + ")");
        }
        if (root == null || !root.isObject()) {
            throw new BtlmException(file + ": expected a JSON object");
        }
        try {
            return parse((ObjectNode) root);
        } catch (BtlmException e) {
            // Name the file, not just config.json, so users with several models see which one.
            throw new BtlmException(e.getMessage().replaceFirst("^config\\.json", file.toString()));
        }
    }

    /** Parses an already-read config object (field defaults are those of the HF config class). */
    public static BtlmConfig parse(ObjectNode c) {
        String modelType = string(c, "model_type", "btlm");
        if (!modelType.equals("btlm") && !modelType.equals("gpt2")) {
            throw new BtlmException("config.json: model_type \"" + modelType + "\" is not supported (expected \"btlm\")");
        }
        int nEmbd = integer(c, "n_embd", 768);
        Integer nInnerOrNull = c.has("n_inner") && !c.get("n_inner").isNull() ? integer(c, "n_inner", 0) : null;

        Activation activation = switch (string(c, "activation_function", "gelu_new")) {
            case "swiglu" -> Activation.SWIGLU;
            case "gelu_new" -> Activation.GELU_NEW;
            case String other -> throw new BtlmException("config.json: activation_function \"" + other
                    + "\" is not supported (expected \"swiglu\" or \"gelu_new\")");
        };
        PositionEmbedding positions = switch (string(c, "position_embedding_type", "learned")) {
            case "alibi" -> PositionEmbedding.ALIBI;
            case "learned" -> PositionEmbedding.LEARNED;
            case String other -> throw new BtlmException("config.json: position_embedding_type \"" + other
                    + "\" is not supported (expected \"alibi\" or \"learned\")");
        };

        // muP: new names first, then the older ones (output_logits_scale is already alpha·width).
        double embScale = number(c, "mup_embeddings_scale", Double.NaN);
        if (Double.isNaN(embScale)) {
            embScale = number(c, "embeddings_scale", 1.0);
        }
        double outScale;
        if (c.has("mup_output_alpha") || c.has("mup_width_scale")) {
            outScale = number(c, "mup_output_alpha", 1.0) * number(c, "mup_width_scale", 1.0);
        } else if (c.has("output_logits_scale")) {
            outScale = number(c, "output_logits_scale", 1.0);
        } else {
            outScale = number(c, "width_scale", 1.0) * 1.0;
        }
        boolean qkByD = c.has("mup_scale_qk_dot_by_d") ? bool(c, "mup_scale_qk_dot_by_d", false)
                : bool(c, "scale_qk_dot_by_d", false);

        // reorder_and_upcast_attn only changes the precision of a half-precision run; we compute in
        // float32 anyway, so it is checked for type and otherwise ignored.
        bool(c, "reorder_and_upcast_attn", false);

        return new BtlmConfig(
                modelType,
                integer(c, "vocab_size", 50257),
                nEmbd,
                integer(c, "n_layer", 12),
                integer(c, "n_head", 12),
                nInnerOrNull == null ? 4 * nEmbd : nInnerOrNull,
                integer(c, "n_positions", 1024),
                activation,
                positions,
                (float) number(c, "layer_norm_epsilon", 1e-5),
                (float) embScale,
                (float) outScale,
                qkByD,
                bool(c, "scale_attn_weights", true),
                bool(c, "scale_attn_by_inverse_layer_idx", false),
                bool(c, "tie_word_embeddings", true),
                alibiScaling(c.get("alibi_scaling")),
                integer(c, "bos_token_id", 50256),
                integer(c, "eos_token_id", 50256));
    }

    private static AlibiScaling alibiScaling(JsonNode node) {
        if (node == null || node.isNull()) {
            return null;
        }
        String field = "alibi_scaling";
        if (!node.isObject()) {
            throw new BtlmException("config.json: " + field + " must be null or an object, got " + node);
        }
        if (node.size() != 2 || !node.has("type")) {
            throw new BtlmException("config.json: " + field
                    + " must have exactly two keys, \"type\" and \"factor\" or \"train_seq_len\", got " + node);
        }
        if (!"linear".equals(node.get("type").asText(null)) || !node.get("type").isTextual()) {
            throw new BtlmException("config.json: " + field + ".type must be \"linear\", got " + node.get("type"));
        }
        if (node.has("factor")) {
            JsonNode f = node.get("factor");
            if (!f.isNumber() || !(f.asDouble() > 1.0) || !Double.isFinite(f.asDouble())) {
                throw new BtlmException("config.json: " + field + ".factor must be a number > 1, got " + f);
            }
            return new AlibiScaling(f.asDouble(), 0);
        }
        if (node.has("train_seq_len")) {
            JsonNode n = node.get("train_seq_len");
            if (!n.isIntegralNumber() || n.asLong() <= 1 || n.asLong() > Integer.MAX_VALUE) {
                throw new BtlmException("config.json: " + field + ".train_seq_len must be an integer > 1, got " + n);
            }
            return new AlibiScaling(0, n.asInt());
        }
        Iterator<Map.Entry<String, JsonNode>> it = node.properties().iterator();
        String other = "";
        while (it.hasNext()) {
            String k = it.next().getKey();
            if (!k.equals("type")) {
                other = k;
            }
        }
        throw new BtlmException("config.json: " + field + " has unknown key \"" + other
                + "\" (expected \"factor\" or \"train_seq_len\")");
    }

    private static String string(ObjectNode c, String key, String dflt) {
        JsonNode n = c.get(key);
        if (n == null || n.isNull()) {
            return dflt;
        }
        if (!n.isTextual()) {
            throw new BtlmException("config.json: " + key + " must be a string, got " + n);
        }
        return n.asText();
    }

    private static int integer(ObjectNode c, String key, int dflt) {
        JsonNode n = c.get(key);
        if (n == null || n.isNull()) {
            return dflt;
        }
        if (!n.isIntegralNumber() && !(n.isNumber() && n.asDouble() == Math.rint(n.asDouble()))) {
            throw new BtlmException("config.json: " + key + " must be an integer, got " + n);
        }
        if (!n.canConvertToInt()) {
            throw new BtlmException("config.json: " + key + " " + n + " is out of range");
        }
        return n.asInt();
    }

    private static double number(ObjectNode c, String key, double dflt) {
        JsonNode n = c.get(key);
        if (n == null || n.isNull()) {
            return dflt;
        }
        if (!n.isNumber()) {
            throw new BtlmException("config.json: " + key + " must be a number, got " + n);
        }
        return n.asDouble();
    }

    private static boolean bool(ObjectNode c, String key, boolean dflt) {
        JsonNode n = c.get(key);
        if (n == null || n.isNull()) {
            return dflt;
        }
        if (!n.isBoolean()) {
            throw new BtlmException("config.json: " + key + " must be true or false, got " + n);
        }
        return n.asBoolean();
    }

    /** Total parameter count with the tied head counted once (2,646,255,744 for BTLM-3B-8k). */
    public long parameterCount() {
        return exactParameterCount(nEmbd, nInner, nLayer, vocabSize, nPositions, activation, positionEmbedding,
                tieWordEmbeddings);
    }

    /** The parameter count; an ArithmeticException if it does not fit a long. */
    private static long exactParameterCount(long e, long nInner, long nLayer, long vocabSize, long nPositions,
            Activation activation, PositionEmbedding positionEmbedding, boolean tieWordEmbeddings) {
        long ee = Math.multiplyExact(e, e);
        long mlpIn = Math.multiplyExact(activation == Activation.SWIGLU ? 2 : 1,
                Math.addExact(Math.multiplyExact(e, nInner), nInner)); // c_fc (+ c_fc2)
        long perLayer = Math.addExact(Math.addExact(Math.addExact(
                4 * e // ln_1, ln_2
                + 3 * e + e + e, // the c_attn, attn.c_proj and mlp.c_proj biases
                Math.multiplyExact(ee, 4)), // c_attn and attn.c_proj
                mlpIn),
                Math.multiplyExact(nInner, e)); // mlp.c_proj
        long embedding = Math.multiplyExact(vocabSize, e);
        long total = Math.addExact(Math.addExact(embedding, Math.multiplyExact(nLayer, perLayer)), 2 * e);
        if (!tieWordEmbeddings) {
            total = Math.addExact(total, embedding);
        }
        if (positionEmbedding == PositionEmbedding.LEARNED) {
            total = Math.addExact(total, Math.multiplyExact(nPositions, e));
        }
        return total;
    }
}
