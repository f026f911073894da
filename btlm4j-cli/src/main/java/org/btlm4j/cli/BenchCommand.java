package org.btlm4j.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.LocalDate;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.btlm4j.BtlmException;
import org.btlm4j.bench.Bench;
import org.btlm4j.bench.RandomCheckpoint;
import org.btlm4j.hub.HubCache;
import org.btlm4j.hub.HubId;
import org.btlm4j.model.BtlmConfig;
import org.btlm4j.tensor.Parallel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Measure prompt processing (pp) and generation (tg) speed like llama-bench, with the "
                + "machine's read bandwidth and FMA peak measured in the same run.",
        footer = {"%nExamples:", "  btlm bench --random 3b -p 512 -n 128",
            "  btlm bench -m models/btlm-demo -r 5 --json",
            "  btlm bench --random 3b -p 0 -n 32 -d 16000 --ctx 16384 --alibi-scaling dynamic --kv-type f16"})
final class BenchCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--random", paramLabel = "SIZE", description = "Benchmark a random checkpoint of this size "
            + "(3b: BTLM-3B-8k's exact shapes), created once in the cache directory.")
    String random;

    @Option(names = {"-m", "--model"}, paramLabel = "MODEL",
            description = "Benchmark this model instead: a directory, a GGUF file or a Hub id in the Hugging Face cache.")
    String model;

    @Option(names = "--print-path", description = "Create the --random checkpoint if needed, print its path, and exit.")
    boolean printPath;

    @Option(names = "--cache-dir", paramLabel = "DIR", description = "Where random checkpoints live "
            + "(default: $BTLM_CACHE or ~/.cache/btlm4j).")
    Path cacheDir;

    @Option(names = {"-p", "--n-prompt"}, paramLabel = "N", defaultValue = "512", description = "Prompt tokens (default: ${DEFAULT-VALUE}; 0 skips pp).")
    int promptTokens;

    @Option(names = {"-n", "--n-gen"}, paramLabel = "N", defaultValue = "128", description = "Generated tokens (default: ${DEFAULT-VALUE}; 0 skips tg).")
    int genTokens;

    @Option(names = {"-d", "--depth"}, paramLabel = "N", defaultValue = "0",
            description = "Start tg with N positions already in the KV cache (default: ${DEFAULT-VALUE}).")
    int depth;

    @Option(names = {"-c", "--ctx"}, paramLabel = "N", description = "Context length (default: n_positions; more "
            + "needs --alibi-scaling).")
    int contextLength;

    @Option(names = "--alibi-scaling", paramLabel = "RULE", description = "dynamic, dynamic:N, factor:F or none: "
            + "to run past n_positions (e.g. -d 16000 --ctx 16384 --alibi-scaling dynamic).")
    String alibiScaling;

    @Option(names = "--kv-type", paramLabel = "TYPE", defaultValue = "f32", description = "KV cache: f32, f16, q8_0 or q4_0.")
    String kvType;

    @Option(names = {"-r", "--repetitions"}, paramLabel = "R", defaultValue = "3", description = "Runs after the warm-up (default: ${DEFAULT-VALUE}).")
    int reps;

    @Option(names = {"-t", "--threads"}, paramLabel = "N", description = "Threads (default: all cores).")
    int threads;

    @Option(names = "--type", paramLabel = "TYPE", defaultValue = "bf16", description = "Weight format of --random: bf16.")
    String type;

    @Option(names = "--mmap", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Weights in place in the mapped file (default) or, with --no-mmap, copied to memory.")
    boolean mmap = true;

    @Option(names = "--no-limits", description = "Skip measuring bandwidth and FMA peak.")
    boolean noLimits;

    @Option(names = "--json", description = "Print one JSON object per run.")
    boolean json;

    @Option(names = "--append", paramLabel = "FILE", description = "Append the table as a dated section to FILE (e.g. BENCHMARKS.md).")
    Path append;

    @Option(names = "--verbose", description = "Stack traces on errors.")
    boolean verbose;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if ((random == null) == (model == null)) {
            throw new BtlmException("give exactly one of --random 3b or -m DIR");
        }
        if (reps < 1) {
            throw new BtlmException("-r must be at least 1, got " + reps);
        }
        if (promptTokens < 0 || genTokens < 0) {
            throw new BtlmException("-p and -n must be 0 or more");
        }
        int nThreads = threads == 0 ? Parallel.defaultThreads() : threads;
        Path path = model == null ? null : HubCache.fromEnvironment().resolve(model);
        String label = model == null ? null : HubId.looksLike(model) && !Files.exists(Path.of(model)) ? model
                : path.getFileName().toString();
        if (random != null) {
            if (!random.equalsIgnoreCase("3b")) {
                throw new BtlmException("--random " + random + " is not known (available: 3b)");
            }
            if (!type.equalsIgnoreCase("bf16")) {
                throw new BtlmException("--type " + type + " is not available for --random (available: bf16)");
            }
            path = randomCheckpoint(nThreads, err);
            label = "random BTLM-3B-8k";
            if (printPath) {
                out.println(path.toAbsolutePath());
                return 0;
            }
        } else if (printPath) {
            throw new BtlmException("--print-path goes with --random");
        }
        if (depth < 0 || contextLength < 0) {
            throw new BtlmException("-d and --ctx must be 0 or more");
        }
        Bench.Result r = Bench.run(path, label, new Bench.Options(promptTokens, genTokens, reps, nThreads, !noLimits, mmap, depth,
                ModelOptions.kvType(kvType), contextLength, alibiScaling), err);
        if (json) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("model", r.model());
            o.put("type", r.type());
            o.put("mmap", r.mmap());
            o.put("threads", r.threads());
            o.put("pp_tok_s", r.ppTokS());
            o.put("pp_stddev", r.ppStddev());
            o.put("tg_tok_s", r.tgTokS());
            o.put("tg_stddev", r.tgStddev());
            o.put("depth", depth);
            o.put("kv_type", kvType.toLowerCase(java.util.Locale.ROOT));
            o.put("load_s", r.loadS());
            o.put("weight_bytes", r.weightBytes());
            o.put("bandwidth_gb_s", nanToNull(r.bandwidthGBs()));
            o.put("tg_efficiency", nanToNull(r.tgEfficiency()));
            o.put("ctx", r.contextLength());
            o.put("kv_bytes_read", r.kvBytesRead());
            o.put("tg_efficiency_with_kv", nanToNull(r.tgEfficiencyWithKv()));
            o.put("fma_gflops", nanToNull(r.fmaGflops()));
            o.put("pp_efficiency", nanToNull(r.ppEfficiency()));
            out.println(Json.write(o));
        } else {
            out.print(Bench.markdown(List.of(r)));
        }
        if (append != null) {
            String section = "\n## " + LocalDate.now() + " — " + r.model() + ", " + r.threads() + " threads, pp" + promptTokens
                    + " / tg" + genTokens + ", " + reps + " runs, " + (mmap ? "mmap" : "no-mmap") + "\n\n"
                    + "Machine: " + Runtime.getRuntime().availableProcessors() + " cores, "
                    + System.getProperty("os.arch") + "; JDK " + System.getProperty("java.version") + ".\n\n"
                    + Bench.markdown(List.of(r));
            Files.writeString(append, section, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        }
        return 0;
    }

    private static Object nanToNull(double v) {
        return Double.isNaN(v) ? null : v;
    }

    private Path randomCheckpoint(int nThreads, PrintWriter err) {
        Path cache = cacheDir;
        if (cache == null) {
            String env = System.getenv("BTLM_CACHE");
            cache = env != null && !env.isBlank() ? Path.of(env) : Path.of(System.getProperty("user.home"), ".cache", "btlm4j");
        }
        Path dir = cache.resolve("random-btlm-3b-8k-bf16-seed1");
        if (Files.isRegularFile(dir.resolve("model.safetensors"))) {
            return dir;
        }
        BtlmConfig c = BtlmConfig.btlm3b8k();
        err.println("btlm: writing a random BTLM-3B-8k checkpoint (BF16, about 5.3 GB) to " + dir + " ...");
        long start = System.nanoTime();
        String demo = System.getProperty("btlm.demo");
        try (Parallel pool = new Parallel(nThreads)) {
            long[] shown = {0};
            RandomCheckpoint.ensure(c, 1, dir, demo == null ? null : Path.of(demo), pool, written -> {
                if (written - shown[0] >= 250_000_000L) { // a line every 0.25 GB keeps logs short
                    shown[0] = written;
                    err.printf("\r  %.2f GB written", written / 1e9);
                    err.flush();
                }
            });
        }
        err.printf("%n  done in %.1f s%n", (System.nanoTime() - start) / 1e9);
        return dir;
    }
}
