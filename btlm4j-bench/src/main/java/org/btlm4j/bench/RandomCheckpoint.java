package org.btlm4j.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.LongConsumer;
import java.util.stream.Stream;
import org.btlm4j.BtlmException;
import org.btlm4j.model.Alibi;
import org.btlm4j.model.BtlmConfig;
import org.btlm4j.tensor.Parallel;
import org.btlm4j.tensor.Quantizer;

/**
 * Writes a BTLM checkpoint with a config's exact tensor names and shapes, BF16 random values of a
 * realistic scale (GPT-2 initialisation: N(0, 0.02) matrices, layer norms near 1, small biases),
 * deterministic for a seed. Streamed to disk in chunks, never built in memory; written into a
 * temporary directory that is renamed only when complete, so a half-written model is never used.
 */
public final class RandomCheckpoint {
    /** Elements generated per task: large enough to amortise, small enough to bound memory. */
    private static final int CHUNK = 4 << 20;

    private RandomCheckpoint() {
    }

    /** One tensor of the layout: name, shape and the distribution of its values. */
    record Spec(String name, long[] shape, double mean, double std) {
        long elements() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    /** The tensors of a BTLM with {@code config}, in the order HF writes them. */
    static List<Spec> layout(BtlmConfig c) {
        long e = c.nEmbd();
        long inner = c.nInner();
        List<Spec> specs = new ArrayList<>();
        specs.add(new Spec("transformer.wte.weight", new long[] {c.vocabSize(), e}, 0, 0.02));
        if (c.usesAlibi()) {
            specs.add(new Spec("transformer.relative_pe.slopes", new long[] {c.nHead(), 1}, Double.NaN, 0));
        } else {
            specs.add(new Spec("transformer.wpe.weight", new long[] {c.nPositions(), e}, 0, 0.01));
        }
        for (int l = 0; l < c.nLayer(); l++) {
            String p = "transformer.h." + l + ".";
            specs.add(new Spec(p + "ln_1.weight", new long[] {e}, 1, 0.05));
            specs.add(new Spec(p + "ln_1.bias", new long[] {e}, 0, 0.01));
            specs.add(new Spec(p + "attn.c_attn.weight", new long[] {e, 3 * e}, 0, 0.02));
            specs.add(new Spec(p + "attn.c_attn.bias", new long[] {3 * e}, 0, 0.01));
            specs.add(new Spec(p + "attn.c_proj.weight", new long[] {e, e}, 0, 0.02 / Math.sqrt(2.0 * c.nLayer())));
            specs.add(new Spec(p + "attn.c_proj.bias", new long[] {e}, 0, 0.01));
            specs.add(new Spec(p + "ln_2.weight", new long[] {e}, 1, 0.05));
            specs.add(new Spec(p + "ln_2.bias", new long[] {e}, 0, 0.01));
            specs.add(new Spec(p + "mlp.c_fc.weight", new long[] {e, inner}, 0, 0.02));
            specs.add(new Spec(p + "mlp.c_fc.bias", new long[] {inner}, 0, 0.01));
            if (c.activation() == BtlmConfig.Activation.SWIGLU) {
                specs.add(new Spec(p + "mlp.c_fc2.weight", new long[] {e, inner}, 0, 0.02));
                specs.add(new Spec(p + "mlp.c_fc2.bias", new long[] {inner}, 0, 0.01));
            }
            specs.add(new Spec(p + "mlp.c_proj.weight", new long[] {inner, e}, 0, 0.02 / Math.sqrt(2.0 * c.nLayer())));
            specs.add(new Spec(p + "mlp.c_proj.bias", new long[] {e}, 0, 0.01));
        }
        specs.add(new Spec("transformer.ln_f.weight", new long[] {e}, 1, 0.05));
        specs.add(new Spec("transformer.ln_f.bias", new long[] {e}, 0, 0.01));
        return specs;
    }

