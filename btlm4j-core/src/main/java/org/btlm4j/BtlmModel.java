package org.btlm4j;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Supplier;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.btlm4j.checkpoint.DType;
import org.btlm4j.checkpoint.GgufFile;
import org.btlm4j.checkpoint.InMemoryCopy;
import org.btlm4j.checkpoint.ModelDirectory;
import org.btlm4j.checkpoint.NonFinite;
import org.btlm4j.checkpoint.TensorInfo;
import org.btlm4j.checkpoint.TensorSource;
import org.btlm4j.convert.GgufExport;
import org.btlm4j.convert.JaisLayout;
import org.btlm4j.generate.Generator;
import org.btlm4j.generate.KlDivergence;
import org.btlm4j.generate.Perplexity;
import org.btlm4j.generate.PromptCacheFile;
import org.btlm4j.generate.PromptState;
import org.btlm4j.generate.TokenListener;
import org.btlm4j.hub.HubCache;
import org.btlm4j.model.Btlm;
import org.btlm4j.model.BtlmConfig;
import org.btlm4j.model.BtlmWeights;
import org.btlm4j.model.KvCache;
import org.btlm4j.tensor.Parallel;
import org.btlm4j.tokenizer.Gpt2Tokenizer;

/**
 * A loaded BTLM: the public face of the engine.
 *
 * <pre>{@code
 * try (BtlmModel model = BtlmModel.load("models/btlm-demo")) {
 *     GenerationResult r = model.generate("And God said", GenerationParams.defaults().withMaxNewTokens(20));
 *     System.out.println(r.text());
 * }
 * }</pre>
 *
 * <p>A model is found by {@link #load(String)} as a directory, a weights or GGUF file, or a Hugging
 * Face Hub id {@code org/name[@revision]} already in the local Hub cache ({@code btlm pull}). The
 * weights are memory-mapped and used in place.
 *
 * <p><b>Threads.</b> A model is safe to share: every call ({@code generate}, {@code stream},
 * {@code score}, ...) has its own KV cache and sampler, so several threads may generate at once and
 * each gets what it would get alone. They share the model's one thread pool, which runs the matrix
 * work of one call at a time; concurrent calls therefore interleave step by step rather than run
 * truly in parallel. {@link #close()} waits for the calls in progress, then unmaps the files;
 * later calls fail with a {@link BtlmException}.
 */
public final class BtlmModel implements AutoCloseable {

