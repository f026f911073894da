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

    /** How tensors and metadata are named and arranged. */
    public enum Layout {
        /** btlm4j's own: the checkpoint's names, its config.json, slopes and muP scales kept as they are. */
        BTLM,
        /** llama.cpp's JAIS architecture ({@link JaisLayout}): llama.cpp can run the file. */
        JAIS
    }

    /** Told the bytes written so far and the size the file will have. */
    @FunctionalInterface
    public interface Progress {
        void written(long bytes, long total);
    }

    /**
     * Converts the model at {@code model} (directory or weights file) to {@code out} in btlm4j's layout.
     *
     * @param type          type of the linear weights
     * @param embeddingType type of the token embedding (also the tied head)
     * @param progress      receives bytes written so far (may be null)
     */
    public static void export(Path model, DType type, DType embeddingType, Path out, Parallel pool,
            LongConsumer progress) {
        export(model, type, embeddingType, Layout.BTLM, out, pool,
                progress == null ? null : (bytes, total) -> progress.accept(bytes));
    }

    /** Converts the model at {@code model} to {@code out} in {@code layout}. */
    public static void export(Path model, DType type, DType embeddingType, Layout layout, Path out, Parallel pool,
            Progress progress) {
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
            BtlmWeights bound = BtlmWeights.bind(config, source); // every tensor present and of the right shape
            boolean jais = layout == Layout.JAIS;
            GgufWriter w = new GgufWriter();
            if (jais) {
                double bias = JaisLayout.maxAlibiBias(config, bound.slopes());
                w.put("general.architecture", JaisLayout.ARCH);
                w.put("general.name", files.directory().toAbsolutePath().getFileName().toString());
                w.putU32("jais.context_length", config.nPositions());
                w.putU32("jais.embedding_length", config.nEmbd());
                w.putU32("jais.block_count", config.nLayer());
                w.putU32("jais.feed_forward_length", config.nInner());
                w.putU32("jais.attention.head_count", config.nHead());
                w.putF32("jais.attention.layer_norm_epsilon", config.layerNormEpsilon());
                w.putF32("jais.attention.max_alibi_bias", (float) bias);
            } else {
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
            }
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
                if (jais && name.equals("transformer.relative_pe.slopes")) {
                    continue; // jais.attention.max_alibi_bias gives them
                }
                String outName = jais ? JaisLayout.ggufName(name) : name;
                if (outName == null) {
                    throw new BtlmException("the JAIS layout has no name for tensor " + name);
                }
                if (t.rank() == 1 || name.equals("transformer.relative_pe.slopes")) {
                    addFloats(w, t, outName);
                } else if (isLinear(name)) {
                    // llama.cpp needs whole blocks in a row: a row of another length (the 6,826-wide
                    // down projection) is stored in F16 there, as its own quantizer does
                    DType linearType = jais && type.isQuantized() && t.dim(0) % type.blockSize() != 0 ? DType.F16 : type;
                    addLinear(w, t, outName, linearType, pool);
                } else if (jais && name.equals("transformer.wte.weight")) {
                    addRows(w, t, "token_embd.weight", embeddingType, config.embeddingsScale(), pool);
                    if (config.tieWordEmbeddings()) {
                        addRows(w, t, "output.weight", embeddingType, config.outputScale(), pool);
                    }
                } else if (jais && name.equals("lm_head.weight")) {
                    addRows(w, t, "output.weight", embeddingType, config.outputScale(), pool);
                } else {
                    addRows(w, t, outName, embeddingType, 1f, pool); // wte, wpe, an untied lm_head: [rows, n_embd]
                }
            }
            long total = w.fileBytes();
            w.write(out, progress == null ? null : bytes -> progress.written(bytes, total));
        }
    }

    private static boolean isLinear(String name) {
        return name.endsWith(".attn.c_attn.weight") || name.endsWith(".attn.c_proj.weight")
                || name.endsWith(".mlp.c_fc.weight") || name.endsWith(".mlp.c_fc2.weight")
                || name.endsWith(".mlp.c_proj.weight");
    }

    /** A small tensor as F32 with its own shape. */
    private static void addFloats(GgufWriter w, TensorInfo t, String name) {
        float[] v = BtlmWeights.toFloats(t);
        w.addTensor(name, DType.F32, t.shape(), ch -> {
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
    private static void addLinear(GgufWriter w, TensorInfo t, String name, DType type, Parallel pool) {
        int in = (int) t.dim(0);
        int out = (int) t.dim(1);
        w.addTensor(name, type, ggufShape(type, out, in), ch -> {
            float[] src = new float[in * out];
            WeightMatrix m = WeightMatrix.of(t);
            for (int r = 0; r < in; r++) {
                m.row(r, src, r * out);
            }
            float[] rows = transpose(src, in, out);
            writeRows(ch, rows, out, in, type, pool);
        });
    }

    /** A [rows, cols] table (embedding) kept row by row in {@code type}, every value times {@code scale}. */
    private static void addRows(GgufWriter w, TensorInfo t, String name, DType type, float scale, Parallel pool) {
        int rows = (int) t.dim(0);
        int cols = (int) t.dim(1);
        w.addTensor(name, type, ggufShape(type, rows, cols), ch -> {
            WeightMatrix m = WeightMatrix.of(t);
            // In slices of rows so a 50257-row embedding never needs more than a few MB of floats.
            int slice = Math.max(1, (16 << 20) / (cols * 4));
            float[] buf = new float[slice * cols];
            for (int r0 = 0; r0 < rows; r0 += slice) {
                int n = Math.min(slice, rows - r0);
                for (int r = 0; r < n; r++) {
                    m.row(r0 + r, buf, r * cols);
                }
                if (scale != 1f) {
                    for (int i = 0; i < n * cols; i++) {
                        buf[i] *= scale; // the muP scale folded in, in float32 as the forward pass multiplies
                    }
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