    /**
     * Makes sure {@code dir} holds the random checkpoint, writing it if absent; returns {@code dir}.
     *
     * @param tokenizerFrom a directory whose {@code vocab.json} and {@code merges.txt} are copied
     *                      along (may be null: then the model works on token ids only)
     * @param progress      receives bytes written so far (may be null)
     */
    public static Path ensure(BtlmConfig config, long seed, Path dir, Path tokenizerFrom, Parallel pool,
            LongConsumer progress) {
        if (Files.isRegularFile(dir.resolve("model.safetensors")) && Files.isRegularFile(dir.resolve("config.json"))) {
            return dir;
        }
        try {
            Files.createDirectories(dir.toAbsolutePath().getParent());
            Path tmp = Files.createTempDirectory(dir.toAbsolutePath().getParent(), dir.getFileName() + ".partial-");
            try {
                writeConfig(config, tmp.resolve("config.json"));
                writeWeights(config, seed, tmp.resolve("model.safetensors"), pool, progress);
                if (tokenizerFrom != null) {
                    for (String f : List.of("vocab.json", "merges.txt")) {
                        if (Files.isRegularFile(tokenizerFrom.resolve(f))) {
                            Files.copy(tokenizerFrom.resolve(f), tmp.resolve(f));
                        }
                    }
                }
                try {
                    Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(tmp, dir);
                }
            } finally {
                deleteTree(tmp);
            }
            return dir;
        } catch (IOException e) {
            throw new BtlmException("cannot write the random checkpoint in " + dir + ": " + e.getMessage(), e);
        }
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(q);
            }
        }
    }

    static void writeConfig(BtlmConfig c, Path file) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode o = json.createObjectNode();
        o.put("activation_function", c.activation().configName());
        o.putNull("alibi_scaling");
        o.putArray("architectures").add("BTLMLMHeadModel");
        o.put("bos_token_id", c.bosTokenId());
        o.put("eos_token_id", c.eosTokenId());
        o.put("layer_norm_epsilon", c.layerNormEpsilon());
        o.put("model_type", "btlm");
        boolean official = c.equals(BtlmConfig.btlm3b8k());
        o.put("mup_embeddings_scale", official ? 14.6 : c.embeddingsScale());
        o.put("mup_output_alpha", official ? 2.2200000000000003 : c.outputScale());
        o.put("mup_width_scale", official ? 0.1 : 1.0);
        o.put("mup_scale_qk_dot_by_d", c.scaleQkDotByD());
        o.put("n_embd", c.nEmbd());
        o.put("n_head", c.nHead());
        o.put("n_inner", c.nInner());
        o.put("n_layer", c.nLayer());
        o.put("n_positions", c.nPositions());
        o.put("position_embedding_type", c.positionEmbedding().configName());
        o.put("scale_attn_by_inverse_layer_idx", c.scaleAttnByInverseLayerIdx());
        o.put("scale_attn_weights", c.scaleAttnWeights());
        o.put("tie_word_embeddings", c.tieWordEmbeddings());
        o.put("torch_dtype", "bfloat16");
        o.put("vocab_size", c.vocabSize());
        o.put("btlm4j_random_weights", true);
        Files.writeString(file, json.writerWithDefaultPrettyPrinter().writeValueAsString(o));
    }

    static void writeWeights(BtlmConfig config, long seed, Path file, Parallel pool, LongConsumer progress)
            throws IOException {
        List<Spec> specs = layout(config);
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        header.putObject("__metadata__").put("format", "pt").put("btlm4j", "random weights, seed " + seed);
        long offset = 0;
        for (Spec s : specs) {
            ObjectNode t = header.putObject(s.name());
            t.put("dtype", "BF16");
            var shape = t.putArray("shape");
            for (long d : s.shape()) {
                shape.add(d);
            }
            long bytes = s.elements() * 2;
            t.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] h = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (h.length + 7) / 8 * 8; // keeps every tensor 8-byte aligned in the file
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(padded).put(h);
            while (head.hasRemaining()) {
                head.put((byte) ' ');
            }
            head.flip();
            writeFully(ch, head);
            long written = head.capacity();
            int threads = pool.threads();
            ByteBuffer[] buffers = new ByteBuffer[threads];
            for (int i = 0; i < threads; i++) {
                buffers[i] = ByteBuffer.allocateDirect(CHUNK * 2).order(ByteOrder.LITTLE_ENDIAN);
            }
            for (int si = 0; si < specs.size(); si++) {
                Spec s = specs.get(si);
                long n = s.elements();
                if (Double.isNaN(s.mean())) { // the ALiBi slopes: the formula's values, as HF stores them
                    float[] slopes = Alibi.slopes(config.nHead());
                    ByteBuffer b = ByteBuffer.allocate(slopes.length * 2).order(ByteOrder.LITTLE_ENDIAN);
                    for (float v : slopes) {
                        b.putShort(Quantizer.toBf16(v));
                    }
                    b.flip();
                    writeFully(ch, b);
                    written += b.capacity();
                    continue;
                }
                long chunks = (n + CHUNK - 1) / CHUNK;
                final int tensorIndex = si;
                for (long first = 0; first < chunks; first += threads) {
                    final long base = first;
                    int batch = (int) Math.min(threads, chunks - first);
                    pool.forRange(batch, (from, to) -> {
                        for (int k = from; k < to; k++) {
                            long chunk = base + k;
                            int count = (int) Math.min(CHUNK, n - chunk * CHUNK);
                            fill(buffers[k], count, s.mean(), s.std(), seed, tensorIndex, chunk);
                        }
                    });
                    for (int k = 0; k < batch; k++) {
                        writeFully(ch, buffers[k]);
                        written += buffers[k].limit();
                    }
                    if (progress != null) {
                        progress.accept(written);
                    }
                }
            }
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    /**
     * Fills {@code buf} with {@code count} BF16 values of mean {@code mean} and deviation {@code std}:
     * the sum of four 16-bit uniforms (Irwin–Hall, close to a normal) from a SplitMix64 stream seeded
     * by (seed, tensor, chunk), so the result does not depend on the thread count.
     */
    static void fill(ByteBuffer buf, int count, double mean, double std, long seed, int tensor, long chunk) {
        buf.clear();
        long state = mix(seed * 0x9E3779B97F4A7C15L + tensor * 0xBF58476D1CE4E5B9L + chunk * 0x94D049BB133111EBL + 1);
        // Sum of four U(0, 65536) has mean 131070 and variance 4·65536²/12.
        final double sigma = 65536.0 * Math.sqrt(4.0 / 12.0);
        final float a = (float) (std / sigma);
        final float b = (float) (mean - 131070.0 * std / sigma);
        for (int i = 0; i < count; i++) {
            state += 0x9E3779B97F4A7C15L;
            long r = mix(state);
            int sum = (int) (r & 0xffff) + (int) ((r >>> 16) & 0xffff) + (int) ((r >>> 32) & 0xffff) + (int) (r >>> 48);
            buf.putShort(Quantizer.toBf16(sum * a + b));
        }
        buf.flip();
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