    /**
     * How to load.
     *
     * @param threads       worker threads for the matrix work (0: one per available core)
     * @param contextLength most positions a call may use (0: the config's n_positions)
     * @param mmap          use the weights in place in the memory-mapped files (true), or copy them
     *                      into anonymous memory backed by huge pages (false, {@code --no-mmap})
     * @param kvType        how the KV cache stores keys and values (F32 exact; F16 half the memory;
     *                      Q8_0/Q4_0 GGUF blocks of 32 positions, 27 % / 14 % of F32's memory)
     * @param alibiScaling  null to keep the config's {@code alibi_scaling}; else {@code dynamic}
     *                      (train_seq_len = n_positions), {@code dynamic:N}, {@code factor:F} or
     *                      {@code none}: how to extrapolate beyond n_positions
     */
    public record Options(int threads, int contextLength, boolean mmap, KvCache.Type kvType,
            String alibiScaling) {
        /** Checks the values. */
        public Options {
            if (threads < 0) {
                throw new BtlmException("threads must be 0 (all cores) or more, got " + threads);
            }
            if (contextLength < 0) {
                throw new BtlmException("context length must be 0 (the model's) or more, got " + contextLength);
            }
            if (kvType == null) {
                throw new BtlmException("a KV cache type is required (F32, F16, Q8_0 or Q4_0)");
            }
        }

        /** Memory-mapped weights, an F32 KV cache and the config's ALiBi scaling. */
        public Options(int threads, int contextLength) {
            this(threads, contextLength, true, KvCache.Type.F32, null);
        }

        /** An F32 KV cache and the config's ALiBi scaling. */
        public Options(int threads, int contextLength, boolean mmap) {
            this(threads, contextLength, mmap, KvCache.Type.F32, null);
        }

        /** The config's ALiBi scaling. */
        public Options(int threads, int contextLength, boolean mmap, KvCache.Type kvType) {
            this(threads, contextLength, mmap, kvType, null);
        }

        /** All cores, the model's context, memory-mapped weights, an F32 KV cache. */
        public static Options defaults() {
            return new Options(0, 0, true, KvCache.Type.F32, null);
        }

        /** The config with this option's ALiBi scaling applied. */
        BtlmConfig apply(BtlmConfig config) {
            if (alibiScaling == null) {
                return config;
            }
            String s = alibiScaling.trim().toLowerCase(java.util.Locale.ROOT);
            String hint = " (expected dynamic, dynamic:N, factor:F or none)";
            try {
                BtlmConfig.AlibiScaling scaling;
                if (s.equals("none")) {
                    scaling = null;
                } else if (s.equals("dynamic")) {
                    scaling = new BtlmConfig.AlibiScaling(0, config.nPositions());
                } else if (s.startsWith("dynamic:")) {
                    int n = Integer.parseInt(s.substring(8));
                    if (n <= 1) {
                        throw new BtlmException("alibi scaling " + alibiScaling + ": the training length must be > 1");
                    }
                    scaling = new BtlmConfig.AlibiScaling(0, n);
                } else if (s.startsWith("factor:")) {
                    double f = Double.parseDouble(s.substring(7));
                    if (!(f > 1) || !Double.isFinite(f)) {
                        throw new BtlmException("alibi scaling " + alibiScaling + ": the factor must be a number > 1");
                    }
                    scaling = new BtlmConfig.AlibiScaling(f, 0);
                } else {
                    throw new BtlmException("alibi scaling \"" + alibiScaling + "\" is not understood" + hint);
                }
                if (!config.usesAlibi() && scaling != null) {
                    throw new BtlmException("alibi scaling needs ALiBi positions; this model has learned positions");
                }
                return config.withAlibiScaling(scaling);
            } catch (NumberFormatException e) {
                throw new BtlmException("alibi scaling \"" + alibiScaling + "\": not a number" + hint);
            }
        }
    }

    private final ModelDirectory files;
    private final BtlmConfig config;
    private final TensorSource source;
    private final Parallel pool;
    private final Btlm model;
    private final Gpt2Tokenizer tokenizer;
    private final Generator generator;
    private final String description;
    /** Calls hold it shared; {@link #close()} holds it exclusively, so it waits for them. */
    private final ReadWriteLock inUse = new ReentrantReadWriteLock();
    private volatile boolean closed;
    private final List<String> warnings;

    private BtlmModel(ModelDirectory files, BtlmConfig config, TensorSource source, Parallel pool, Btlm model,
            Gpt2Tokenizer tokenizer, int contextLength, KvCache.Type kvType, List<String> warnings) {
        this.files = files;
        this.config = config;
        this.source = source;
        this.pool = pool;
        this.model = model;
        this.tokenizer = tokenizer;
        this.generator = new Generator(model, tokenizer, contextLength, kvType);
        this.description = source.describe();
        this.warnings = List.copyOf(warnings);
    }

    /**
     * Loads a model with default options: {@code path} is a model directory, a weights file in one,
     * a GGUF file, or (when no such path exists) a Hub id {@code org/name[@revision]} in the local
     * Hugging Face cache.
     *
     * @throws BtlmException naming what was looked for when the model is not found or not readable
     */
    public static BtlmModel load(Path path) {
        return load(path, Options.defaults());
    }

    /** Loads a model (see {@link #load(Path)}) with the given options. */
    public static BtlmModel load(Path path, Options options) {
        return load(path.toString(), options);
    }

    /**
     * Loads a model named by a path or by a Hub id {@code org/name[@revision]}, with default options.
     * A Hub id is looked up in {@code $HF_HUB_CACHE}, else {@code $HF_HOME/hub}, else
     * {@code ~/.cache/huggingface/hub}, so models downloaded by the Python tools are used as they are.
     *
     * @throws BtlmException naming what was looked for when the model is not found or not readable
     */
    public static BtlmModel load(String pathOrHubId) {
        return load(pathOrHubId, Options.defaults());
    }

