package org.btlm4j.generate;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;
import org.btlm4j.BtlmException;
import org.btlm4j.model.BtlmConfig;
import org.btlm4j.model.KvCache;

/**
 * A processed prompt saved to disk ({@code --prompt-cache FILE}), so that a later run with the
 * same leading tokens restores it instead of computing it.
 *
 * <p>Layout, little-endian: the magic {@code "BTLMPC\0\0"}, the format version (int32), a header
 * length (int32) and header — UTF-8 lines {@code key=value}: {@code config} (SHA-256 of the model
 * config), {@code weights} (the weights file's identity), {@code kv_type}, {@code layers},
 * {@code heads}, {@code head_dim}, {@code context}, {@code length} — then {@code length} token ids
 * (int32), their ALiBi scalings (float32), and the KV cache's positions as
 * {@link KvCache#writePositions} writes them. Everything is checked on load; the KV type is
 * stored by name, so a type this version does not know is refused by name.
 */
public final class PromptCacheFile {
    static final byte[] MAGIC = "BTLMPC\0\0".getBytes(StandardCharsets.US_ASCII);
    public static final int VERSION = 1;

    /** What a saved state must match: the model config's hash and the weights' identity. */
    public record ModelIdentity(String configHash, String weights) {
    }

    private PromptCacheFile() {
    }

    public static void write(Path file, PromptState state, ModelIdentity identity) {
        KvCache cache = state.cache();
        int n = cache.length();
        String header = "config=" + identity.configHash() + "\nweights=" + identity.weights() + "\nkv_type="
                + cache.type().name() + "\nlayers=" + cache.layers() + "\nheads=" + cache.heads() + "\nhead_dim="
                + cache.headDim() + "\ncontext=" + cache.maxPositions() + "\nlength=" + n + "\n";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer b = ByteBuffer.allocate(MAGIC.length + 8 + h.length + 8 * n).order(ByteOrder.LITTLE_ENDIAN);
            b.put(MAGIC).putInt(VERSION).putInt(h.length).put(h);
            for (int t : state.tokens()) {
                b.putInt(t);
            }
            for (float c : state.scales()) {
                b.putFloat(c);
            }
            b.flip();
            while (b.hasRemaining()) {
                ch.write(b);
            }
            cache.writePositions(ch);
        } catch (IOException e) {
            throw new BtlmException(file + ": cannot write the prompt cache (" + e.getMessage() + ")");
        }
        try {
            java.nio.file.Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new BtlmException(file + ": cannot write the prompt cache (" + e.getMessage() + ")");
        }
    }

    /**
     * Reads a saved state for a model of {@code identity} and {@code config} whose calls use
     * {@code context} positions and KV type {@code kvType}; a clear {@link BtlmException} for a
     * file of another model, type, version, or one cut short.
     */
    public static PromptState read(Path file, ModelIdentity identity, BtlmConfig config, int context,
            KvCache.Type kvType) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer start = read(ch, MAGIC.length + 8, file);
            byte[] magic = new byte[MAGIC.length];
            start.get(magic);
            if (!java.util.Arrays.equals(magic, MAGIC)) {
                throw new BtlmException(file + ": not a btlm4j prompt cache file");
            }
            int version = start.getInt();
            if (version != VERSION) {
                throw new BtlmException(file + ": prompt cache format version " + version + "; this btlm4j reads "
                        + "version " + VERSION + " (delete the file to make a new one)");
            }
            int headerLength = start.getInt();
            if (headerLength < 0 || headerLength > 1 << 20) {
                throw new BtlmException(file + ": damaged prompt cache header");
            }
            java.util.Map<String, String> h = new java.util.HashMap<>();
            for (String line : StandardCharsets.UTF_8.decode(read(ch, headerLength, file)).toString().split("\n")) {
                int eq = line.indexOf('=');
                if (eq > 0) {
                    h.put(line.substring(0, eq), line.substring(eq + 1));
                }
            }
            String remedy = " (delete it, or give another file, to make a new one)";
            if (!identity.configHash().equals(h.get("config"))) {
                throw new BtlmException(file + ": the prompt cache was made with another model config" + remedy);
            }
            if (!identity.weights().equals(h.get("weights"))) {
                throw new BtlmException(file + ": the prompt cache was made with other weights (" + h.get("weights")
                        + ", this model: " + identity.weights() + ")" + remedy);
            }
            KvCache.Type type;
            try {
                type = KvCache.Type.valueOf(String.valueOf(h.get("kv_type")).toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new BtlmException(file + ": KV cache type " + h.get("kv_type") + " is not known to this btlm4j "
                        + "(known: " + java.util.Arrays.toString(KvCache.Type.values()) + ")");
            }
            if (type != kvType) {
                throw new BtlmException(file + ": the prompt cache holds a " + type + " KV cache; this run uses "
                        + kvType + " (--kv-type " + type.name().toLowerCase(Locale.ROOT) + ", or another file)");
            }
            int layers = number(h, "layers", file);
            int heads = number(h, "heads", file);
            int headDim = number(h, "head_dim", file);
            int length = number(h, "length", file);
            if (layers != config.nLayer() || heads != config.nHead() || headDim != config.headDim()) {
                throw new BtlmException(file + ": the prompt cache has " + layers + " layers of " + heads + "×"
                        + headDim + "; this model " + config.nLayer() + " of " + config.nHead() + "×" + config.headDim());
            }
            if (length < 1 || length > context) {
                throw new BtlmException(file + ": the prompt cache holds " + length + " positions; this run's context "
                        + "is " + context + " (--ctx " + length + " or more)");
            }
            KvCache cache = new KvCache(config, context, type);
            long expected = MAGIC.length + 8L + headerLength + 8L * length + 2L * layers * heads * headDim
                    * KvCache.rowBytesOf(type, length);
            if (ch.size() != expected) {
                throw new BtlmException(file + ": the prompt cache is " + ch.size() + " bytes, its header says "
                        + expected + (ch.size() < expected ? " (truncated)" : " (trailing data)"));
            }
            ByteBuffer body = read(ch, 8 * length, file);
            int[] tokens = new int[length];
            float[] scales = new float[length];
            for (int i = 0; i < length; i++) {
                tokens[i] = body.getInt();
                if (tokens[i] < 0 || tokens[i] >= config.vocabSize()) {
                    throw new BtlmException(file + ": token id " + tokens[i] + " is outside the vocabulary");
                }
            }
            for (int i = 0; i < length; i++) {
                scales[i] = body.getFloat();
            }
            cache.readPositions(ch, length);
            return PromptState.restored(cache, tokens, scales);
        } catch (NoSuchFileException e) {
            throw new BtlmException(file + ": file not found");
        } catch (EOFException e) {
            throw new BtlmException(file + ": the prompt cache is truncated");
        } catch (IOException e) {
            throw new BtlmException(file + ": cannot read the prompt cache (" + e.getMessage() + ")");
        }
    }

    private static int number(java.util.Map<String, String> h, String key, Path file) {
        try {
            return Integer.parseInt(h.get(key));
        } catch (NumberFormatException e) {
            throw new BtlmException(file + ": the prompt cache header lacks a valid " + key);
        }
    }

    private static ByteBuffer read(FileChannel ch, int n, Path file) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                throw new EOFException();
            }
        }
        return b.flip();
    }
}
