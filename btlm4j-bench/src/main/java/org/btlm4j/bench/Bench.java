package org.btlm4j.bench;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Random;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import org.btlm4j.generate.Sampler;
import org.btlm4j.model.Btlm;
import org.btlm4j.model.BtlmConfig;
import org.btlm4j.model.KvCache;
import org.btlm4j.tensor.Parallel;

/**
 * The end-to-end benchmark, measured like llama-bench so the figures compare: prompt processing
 * of {@code p} tokens (pp) and generation of {@code n} tokens (tg) from an empty context, each
 * {@code r} times after a warm-up, mean ± standard deviation; with the machine's read bandwidth and
 * FMA peak measured in the same run to turn speeds into efficiencies.
 */
public final class Bench {

    /**
     * What to run.
     *
     * @param depth positions already in the KV cache when tg starts (random keys and values, as
     *              llama-bench's {@code -d}): decode speed deep into the context
     * @param contextLength most positions (0: n_positions); beyond n_positions needs {@code alibiScaling}
     * @param alibiScaling  as {@link BtlmModel.Options#alibiScaling()}; null keeps the config's
     */
    public record Options(int promptTokens, int genTokens, int reps, int threads, boolean measureLimits, boolean mmap,
            int depth, KvCache.Type kvType, int contextLength, String alibiScaling) {
        public Options(int promptTokens, int genTokens, int reps, int threads, boolean measureLimits, boolean mmap,
                int depth, KvCache.Type kvType) {
            this(promptTokens, genTokens, reps, threads, measureLimits, mmap, depth, kvType, 0, null);
        }
    }

    /** One run's figures; speeds in tokens/s, bandwidth in GB/s (10^9), FMA in GFLOP/s. */
    public record Result(String model, String type, boolean mmap, int threads, double ppTokS, double ppStddev, double tgTokS,
            double tgStddev, double loadS, long weightBytes, double bandwidthGBs, double tgEfficiency,
            double fmaGflops, double ppEfficiency, long flopsPerToken, long kvBytesRead, double tgEfficiencyWithKv,
            int contextLength) {
    }

    private Bench() {
    }