    /** Loads a model named by a path or a Hub id (see {@link #load(String)}) with the given options. */
    public static BtlmModel load(String pathOrHubId, Options options) {
        return load(pathOrHubId, options, (done, total) -> { });
    }

    /**
     * Progress of the slow part of loading: copying the weights into memory when
     * {@link Options#mmap()} is off (memory-mapped weights need no copy and report nothing).
     */
    @FunctionalInterface
    public interface LoadProgress {
        /**
         * {@code bytesDone} of {@code bytesTotal} bytes are in place; called first with 0, last
         * with the total, possibly from several threads.
         */
        void progress(long bytesDone, long bytesTotal);
    }

    /** Loads a model named by a path or a Hub id with the given options, reporting to {@code progress}. */
    public static BtlmModel load(String pathOrHubId, Options options, LoadProgress progress) {
        return loadResolved(HubCache.fromEnvironment().resolve(pathOrHubId), options, progress);
    }

    private static BtlmModel loadResolved(Path path, Options options, LoadProgress progress) {
        ModelDirectory files = ModelDirectory.locate(path);
        if (files.format() == ModelDirectory.WeightsFormat.GGUF) {
            return loadGguf(files, options, progress);
        }
        BtlmConfig config = options.apply(BtlmConfig.read(files.config()));
        int context = contextFor(config, options);
        Gpt2Tokenizer tokenizer = Gpt2Tokenizer.fromDirectory(files.directory()).orElse(null);
        return assemble(files, config, tokenizer, files.openWeights(), false, options, context, progress);
    }

    private static int contextFor(BtlmConfig config, Options options) {
        int context = options.contextLength() == 0 ? config.nPositions() : options.contextLength();
        if (context > config.nPositions() && config.alibiScaling() == null) {
            throw new BtlmException("a context of " + context + " tokens exceeds n_positions " + config.nPositions()
                    + "; longer contexts need ALiBi scaling: --alibi-scaling dynamic (or factor:F), or alibi_scaling "
                    + "in config.json");
        }
        if (!config.usesAlibi() && context > config.nPositions()) {
            throw new BtlmException("learned position embeddings cover only n_positions " + config.nPositions()
                    + " positions; a context of " + context + " is not possible");
        }
        return context;
    }

    /** A btlm4j GGUF file: config, tokenizer and [out, in] weights all in the one file. */
    private static BtlmModel loadGguf(ModelDirectory files, Options options, LoadProgress progress) {
        GgufFile gguf = GgufFile.open(files.weights());
        try {
            String where = files.weights().getFileName().toString();
            boolean jais = JaisLayout.ARCH.equals(gguf.metadata().get("general.architecture"));
            BtlmConfig config = jais ? JaisLayout.config(gguf, where) : ggufConfig(gguf, where);
            Gpt2Tokenizer tokenizer = null;
            if (gguf.metadata().get("tokenizer.ggml.tokens") instanceof List<?> tokens
                    && gguf.metadata().get("tokenizer.ggml.merges") instanceof List<?> merges) {
                tokenizer = Gpt2Tokenizer.fromTokensAndMerges(strings(tokens, where), strings(merges, where), where);
            }
            config = options.apply(config);
            TensorSource source = jais ? JaisLayout.asBtlm(gguf, config) : gguf;
            return assemble(files, config, tokenizer, source, true, options, contextFor(config, options), progress);
        } catch (RuntimeException e) {
            gguf.close();
            throw e;
        }
    }

