package org.btlm4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import org.btlm4j.model.BtlmConfig;
import org.btlm4j.model.KvCache;

/**
 * The memory a run will need, estimated before the weights are read: what the process's resident
 * set grows to when every weight has been used once and the KV cache holds the whole context.
 *
 * @param weights     bytes of the weights: mapped from the file (resident once read, and
 *                    reclaimable page cache) or copied into anonymous memory
 * @param mapped      whether the weights are used in place in the mapped file
 * @param kvCache     the KV cache at the full context, in its type (quantized types with their
 *                    float tails), as {@link KvCache} allocates it
 * @param activations the buffers of one forward call over a prompt chunk of
 *                    {@link #PREFILL_CHUNK} tokens, the attention scores of each thread and a
 *                    block of scoring logits, all float32
 * @param runtime     the rest of the heap ({@link #HEAP_MARGIN}: tokenizer, model objects, garbage
 *                    between collections — the launcher caps the heap at {@link #heapBytes}) and
 *                    the JVM outside its heap ({@link #NON_HEAP})
 * @param contextLength the context the KV cache is sized for
 * @param kvType      the KV cache's type
 * @param fourBit     whether most of the weight bytes are 4-bit already (then quantizing is no
 *                    remedy to suggest)
 */
public record MemoryEstimate(long weights, boolean mapped, long kvCache, long activations, long runtime,
        int contextLength, KvCache.Type kvType, boolean fourBit) {
    /** Tokens a prompt is fed in per forward call (the generator's chunk). */
    public static final int PREFILL_CHUNK = 512;
    /**
     * The JVM's memory outside the heap (code, classes, GC structures, thread stacks): about 65 MB
     * committed when generating with the demo model (native memory tracking), with room to spare.
     */
    public static final long NON_HEAP = 128L << 20;

    /** Heap room beyond the KV cache and the activations: tokenizer, model objects, garbage between collections. */
    public static final long HEAP_MARGIN = 256L << 20;

    public long total() {
        return weights + kvCache + activations + runtime;
    }

    /**
     * A Java heap for this run (the KV cache and the activations live on the heap, mapped weights
     * outside it): the launcher caps the heap with it, so that the collector reclaims garbage
     * instead of growing the heap.
     */
    public long heapBytes() {
        return kvCache + activations + HEAP_MARGIN;
    }

    /**
     * Estimates a run of {@code config} (already adjusted by the load options) with these weights,
     * {@code fourBitBytes} of them in 4-bit tensors.
     */
    public static MemoryEstimate of(BtlmConfig config, long weightBytes, long fourBitBytes, boolean mapped,
            KvCache.Type kvType, int contextLength, int threads) {
        long e = config.nEmbd();
        long nt = Math.min(PREFILL_CHUNK, contextLength);
        long inner = (long) config.nInner() * (config.activation() == BtlmConfig.Activation.SWIGLU ? 2 : 1);
        long floats = nt * (7 * e + inner) // x, a, attention output, projection; q|k|v; MLP up (and gate)
                + (long) threads * contextLength // attention scores
                + 32L * config.vocabSize(); // logits of a block of scored rows
        long activations = 4 * floats;
        return new MemoryEstimate(weightBytes, mapped, KvCache.bytesFor(config, kvType, contextLength), activations,
                HEAP_MARGIN + NON_HEAP, contextLength, kvType, fourBitBytes * 2 > weightBytes);
    }

    /**
     * Refuses a run whose estimate exceeds {@code limit} bytes (0: no limit), saying what to change.
     */
    public void check(long limit, String limitSource) {
        if (limit <= 0 || total() <= limit) {
            return;
        }
        StringBuilder hint = new StringBuilder();
        if (kvType != KvCache.Type.Q4_0) {
            hint.append("a smaller KV cache (--kv-type ").append(kvType == KvCache.Type.Q8_0 ? "q4_0" : "q8_0 or q4_0")
                    .append("), ");
        }
        hint.append("a shorter context (-c), ");
        if (!fourBit) {
            hint.append("smaller weights (btlm quantize --type q4_0), ");
        }
        hint.append("or a higher --memory-limit");
        throw new BtlmException("this run needs about " + human(total()) + " (weights " + human(weights) + ", "
                + kvType.optionName() + " KV cache for " + contextLength + " tokens " + human(kvCache)
                + ", activations and runtime " + human(activations + runtime) + "), more than the "
                + human(limit) + " " + limitSource + "; choose " + hint);
    }

    /** Bytes as a person reads them: 1.4 GiB. */
    public static String human(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }

    /**
     * Parses a size as {@code -Xmx} writes it: a number of bytes with an optional K, M, G or T
     * (powers of 1024), e.g. {@code 3G}, {@code 2500M}; {@code 0} or {@code none}: no limit (0).
     */
    public static long parseSize(String text) {
        String s = text.trim().toUpperCase(Locale.ROOT);
        if (s.equals("NONE")) {
            return 0;
        }
        if (s.endsWith("B")) {
            s = s.substring(0, s.length() - 1);
        }
        int shift = 0;
        if (!s.isEmpty()) {
            switch (s.charAt(s.length() - 1)) {
                case 'K' -> shift = 10;
                case 'M' -> shift = 20;
                case 'G' -> shift = 30;
                case 'T' -> shift = 40;
                default -> shift = -1;
            }
        }
        String number = shift >= 0 ? s.substring(0, s.length() - 1) : s;
        try {
            double v = Double.parseDouble(number);
            if (v < 0 || Double.isNaN(v) || Double.isInfinite(v) || number.isBlank()) {
                throw new NumberFormatException();
            }
            return (long) (v * (1L << Math.max(0, shift)));
        } catch (NumberFormatException e) {
            throw new BtlmException("'" + text + "' is not a memory size (examples: 3G, 2500M, none)");
        }
    }

    /**
     * The memory this process may use, for the default limit: the cgroup's limit ({@code
     * memory.max}, v2, or {@code memory.limit_in_bytes}, v1) if there is one, else the memory
     * the kernel reports available ({@code MemAvailable}); 0 when neither can be read.
     */
    public static long availableMemory() {
        long cgroup = firstNumber(Path.of("/sys/fs/cgroup/memory.max"), "");
        if (cgroup <= 0) {
            cgroup = firstNumber(Path.of("/sys/fs/cgroup/memory/memory.limit_in_bytes"), "");
        }
        if (cgroup > 0 && cgroup < (1L << 60)) {
            return cgroup;
        }
        long kb = firstNumber(Path.of("/proc/meminfo"), "MemAvailable:");
        return kb > 0 ? kb * 1024 : 0;
    }

    private static long firstNumber(Path file, String prefix) {
        try {
            List<String> lines = Files.readAllLines(file);
            for (String line : lines) {
                if (line.startsWith(prefix)) {
                    String digits = line.substring(prefix.length()).trim().split("\\s+")[0];
                    return Long.parseLong(digits);
                }
            }
        } catch (IOException | NumberFormatException | SecurityException e) {
            return 0;
        }
        return 0;
    }
}