    /** Loads {@code modelPath} and measures it. */
    public static Result run(Path modelPath, String label, Options o, PrintWriter log) {
        double bandwidth = Double.NaN;
        double fma = Double.NaN;
        if (o.measureLimits()) {
            try (Parallel pool = new Parallel(o.threads())) {
                log.println("measuring read bandwidth and FMA peak on " + o.threads() + " threads...");
                log.flush();
                bandwidth = MachineLimits.readBandwidthGBs(pool, 2L << 30, 8);
                fma = MachineLimits.fmaPeakGflops(pool, 3);
                log.printf("  read bandwidth %.1f GB/s, FMA peak %.0f GFLOP/s%n", bandwidth, fma);
            }
        }
        long t0 = System.nanoTime();
        try (BtlmModel model = BtlmModel.load(modelPath, new BtlmModel.Options(o.threads(), o.contextLength(), o.mmap(),
                o.kvType(), o.alibiScaling()))) {
            double loadS = (System.nanoTime() - t0) / 1e9;
            int context = model.contextLength();
            if (o.promptTokens() + 1 > context || o.depth() + o.genTokens() + 1 > context) {
                throw new BtlmException("-p, and -d plus -n, must stay below the context of " + context + " tokens"
                        + (context <= model.config().nPositions()
                                ? "; for more: --ctx N --alibi-scaling dynamic (or factor:F)" : ""));
            }
            BtlmConfig c = model.config();
            Btlm btlm = model.forwardPass();
            int vocab = c.vocabSize();
            Random random = new Random(1234);
            int[] prompt = new int[Math.max(1, o.promptTokens())];
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = random.nextInt(Math.min(vocab, 50000));
            }
            float[] logits = new float[vocab];

            double[] pp = new double[o.reps()];
            if (o.promptTokens() > 0) {
                log.printf("pp%d: warm-up + %d runs%n", o.promptTokens(), o.reps());
                log.flush();
                for (int r = -1; r < o.reps(); r++) {
                    KvCache cache = new KvCache(c, Math.max(o.promptTokens(), 1) + 1, o.kvType());
                    long s = System.nanoTime();
                    float[] hidden = btlm.forward(prompt, 0, prompt.length, cache, prompt.length);
                    btlm.logits(hidden, prompt.length - 1, 1, logits);
                    double sec = (System.nanoTime() - s) / 1e9;
                    if (r >= 0) {
                        pp[r] = prompt.length / sec;
                        log.printf("  run %d: %.2f tok/s%n", r + 1, pp[r]);
                        log.flush();
                    }
                }
            }
            double[] tg = new double[o.reps()];
            if (o.genTokens() > 0 && o.measureLimits()) {
                // The host's bandwidth drifts; measure again next to the decode runs and keep the best.
                try (Parallel pool = new Parallel(o.threads())) {
                    double again = MachineLimits.readBandwidthGBs(pool, 2L << 30, 8);
                    log.printf("  read bandwidth before tg %.1f GB/s%n", again);
                    bandwidth = Math.max(bandwidth, again);
                }
            }
            if (o.genTokens() > 0) {
                log.printf("tg%d%s: warm-up + %d runs%n", o.genTokens(), o.depth() > 0 ? " @ depth " + o.depth() : "",
                        o.reps());
                log.flush();
                for (int r = -1; r < o.reps(); r++) {
                    KvCache cache = new KvCache(c, o.depth() + o.genTokens() + 1, o.kvType());
                    if (o.depth() > 0) {
                        cache.fillRandomForBenchmark(o.depth(), 99);
                    }
                    int[] token = {prompt[0]};
                    int steps = r < 0 ? Math.min(8, o.genTokens()) : o.genTokens();
                    long s = System.nanoTime();
                    for (int i = 0; i < steps; i++) {
                        float[] hidden = btlm.forward(token, 0, 1, cache, cache.length() + 1);
                        btlm.logits(hidden, 0, 1, logits);
                        token[0] = Sampler.argmax(logits, vocab);
                    }
                    double sec = (System.nanoTime() - s) / 1e9;
                    if (r >= 0) {
                        tg[r] = steps / sec;
                        log.printf("  run %d: %.2f tok/s%n", r + 1, tg[r]);
                        log.flush();
                    }
                }
            }
            long weightBytes = model.weightBytes();
            long flops = flopsPerToken(c);
            double ppMean = mean(pp);
            double tgMean = mean(tg);
            // Each decoded token reads every weight once and the cached keys and values of the
            // depth it starts at (plus the few it adds): the memory bound of decoding.
            long kvBytes = o.kvType().bytes(2L * c.nLayer() * c.nEmbd() * (o.depth() + o.genTokens() / 2));
            return new Result(label, model.forwardPass().weights().dtype().name().toLowerCase(java.util.Locale.ROOT),
                    o.mmap(), model.threads(), ppMean, stddev(pp), tgMean, stddev(tg), loadS, weightBytes, bandwidth,
                    weightBytes * tgMean / (bandwidth * 1e9), fma, flops * ppMean / (fma * 1e9), flops, kvBytes,
                    (weightBytes + kvBytes) * tgMean / (bandwidth * 1e9), context);
        }
    }

    /** Matrix FLOPs per token: 2 per weight of every matrix, the head included (attention excluded). */
    static long flopsPerToken(BtlmConfig c) {
        long e = c.nEmbd();
        long inner = c.nInner();
        int mlpIn = c.activation() == BtlmConfig.Activation.SWIGLU ? 2 : 1;
        long perLayer = e * 3 * e + e * e + mlpIn * e * inner + inner * e;
        return 2 * (c.nLayer() * perLayer + (long) c.vocabSize() * e);
    }

    static double mean(double[] v) {
        if (v.length == 0) {
            return Double.NaN;
        }
        double s = 0;
        for (double x : v) {
            s += x;
        }
        return s / v.length;
    }

    static double stddev(double[] v) {
        if (v.length < 2) {
            return 0;
        }
        double m = mean(v);
        double s = 0;
        for (double x : v) {
            s += (x - m) * (x - m);
        }
        return Math.sqrt(s / (v.length - 1));
    }

    /** The llama-bench-like markdown table of results. */
    public static String markdown(java.util.List<Result> results) {
        StringBuilder b = new StringBuilder();
        b.append("| model | type | weights | size | threads | load s | pp tok/s | tg tok/s | read GB/s | tg eff. | FMA GFLOP/s | pp eff. |\n");
        b.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (Result r : results) {
            b.append(String.format(java.util.Locale.ROOT,
                    "| %s | %s | %s | %.2f GB | %d | %.2f | %.2f ± %.2f | %.2f ± %.2f | %.1f | %.2f | %.0f | %.2f |%n",
                    r.model(), r.type(), r.mmap() ? "mmap" : "no-mmap", r.weightBytes() / 1e9, r.threads(), r.loadS(), r.ppTokS(), r.ppStddev(),
                    r.tgTokS(), r.tgStddev(), r.bandwidthGBs(), r.tgEfficiency(), r.fmaGflops(), r.ppEfficiency()));
        }
        return b.toString();
    }
}