    /** The BTLM config in a btlm4j GGUF file's metadata, or a message saying why there is none. */
    private static BtlmConfig ggufConfig(GgufFile gguf, String where) {
        Object arch = gguf.metadata().get("general.architecture");
        Object configJson = gguf.metadata().get(GgufExport.CONFIG_KEY);
        if (!"btlm".equals(arch) || !(configJson instanceof String)) {
            throw new BtlmException(where + ": a GGUF file of architecture " + arch + " without btlm4j's "
                    + GgufExport.CONFIG_KEY + " metadata; only GGUF files written by "
                    + "'btlm quantize' and JAIS-architecture files (llama.cpp's converter, --layout jais) can be loaded");
        }
        if (!GgufExport.LAYOUT_OUT_IN.equals(
                gguf.metadata().get(GgufExport.LAYOUT_KEY))) {
            throw new BtlmException(where + ": unknown linear weight layout "
                    + gguf.metadata().get(GgufExport.LAYOUT_KEY));
        }
        final BtlmConfig config;
        try {
            config = BtlmConfig.parse((ObjectNode)
                    new ObjectMapper().readTree((String) configJson));
        } catch (JsonProcessingException | ClassCastException e) {
            throw new BtlmException(where + ": " + GgufExport.CONFIG_KEY + " is not a JSON object");
        } catch (BtlmException e) {
            throw new BtlmException(where + ": " + e.getMessage());
        }
        return config;
    }

    /**
     * The memory a run of the model at {@code path} with {@code options} will need, from its
     * config and the size of its weights, without reading them (the files are only mapped).
     */
    public static MemoryEstimate estimateMemory(Path path, Options options) {
        ModelDirectory files = ModelDirectory.locate(path);
        try (TensorSource source = files.openWeights()) {
            String where = files.weights().getFileName().toString();
            BtlmConfig config = files.format() != ModelDirectory.WeightsFormat.GGUF ? BtlmConfig.read(files.config())
                    : JaisLayout.ARCH.equals(((GgufFile) source).metadata().get("general.architecture"))
                    ? JaisLayout.config((GgufFile) source, where) : ggufConfig((GgufFile) source, where);
            config = options.apply(config);
            long bytes = 0;
            long fourBit = 0;
            for (var t : source.tensors().values()) {
                bytes += t.data().byteSize();
                fourBit += t.dtype() == DType.Q4_0 ? t.data().byteSize() : 0;
            }
            int threads = options.threads() == 0 ? Parallel.defaultThreads() : options.threads();
            return MemoryEstimate.of(config, bytes, fourBit, options.mmap(), options.kvType(), contextFor(config, options),
                    threads);
        }
    }

    private static List<String> strings(List<?> list, String where) {
        List<String> out = new ArrayList<>(list.size());
        for (Object o : list) {
            if (!(o instanceof String s)) {
                throw new BtlmException(where + ": tokenizer metadata holds a non-string entry");
            }
            out.add(s);
        }
        return out;
    }

    private static BtlmModel assemble(ModelDirectory files, BtlmConfig config, Gpt2Tokenizer tokenizer,
            TensorSource source, boolean linearOutIn, Options options, int context, LoadProgress progress) {
        if (!options.mmap()) {
            TensorSource mapped = source;
            try {
                source = InMemoryCopy.of(mapped, progress::progress);
            } finally {
                mapped.close();
            }
        }
        Parallel pool = null;
        try {
            BtlmWeights weights = BtlmWeights.bind(config, source, linearOutIn);
            pool = new Parallel(options.threads() == 0 ? Parallel.defaultThreads() : options.threads());
            return new BtlmModel(files, config, source, pool, new Btlm(config, weights, pool), tokenizer, context,
                    options.kvType(), nonFiniteWarnings(weights.tensors(), pool));
        } catch (RuntimeException e) {
            source.close();
            if (pool != null) {
                pool.close();
            }
            throw e;
        }
    }

    /**
     * Weights holding NaN or infinite values, one warning per tensor: such a checkpoint loads (it
     * is well-formed), but what it computes is NaN. Every weight is scanned once, in parallel.
     */
    private static List<String> nonFiniteWarnings(List<TensorInfo> tensors, Parallel pool) {
        long[] counts = new long[tensors.size()];
        pool.forRange(counts.length, (from, to) -> {
            for (int i = from; i < to; i++) {
                counts[i] = NonFinite.count(tensors.get(i));
            }
        });
        List<String> warnings = new ArrayList<>();
        for (int i = 0; i < counts.length; i++) {
            if (counts[i] > 0) {
                TensorInfo t = tensors.get(i);
                warnings.add(t.source() + ": tensor " + t.name() + " holds " + counts[i] + " NaN or infinite values (of "
                        + t.elementCount() + "); the model's outputs will be NaN");
            }
        }
        return warnings;
    }

