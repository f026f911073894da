package org.btlm4j.convert;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.btlm4j.BtlmException;
import org.btlm4j.checkpoint.DType;
import org.btlm4j.checkpoint.GgufFile;
import org.btlm4j.checkpoint.TensorInfo;
import org.btlm4j.checkpoint.TensorSource;
import org.btlm4j.model.Alibi;
import org.btlm4j.model.BtlmWeights;
import org.btlm4j.model.BtlmConfig;

/**
 * BTLM in llama.cpp's conventions for the JAIS architecture (BTLM's sibling: the same blocks,
 * SwiGLU, ALiBi, muP), so that llama.cpp can run the file and btlm4j can run llama.cpp's JAIS files.
 *
 * <p>What differs from btlm4j's own layout: the architecture is {@code jais} and the
 * hyperparameters are its {@code jais.*} keys; the tensors carry ggml's names ({@code token_embd},
 * {@code blk.N.attn_qkv}, {@code blk.N.ffn_up} (c_fc), {@code blk.N.ffn_gate} (c_fc2, the SiLU
 * branch), …); the muP embedding scale is multiplied into {@code token_embd} and the output scale
 * into a separate {@code output} head (so the tied head is stored twice); and the ALiBi slopes are
 * not stored but follow from {@code jais.attention.max_alibi_bias}. Attention divides q·k by the
 * head dimension, as BTLM's {@code mup_scale_qk_dot_by_d} does.
 *
 * <p>Lost on the way: {@code alibi_scaling} (JAIS has no key for it, so a file runs at most its
 * {@code n_positions} without {@code --alibi-scaling}); slopes that no max_alibi_bias produces
 * (refused); the original config.json's other keys; and, for a tied head, the sharing of one
 * matrix (the scaled copies are rounded separately).
 */
public final class JaisLayout {
    public static final String ARCH = "jais";
    private static final Pattern BLOCK = Pattern.compile("transformer\\.h\\.(\\d+)\\.(.+)");
    private static final Pattern BLK = Pattern.compile("blk\\.(\\d+)\\.(.+)");
    private static final Map<String, String> IN_BLOCK = new LinkedHashMap<>();
    private static final Map<String, String> GLOBAL = new LinkedHashMap<>();

    static {
        IN_BLOCK.put("ln_1", "attn_norm");
        IN_BLOCK.put("attn.c_attn", "attn_qkv");
        IN_BLOCK.put("attn.c_proj", "attn_output");
        IN_BLOCK.put("ln_2", "ffn_norm");
        IN_BLOCK.put("mlp.c_fc", "ffn_up");
        IN_BLOCK.put("mlp.c_fc2", "ffn_gate");
        IN_BLOCK.put("mlp.c_proj", "ffn_down");
        GLOBAL.put("transformer.wte", "token_embd");
        GLOBAL.put("transformer.ln_f", "output_norm");
        GLOBAL.put("lm_head", "output");
    }

    private JaisLayout() {
    }

    /** The ggml name of a BTLM checkpoint tensor, or null for one the JAIS layout does not store. */
    static String ggufName(String name) {
        return rename(name, BLOCK, "blk.", IN_BLOCK, GLOBAL);
    }

    /** The BTLM checkpoint name of a JAIS GGUF tensor, or null for one BTLM does not use. */
    static String btlmName(String name) {
        return rename(name, BLK, "transformer.h.", invert(IN_BLOCK), invert(GLOBAL));
    }

    private static String rename(String name, Pattern block, String blockPrefix, Map<String, String> inBlock,
            Map<String, String> global) {
        int dot = name.lastIndexOf('.');
        if (dot < 0) {
            return null;
        }
        String stem = name.substring(0, dot);
        String suffix = name.substring(dot); // .weight or .bias
        Matcher m = block.matcher(stem);
        if (m.matches()) {
            String part = inBlock.get(m.group(2));
            return part == null ? null : blockPrefix + m.group(1) + "." + part + suffix;
        }
        String g = global.get(stem);
        return g == null ? null : g + suffix;
    }

    private static Map<String, String> invert(Map<String, String> map) {
        Map<String, String> out = new LinkedHashMap<>();
        map.forEach((k, v) -> out.put(v, k));
        return out;
    }

