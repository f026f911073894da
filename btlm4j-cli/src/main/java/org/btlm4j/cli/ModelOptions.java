package org.btlm4j.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import org.btlm4j.hub.HubCache;
import org.btlm4j.hub.HubId;
import org.btlm4j.MemoryEstimate;
import org.btlm4j.checkpoint.ModelDirectory;
import org.btlm4j.model.KvCache;
import picocli.CommandLine.Option;

/** The options every command that loads a model shares: which model, how many threads, --verbose. */
final class ModelOptions {
    /** The official model's repository name; a local directory of that name is picked up by default. */
    static final String OFFICIAL = "cerebras/btlm-3b-8k-base";

    @Option(names = {"-m", "--model"}, paramLabel = "MODEL",
            description = "Model directory, weights or GGUF file, or Hub id ORG/NAME[@REVISION] in the Hugging Face "
                    + "cache (btlm pull). Default: " + OFFICIAL + " if found (./btlm-3b-8k-base, "
                    + "${sys:user.home}/models/btlm-3b-8k-base, the Hub cache), else the bundled demo model.")
    String model;

    @Option(names = {"-t", "--threads"}, paramLabel = "N", description = "Threads for the matrix work (default: all cores).")
    int threads;

    @Option(names = {"-c", "--ctx"}, paramLabel = "N", description = "Context length (default: the model's n_positions).")
    int contextLength;

    @Option(names = "--mmap", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Use the weights in place in the memory-mapped file (default), or with --no-mmap copy "
                    + "them into memory backed by huge pages (steadier decode speed on some machines).")
    boolean mmap = true;

    @Option(names = "--kv-type", paramLabel = "TYPE", defaultValue = "auto",
            description = "KV cache storage: f32 (exact), f16, q8_0 or q4_0 (GGUF blocks of 32 positions: 27%% or 14%% "
                    + "of f32's memory), or auto (default): q8_0 when an f32 cache at the full context would take at "
                    + "least a quarter of the weights' memory, else f32.")
    String kvType = "auto";

    @Option(names = "--alibi-scaling", paramLabel = "RULE",
            description = "Extrapolate past n_positions: dynamic (train_seq_len = n_positions), dynamic:N, factor:F, "
                    + "or none; default: the config's alibi_scaling.")
    String alibiScaling;

    @Option(names = "--memory-limit", paramLabel = "SIZE",
            description = "Refuse, before loading, a run whose memory estimate (see btlm info) exceeds SIZE, e.g. 3G or "
                    + "2500M (powers of 1024); none: no check. Default: the cgroup's limit, else the available memory.")
    String memoryLimit;

    /** For the launcher: print the heap this run needs ({@link MemoryEstimate#heapBytes}) and stop. */
    @Option(names = "--print-heap", hidden = true)
    boolean printHeap;

    @Option(names = "--verbose", description = "Show stack traces and loading details.")
    boolean verbose;

    /** Copies smaller than this load quickly enough to need no progress bar. */
    static final long PROGRESS_MIN_BYTES = 256L << 20;

    /** Loads the chosen model, saying on stderr which one when it was not named; refuses a run that would not fit. */
    BtlmModel load(PrintWriter err) {
        return load(err, true);
    }

    BtlmModel load(PrintWriter err, boolean checkMemory) {
        Path path = resolve(err);
        if (printHeap) {
            throw new HeapPrinted(heapDependencies(path) + estimate(err).heapBytes());
        }
        if (verbose && kvType.equalsIgnoreCase("auto")) {
            err.println("btlm: --kv-type auto: " + options().kvType().optionName());
        }
        if (checkMemory) {
            MemoryEstimate estimate = estimate(err);
            dropStaleHeapCache(estimate.heapBytes());
            estimate.check(limit(), limitSource());
        }
        BtlmModel m;
        LoadBar bar = new LoadBar(err);
        try (bar) {
            m = BtlmModel.load(path.toString(), options(), bar);
        }
        if (verbose) {
            err.println("btlm: " + m.files().choice() + " — " + m.description() + ", " + m.threads() + " threads");
        }
        for (String warning : m.warnings()) {
            err.println("warning: " + warning);
        }
        return m;
    }

    private Path resolved;

    /** The path of the chosen model: -m (a path, or a Hub id in the cache), else the default model. */
    Path resolve(PrintWriter err) {
        if (resolved == null) {
            resolved = model != null ? HubCache.fromEnvironment().resolve(model) : defaultModel(err);
        }
        return resolved;
    }

    /** A progress bar for copying the weights into memory (--no-mmap), shown only for large models. */
    private static final class LoadBar implements BtlmModel.LoadProgress, AutoCloseable {
        private final PrintWriter err;
        private ProgressBar bar;

        LoadBar(PrintWriter err) {
            this.err = err;
        }

        @Override
        public synchronized void progress(long done, long total) {
            if (bar == null && total >= PROGRESS_MIN_BYTES) {
                bar = new ProgressBar(err, "loading", total, ProgressBar.Unit.BYTES);
            }
            if (bar != null) {
                bar.update(Math.max(done, 0));
            }
        }

        @Override
        public synchronized void close() {
            if (bar != null) {
                bar.close();
            }
        }
    }

    private BtlmModel.Options resolvedOptions;