    /**
     * Problems found while loading that do not stop the model from loading (NaN or infinite
     * weights), one line each, for front ends to show; empty for a sound checkpoint.
     */
    public List<String> warnings() {
        return warnings;
    }

    /** The model's configuration (with the ALiBi scaling of the load options applied). */
    public BtlmConfig config() {
        return config;
    }

    /** The model's tokenizer; a {@link BtlmException} if its directory has no tokenizer files. */
    public Gpt2Tokenizer tokenizer() {
        if (tokenizer == null) {
            throw new BtlmException(files.directory() + ": no tokenizer files (tokenizer.json, or vocab.json and "
                    + "merges.txt); only token ids can be used with this model");
        }
        return tokenizer;
    }

    /** Whether the model came with tokenizer files (else only token ids can be used). */
    public boolean hasTokenizer() {
        return tokenizer != null;
    }

    /** Where the model was read from and in which format. */
    public ModelDirectory files() {
        return files;
    }

    /** e.g. {@code model.safetensors (safetensors, 291 tensors)}. */
    public String description() {
        return description;
    }

    /** Most positions one call may use. */
    public int contextLength() {
        return generator.contextLength();
    }

    /** How the KV caches of this model's calls store keys and values. */
    public KvCache.Type kvType() {
        return generator.kvType();
    }

    /** Bytes of weights in use. */
    public long weightBytes() {
        return model.weights().bytes();
    }

    /** Threads of the model's pool for the matrix work. */
    public int threads() {
        return pool.threads();
    }

    /**
     * Generates after {@code prompt} (encoded with the model's tokenizer).
     *
     * @throws BtlmException for an empty prompt, a prompt longer than the context, or no tokenizer
     */
    public GenerationResult generate(String prompt, GenerationParams params) {
        return guarded(() -> generator.generate(tokenizer().encode(prompt), params, null));
    }

    /** Generates after the token ids {@code promptIds}. */
    public GenerationResult generate(int[] promptIds, GenerationParams params) {
        return guarded(() -> generator.generate(promptIds, params, null));
    }

    /**
     * Generates and hands each piece of final text to {@code onText} (on the calling thread) as soon
     * as it is known; the pieces joined are the result's text.
     */
    public GenerationResult stream(String prompt, GenerationParams params, Consumer<String> onText) {
        tokenizer();
        return guarded(() -> generator.generate(tokenizer.encode(prompt), params, (id, text) -> {
            if (!text.isEmpty()) {
                onText.accept(text);
            }
        }));
    }

    /** Generates from token ids, reporting every token and its final text to {@code listener}. */
    public GenerationResult stream(int[] promptIds, GenerationParams params, TokenListener listener) {
        return guarded(() -> generator.generate(promptIds, params, listener));
    }

    /**
     * Starts generating after {@code prompt} on another thread and returns the text as an iterator
     * of pieces; closing the stream early cancels the generation.
     */
    public TextStream stream(String prompt, GenerationParams params) {
        int[] ids = tokenizer().encode(prompt);
        checkOpen();
        return new TextStream(onText -> guarded(() -> generator.generate(ids, params, (id, text) -> onText.accept(text))));
    }

    /** Log-probability of each token of {@code text} given the tokens before it. */
    public ScoreResult score(String text) {
        return guarded(() -> generator.score(tokenizer().encode(text)));
    }

    /** Log-probability of each token id given the ones before it. */
    public ScoreResult score(int[] ids) {
        return guarded(() -> generator.score(ids));
    }

    /**
     * log p of the tokens of {@code ids} from {@code from} on, given those before: a continuation
     * scored after its context. A prefix shared with the previous call is not computed again.
     */
    public ContinuationScore scoreContinuation(int[] ids, int from) {
        return guarded(() -> generator.scoreContinuation(ids, from));
    }

    /**
     * Whether calls reuse the longest prefix they share with the previous call's tokens (on by
     * default); results are the same either way.
     */
    public void setPromptReuse(boolean on) {
        generator.setPromptReuse(on);
    }

    /** Tokens run through the forward pass so far: what the prompt cache saved shows here. */
    public long forwardedTokens() {
        return generator.forwardedTokens();
    }

