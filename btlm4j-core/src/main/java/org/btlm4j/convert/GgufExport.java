package org.btlm4j.convert;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.LongConsumer;
import org.btlm4j.BtlmException;
import org.btlm4j.checkpoint.DType;
import org.btlm4j.checkpoint.GgufWriter;
import org.btlm4j.checkpoint.ModelDirectory;
import org.btlm4j.checkpoint.TensorInfo;
import org.btlm4j.checkpoint.TensorSource;
import org.btlm4j.model.BtlmConfig;
import org.btlm4j.model.BtlmWeights;
import org.btlm4j.tensor.Parallel;
import org.btlm4j.tensor.Quantizer;
import org.btlm4j.tensor.WeightMatrix;
import org.btlm4j.tokenizer.Gpt2Tokenizer;

/**
 * Writes a model as a btlm4j GGUF file: every linear weight transposed to ggml's [out, in] layout
 * and stored in the chosen type (block-quantized rows run along the input dimension, padded with
 * zeros to whole blocks: the 6,826-wide down projection quantizes too), the token embedding in
 * its own type, vectors in F32; metadata carries the model's whole {@code config.json}, the
 * tokenizer and the usual llama.cpp-style keys.
 */
public final class GgufExport {
    /** Metadata key of the verbatim config.json. */
    public static final String CONFIG_KEY = "btlm.config_json";
    /** Metadata key saying linear weights are [out, in]. */
    public static final String LAYOUT_KEY = "btlm4j.linear_layout";
    public static final String LAYOUT_OUT_IN = "out_in";

    private GgufExport() {
    }