    /**
     * The max_alibi_bias that reproduces the model's slopes, after checking that everything else
     * the config says can be said in the JAIS layout.
     */
    static double maxAlibiBias(BtlmConfig c, float[] slopes) {
        String why = null;
        if (c.activation() != BtlmConfig.Activation.SWIGLU) {
            why = "its MLP is " + c.activation().configName() + ", JAIS's is swiglu";
        } else if (!c.usesAlibi()) {
            why = "it has learned position embeddings, JAIS has ALiBi";
        } else if (!c.scaleAttnWeights() || !c.scaleQkDotByD() || c.scaleAttnByInverseLayerIdx()) {
            why = "its attention is not scaled by 1/d as JAIS's is";
        }
        if (why != null) {
            throw new BtlmException("cannot write this model in the JAIS layout: " + why);
        }
        double b = Alibi.maxBias(slopes);
        if (Double.isNaN(b)) {
            throw new BtlmException("cannot write this model in the JAIS layout: its ALiBi slopes follow no "
                    + "max_alibi_bias (the JAIS layout stores no slopes)");
        }
        return b;
    }

    /** The BTLM config of a JAIS GGUF file, from its {@code jais.*} metadata; muP scales are 1 (folded in). */
    public static BtlmConfig config(GgufFile gguf, String where) {
        Map<String, Object> md = gguf.metadata();
        TensorInfo embd = gguf.tensors().get("token_embd.weight");
        if (embd == null || embd.rank() != 2) {
            throw new BtlmException(where + ": a JAIS GGUF file without a 2-D token_embd.weight");
        }
        ObjectNode c = JsonNodeFactory.instance.objectNode();
        c.put("model_type", "btlm");
        c.put("n_layer", number(md, "jais.block_count", where).intValue());
        c.put("n_embd", number(md, "jais.embedding_length", where).intValue());
        c.put("n_head", number(md, "jais.attention.head_count", where).intValue());
        c.put("n_inner", number(md, "jais.feed_forward_length", where).intValue());
        c.put("n_positions", number(md, "jais.context_length", where).intValue());
        c.put("vocab_size", embd.dim(0));
        c.put("layer_norm_epsilon", number(md, "jais.attention.layer_norm_epsilon", where).doubleValue());
        c.put("activation_function", "swiglu");
        c.put("position_embedding_type", "alibi");
        c.put("scale_attn_weights", true);
        c.put("mup_scale_qk_dot_by_d", true);
        c.put("mup_embeddings_scale", 1.0);
        c.put("mup_output_alpha", 1.0);
        c.put("mup_width_scale", 1.0);
        c.put("tie_word_embeddings", !gguf.tensors().containsKey("output.weight"));
        if (md.get("tokenizer.ggml.bos_token_id") instanceof Number n) {
            c.put("bos_token_id", n.intValue());
        }
        if (md.get("tokenizer.ggml.eos_token_id") instanceof Number n) {
            c.put("eos_token_id", n.intValue());
        }
        try {
            return BtlmConfig.parse(c);
        } catch (BtlmException e) {
            throw new BtlmException(where + ": " + e.getMessage());
        }
    }

    private static Number number(Map<String, Object> md, String key, String where) {
        if (!(md.get(key) instanceof Number n)) {
            throw new BtlmException(where + ": a JAIS GGUF file without " + key);
        }
        return n;
    }

    /**
     * The tensors of a JAIS GGUF file under BTLM's checkpoint names, with the slopes of its
     * max_alibi_bias (8 when absent, llama.cpp's default) as {@code transformer.relative_pe.slopes}.
     */
    public static TensorSource asBtlm(GgufFile gguf, BtlmConfig config) {
        double bias = gguf.metadata().get("jais.attention.max_alibi_bias") instanceof Number n ? n.doubleValue() : 8;
        Map<String, TensorInfo> renamed = new LinkedHashMap<>();
        for (TensorInfo t : gguf.tensors().values()) {
            String name = btlmName(t.name());
            if (name != null) {
                renamed.put(name, new TensorInfo(name, t.dtype(), t.shape(), t.data(), t.source()));
            }
        }
        float[] slopes = Alibi.slopes(config.nHead(), bias);
        MemorySegment seg = MemorySegment.ofArray(new byte[4 * slopes.length]);
        for (int h = 0; h < slopes.length; h++) {
            seg.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), h, slopes[h]);
        }
        renamed.put("transformer.relative_pe.slopes", new TensorInfo("transformer.relative_pe.slopes", DType.F32,
                new long[] {slopes.length}, seg, BtlmWeights.COMPUTED + " n_head and jais.attention.max_alibi_bias " + bias));
        return new TensorSource() {
            @Override
            public Map<String, TensorInfo> tensors() {
                return renamed;
            }

            @Override
            public String describe() {
                return gguf.describe() + " in the JAIS layout";
            }

            @Override
            public void close() {
                gguf.close();
            }
        };
    }
}