    /**
     * What a saved prompt cache must match: a SHA-256 of the model config (as in effect, ALiBi
     * scaling included) and the weights file's name, size and a SHA-256 of its first MiB.
     */
    public PromptCacheFile.ModelIdentity identity() {
        try {
            java.security.MessageDigest sha = java.security.MessageDigest.getInstance("SHA-256");
            String configHash = java.util.HexFormat.of().formatHex(sha.digest(
                    config.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8)));
            Path w = files.weights();
            long size = java.nio.file.Files.size(w);
            byte[] head = new byte[(int) Math.min(size, 1 << 20)];
            try (var in = java.nio.file.Files.newInputStream(w)) {
                in.readNBytes(head, 0, head.length);
            }
            String weights = w.getFileName() + ":" + size + ":"
                    + java.util.HexFormat.of().formatHex(sha.digest(head)).substring(0, 16);
            return new PromptCacheFile.ModelIdentity(configHash, weights);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        } catch (java.io.IOException e) {
            throw new BtlmException(files.weights() + ": cannot read (" + e.getMessage() + ")");
        }
    }

    /** Saves the kept prompt state (the last call's processed tokens) to {@code file}. */
    public void savePromptCache(Path file) {
        PromptState s = generator.keptState();
        if (s == null || s.cache().length() == 0) {
            throw new BtlmException("no processed prompt to save");
        }
        PromptCacheFile.write(file, s, identity());
    }

    /** Restores a prompt state saved by {@link #savePromptCache}; the next call reuses its common prefix. */
    public int loadPromptCache(Path file) {
        return guarded(() -> {
            PromptState s = PromptCacheFile.read(file, identity(), config, contextLength(), kvType());
            generator.keep(s);
            return s.cache().length();
        });
    }

    /** The generator behind the calls, for the prompt cache file and evaluation. */
    public Generator generator() {
        return generator;
    }

    /**
     * Perplexity of {@code ids} in sliding windows of {@code window} tokens (0: the context length)
     * moved by {@code stride} (0: half the window).
     */
    public Perplexity.Result perplexity(int[] ids, int window, int stride) {
        return perplexity(ids, window, stride, 0);
    }

    /** As {@link #perplexity(int[], int, int)}, also per bucket of {@code bucket} window positions (0: none). */
    public Perplexity.Result perplexity(int[] ids, int window, int stride, int bucket) {
        int w = window == 0 ? contextLength() : window;
        return guarded(() -> Perplexity.compute(generator, ids, w, stride == 0 ? Math.max(1, w / 2) : stride, bucket));
    }

    /** Runs one call while the model is open; {@link #close()} waits for it. */
    private <T> T guarded(Supplier<T> call) {
        inUse.readLock().lock();
        try {
            checkOpen();
            return call.get();
        } finally {
            inUse.readLock().unlock();
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new BtlmException("the model is closed");
        }
    }

    /**
     * {@link #perplexity}, also saving each position's distribution (its {@code topK} most likely
     * tokens and the rest's mass) to {@code baseOut} for a later {@link #klDivergence} run.
     */
    public Perplexity.Result perplexityWithKlBase(int[] ids, int window, int stride, int topK, Path baseOut) {
        int w = window == 0 ? contextLength() : window;
        return KlDivergence.saveBase(generator, ids, w, stride == 0 ? Math.max(1, w / 2) : stride, topK, baseOut);
    }

    /** KL divergence, top-1 agreement and perplexity of {@code ids} against a saved reference run. */
    public KlDivergence.Result klDivergence(int[] ids, int window, int stride, Path base) {
        int w = window == 0 ? contextLength() : window;
        return KlDivergence.compare(generator, ids, w, stride == 0 ? Math.max(1, w / 2) : stride, base);
    }

    /** The forward pass itself, for callers that manage their own KV cache. */
    public Btlm forwardPass() {
        return model;
    }

    /** Waits for the calls in progress, then stops the thread pool and unmaps the weights. Idempotent. */
    @Override
    public void close() {
        inUse.writeLock().lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            pool.close();
            source.close();
        } finally {
            inUse.writeLock().unlock();
        }
    }
}