    /** The weight types a file can be written in. */
    public static DType parseType(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "f32" -> DType.F32;
            case "f16" -> DType.F16;
            case "bf16" -> DType.BF16;
            case "q8_0" -> DType.Q8_0;
            case "q4_0" -> DType.Q4_0;
            default -> throw new BtlmException("type " + name + " is not known (available: f32, f16, bf16, q8_0, q4_0)");
        };
    }

    /**
     * Converts the model at {@code model} (directory or weights file) to {@code out}.
     *
     * @param type          type of the linear weights
     * @param embeddingType type of the token embedding (also the tied head)
     * @param progress      receives bytes written so far (may be null)
     */
    public static void export(Path model, DType type, DType embeddingType, Path out, Parallel pool,
            LongConsumer progress) {
        ModelDirectory files = ModelDirectory.locate(model);
        BtlmConfig config = BtlmConfig.read(files.config());
        Gpt2Tokenizer tokenizer = Gpt2Tokenizer.fromDirectory(files.directory())
                .orElseThrow(() -> new BtlmException(files.directory() + ": no tokenizer files to put in the GGUF file"));
        String configJson;
        try {
            configJson = Files.readString(files.config(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new BtlmException(files.config() + ": cannot read (" + e.getMessage() + ")");
        }
        try (TensorSource source = files.openWeights()) {
            BtlmWeights.bind(config, source); // every tensor present and of the right shape
            GgufWriter w = new GgufWriter();
            w.put("general.architecture", "btlm");
            w.put("general.name", files.directory().toAbsolutePath().getFileName().toString());
            w.put(CONFIG_KEY, configJson);
            w.put(LAYOUT_KEY, LAYOUT_OUT_IN);
            w.putU32("btlm.context_length", config.nPositions());
            w.putU32("btlm.embedding_length", config.nEmbd());
            w.putU32("btlm.block_count", config.nLayer());
            w.putU32("btlm.feed_forward_length", config.nInner());
            w.putU32("btlm.attention.head_count", config.nHead());
            w.putF32("btlm.attention.layer_norm_epsilon", config.layerNormEpsilon());
            w.putF32("btlm.mup.embeddings_scale", config.embeddingsScale());
            w.putF32("btlm.mup.output_scale", config.outputScale());
            w.put("tokenizer.ggml.model", "gpt2");
            List<String> tokens = new ArrayList<>(tokenizer.tokenStrings());
            for (int i = 0; i < tokens.size(); i++) {
                if (tokens.get(i) == null) {
                    throw new BtlmException("the tokenizer has no token with id " + i + "; GGUF needs a dense list");
                }
            }
            w.put("tokenizer.ggml.tokens", tokens);
            w.put("tokenizer.ggml.merges", tokenizer.mergeRules());
            w.putU32("tokenizer.ggml.bos_token_id", config.bosTokenId());
            w.putU32("tokenizer.ggml.eos_token_id", config.eosTokenId());

            for (TensorInfo t : source.tensors().values()) {
                String name = t.name();
                if (name.endsWith(".attn.bias") || name.endsWith(".attn.masked_bias")
                        || name.equals("lm_head.weight") && config.tieWordEmbeddings()) {
                    continue; // causal-mask buffers and the tied head (it is wte) are not weights
                }
                if (t.rank() == 1 || name.equals("transformer.relative_pe.slopes")) {
                    addFloats(w, t);
                } else if (isLinear(name)) {
                    addLinear(w, t, type, pool);
                } else {
                    addRows(w, t, embeddingType, pool); // wte, wpe, an untied lm_head: [rows, n_embd]
                }
            }
            w.write(out, progress);
        }
    }

    private static boolean isLinear(String name) {
        return name.endsWith(".attn.c_attn.weight") || name.endsWith(".attn.c_proj.weight")
                || name.endsWith(".mlp.c_fc.weight") || name.endsWith(".mlp.c_fc2.weight")
                || name.endsWith(".mlp.c_proj.weight");
    }

    /** A small tensor as F32 with its own shape. */
    private static void addFloats(GgufWriter w, TensorInfo t) {
        float[] v = BtlmWeights.toFloats(t);
        w.addTensor(t.name(), DType.F32, t.shape(), ch -> {
            ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (float x : v) {
                b.putFloat(x);
            }
            b.flip();
            while (b.hasRemaining()) {
                ch.write(b);
            }
        });
    }

    /** Conv1D [in, out] → [out, in] rows in {@code type}. */
    private static void addLinear(GgufWriter w, TensorInfo t, DType type, Parallel pool) {
        int in = (int) t.dim(0);
        int out = (int) t.dim(1);
        w.addTensor(t.name(), type, ggufShape(type, out, in), ch -> {
            float[] src = new float[in * out];
            WeightMatrix m = WeightMatrix.of(t);
            for (int r = 0; r < in; r++) {
                m.row(r, src, r * out);
            }
            float[] rows = transpose(src, in, out);
            writeRows(ch, rows, out, in, type, pool);
        });
    }

    /** A [rows, cols] table (embedding) kept row by row in {@code type}. */
    private static void addRows(GgufWriter w, TensorInfo t, DType type, Parallel pool) {
        int rows = (int) t.dim(0);
        int cols = (int) t.dim(1);
        w.addTensor(t.name(), type, ggufShape(type, rows, cols), ch -> {
            WeightMatrix m = WeightMatrix.of(t);
            // In slices of rows so a 50257-row embedding never needs more than a few MB of floats.
            int slice = Math.max(1, (16 << 20) / (cols * 4));
            float[] buf = new float[slice * cols];
            for (int r0 = 0; r0 < rows; r0 += slice) {
                int n = Math.min(slice, rows - r0);
                for (int r = 0; r < n; r++) {
                    m.row(r0 + r, buf, r * cols);
                }
                writeRows(ch, buf, n, cols, type, pool);
            }
        });
    }

    /** GGUF wants quantized rows stated at their padded width; plain types keep theirs. */
    private static long[] ggufShape(DType type, int rows, int cols) {
        if (!type.isQuantized()) {
            return new long[] {rows, cols};
        }
        int b = type.blockSize();
        return new long[] {rows, (long) (cols + b - 1) / b * b};
    }

    private static float[] transpose(float[] src, int rows, int cols) {
        float[] dst = new float[src.length];
        final int tile = 64; // tiles keep both sides in cache
        for (int r0 = 0; r0 < rows; r0 += tile) {
            for (int c0 = 0; c0 < cols; c0 += tile) {
                int r1 = Math.min(rows, r0 + tile);
                int c1 = Math.min(cols, c0 + tile);
                for (int r = r0; r < r1; r++) {
                    for (int c = c0; c < c1; c++) {
                        dst[c * rows + r] = src[r * cols + c];
                    }
                }
            }
        }
        return dst;
    }

    /** Encodes {@code rows} rows of {@code cols} floats in {@code type} and writes them. */
    private static void writeRows(java.nio.channels.WritableByteChannel ch, float[] v, int rows, int cols, DType type,
            Parallel pool) throws IOException {
        long rowBytes = type.byteSize(new long[] {1, cols});
        ByteBuffer b = ByteBuffer.allocateDirect(Math.toIntExact(rowBytes * rows)).order(ByteOrder.LITTLE_ENDIAN);
        MemorySegment seg = MemorySegment.ofBuffer(b);
        pool.forRange(rows, (from, to) -> {
            for (int r = from; r < to; r++) {
                long at = r * rowBytes;
                int off = r * cols;
                switch (type) {
                    case F32 -> {
                        for (int c = 0; c < cols; c++) {
                            seg.set(F32_LE, at + 4L * c, v[off + c]);
                        }
                    }
                    case F16 -> {
                        for (int c = 0; c < cols; c++) {
                            seg.set(I16_LE, at + 2L * c, Float.floatToFloat16(v[off + c]));
                        }
                    }
                    case BF16 -> {
                        for (int c = 0; c < cols; c++) {
                            seg.set(I16_LE, at + 2L * c, Quantizer.toBf16(v[off + c]));
                        }
                    }
                    case Q8_0, Q4_0 -> Quantizer.quantizeRow(type, v, off, cols, seg, at);
                    default -> throw new BtlmException("cannot write weights as " + type);
                }
            }
        });
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
}
