package org.btlm4j.cli;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import org.btlm4j.hub.HubCache;
import org.btlm4j.hub.HubId;
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

    @Option(names = "--kv-type", paramLabel = "TYPE", defaultValue = "f32",
            description = "KV cache storage: f32 (exact, default) or f16 (half the memory and cache reads).")
    String kvType = "f32";

    @Option(names = "--alibi-scaling", paramLabel = "RULE",
            description = "Extrapolate past n_positions: dynamic (train_seq_len = n_positions), dynamic:N, factor:F, "
                    + "or none; default: the config's alibi_scaling.")
    String alibiScaling;

    @Option(names = "--verbose", description = "Show stack traces and loading details.")
    boolean verbose;

    /** Copies smaller than this load quickly enough to need no progress bar. */
    static final long PROGRESS_MIN_BYTES = 256L << 20;

    /** Loads the chosen model, saying on stderr which one when it was not named. */
    BtlmModel load(PrintWriter err) {
        Path path = resolve(err);
        BtlmModel m;
        LoadBar bar = new LoadBar(err);
        try (bar) {
            m = BtlmModel.load(path.toString(),
                    new BtlmModel.Options(threads, contextLength, mmap, kvType(kvType), alibiScaling), bar);
        }
        if (verbose) {
            err.println("btlm: " + m.files().choice() + " — " + m.description() + ", " + m.threads() + " threads");
        }
        for (String warning : m.warnings()) {
            err.println("warning: " + warning);
        }
        return m;
    }

    /** The path of the chosen model: -m (a path, or a Hub id in the cache), else the default model. */
    Path resolve(PrintWriter err) {
        return model != null ? HubCache.fromEnvironment().resolve(model) : defaultModel(err);
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

    static KvCache.Type kvType(String name) {
        return switch (name.toLowerCase(java.util.Locale.ROOT)) {
            case "f32" -> KvCache.Type.F32;
            case "f16" -> KvCache.Type.F16;
            default -> throw new BtlmException("--kv-type " + name + " is not known (available: f32, f16)");
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