    BtlmModel.Options options() {
        if (resolvedOptions == null) {
            BtlmModel.Options o = new BtlmModel.Options(threads, contextLength, mmap,
                    kvType.equalsIgnoreCase("auto") ? KvCache.Type.F32 : kvType(kvType), alibiScaling);
            if (kvType.equalsIgnoreCase("auto")) {
                // q8_0 costs a KL divergence of ~3e-6 on the trained demo model (BENCHMARKS.md), far below
                // what Q8_0 weights cost, for 27 % of the memory: worth it wherever the cache is big
                MemoryEstimate f32 = BtlmModel.estimateMemory(
                        resolved != null ? resolved : resolve(new PrintWriter(java.io.Writer.nullWriter())), o);
                if (4 * f32.kvCache() >= f32.weights()) {
                    o = new BtlmModel.Options(threads, contextLength, mmap, KvCache.Type.Q8_0, alibiScaling);
                }
            }
            resolvedOptions = o;
        }
        return resolvedOptions;
    }

    /** The memory a run with these options will need. */
    MemoryEstimate estimate(PrintWriter err) {
        Path p = resolve(err);
        return BtlmModel.estimateMemory(p, options());
    }

    /** The configured limit in bytes (0: none). */
    long limit() {
        return memoryLimit != null ? MemoryEstimate.parseSize(memoryLimit) : MemoryEstimate.availableMemory();
    }

    String limitSource() {
        return memoryLimit != null ? "of --memory-limit" : "of memory available (set --memory-limit to change the limit)";
    }

    /**
     * For the launcher's cache of {@code --print-heap} answers: one line {@code depends MTIME SIZE PATH}
     * (seconds, bytes, absolute path) for each file or directory the answer was computed from, so
     * that the launcher can reuse it while they are unchanged; none (no caching) unless -m names a
     * path, since finding a Hub id or the default model depends on more than one path.
     */
    String heapDependencies(Path path) {
        if (model == null || !Files.exists(Path.of(model))) {
            return "";
        }
        ModelDirectory files = ModelDirectory.locate(path);
        StringBuilder lines = new StringBuilder();
        Set<Path> read = new LinkedHashSet<>();
        for (Path p : new Path[] {path, files.directory(), files.config(), files.weights()}) {
            if (p != null) {
                read.add(p.toAbsolutePath().normalize());
            }
        }
        for (Path abs : read) {
            try {
                String name = abs.toString();
                if (name.indexOf('\n') >= 0 || name.indexOf('\r') >= 0) {
                    return "";
                }
                lines.append("depends ").append(Files.getLastModifiedTime(abs).to(TimeUnit.SECONDS)).append(' ')
                        .append(Files.size(abs)).append(' ').append(name).append('\n');
            } catch (IOException e) {
                return "";
            }
        }
        return lines.toString();
    }

    /**
     * The launcher names the cache entry it took this run's heap cap from ({@code btlm.heap.cache},
     * {@code btlm.heap.cached}); when this run's estimate differs (a change the entry's dependencies
     * did not catch), the entry is deleted so that the next run asks again.
     */
    private static void dropStaleHeapCache(long heapBytes) {
        String entry = System.getProperty("btlm.heap.cache");
        String cached = System.getProperty("btlm.heap.cached");
        if (entry == null || cached == null || cached.equals(Long.toString(heapBytes))) {
            return;
        }
        try {
            Files.deleteIfExists(Path.of(entry));
        } catch (IOException | RuntimeException e) {
            // a cache that cannot be deleted is only asked again when its dependencies change
        }
    }

    /** Ends a {@code --print-heap} run: {@link Main} prints the text (the heap in bytes last) and exits 0. */
    static final class HeapPrinted extends RuntimeException {
        final String text;

        HeapPrinted(String text) {
            super(null, null, false, false);
            this.text = text;
        }
    }

    static KvCache.Type kvType(String name) {
        return switch (name.toLowerCase(java.util.Locale.ROOT)) {
            case "f32" -> KvCache.Type.F32;
            case "f16" -> KvCache.Type.F16;
            case "q8_0" -> KvCache.Type.Q8_0;
            case "q4_0" -> KvCache.Type.Q4_0;
            default -> throw new BtlmException("--kv-type " + name + " is not known (available: f32, f16, q8_0, q4_0)");
        };
    }

    /** The official model if a local copy is found, else the bundled demo model. */
    static Path defaultModel(PrintWriter err) {
        List<Path> candidates = new ArrayList<>();
        String env = System.getenv("BTLM_MODEL");
        if (env != null && !env.isBlank()) {
            candidates.add(Path.of(env));
        }
        candidates.add(Path.of("btlm-3b-8k-base"));
        candidates.add(Path.of(OFFICIAL));
        candidates.add(Path.of(System.getProperty("user.home"), "models", "btlm-3b-8k-base"));
        candidates.add(Path.of(System.getProperty("user.home"), "models", OFFICIAL));
        try {
            candidates.add(HubCache.fromEnvironment().snapshot(HubId.parse(OFFICIAL)));
        } catch (BtlmException notCached) {
            // not pulled: the demo model below
        }
        for (Path p : candidates) {
            if (Files.isRegularFile(p.resolve("config.json"))) {
                err.println("btlm: no -m given; using " + OFFICIAL + " found at " + p.toAbsolutePath());
                return p;
            }
        }
        String demo = System.getProperty("btlm.demo");
        Path demoPath = demo != null ? Path.of(demo) : Path.of("models", "btlm-demo");
        if (!Files.isRegularFile(demoPath.resolve("config.json"))) {
            throw new BtlmException("no -m given, " + OFFICIAL + " was not found locally and the bundled demo model "
                    + "is missing at " + demoPath.toAbsolutePath() + "; give the model directory with -m DIR");
        }
        err.println("btlm: no -m given and " + OFFICIAL + " not found locally; using the bundled demo model "
                + "(a small BTLM trained on the King James Bible and fortunes) at " + demoPath);
        return demoPath;
    }
}
