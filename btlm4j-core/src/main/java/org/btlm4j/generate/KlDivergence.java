package org.btlm4j.generate;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.PriorityQueue;
import org.btlm4j.BtlmException;

/**
 * How far a model's next-token distributions are from a reference run's on the same text, as
 * llama.cpp's KL-divergence mode measures quantization: the reference run saves its distributions
 * ({@link #saveBase}), the other run compares with them ({@link #compare}).
 *
 * <p><b>The base file</b> keeps, per scored token, the K most likely tokens with their
 * log-probabilities and the probability mass of all the others as one "rest" bucket (K = 64 by
 * default: 520 bytes a token, against 100 KB for a full fp16 distribution over 50,257 tokens). The
 * KL divergence is then taken between the two distributions coarsened the same way — the base's
 * top K tokens one by one, the rest as one outcome:
 * {@code KL = Σ_{k<K} p_k (log p_k − log q_k) + p_rest (log p_rest − log q_rest)}. By the log-sum
 * inequality this is at most the full KL divergence, and equals it when K covers the vocabulary;
 * with the peaked distributions of a language model, the top 64 hold nearly all the mass.
 *
 * <p>Format (big-endian, {@link DataOutputStream}): the magic {@code BTLMKLD1}; int vocab, K,
 * window, stride, token count N; the N token ids; then for each scored token t = 1, 2, … in order:
 * float log p(ids[t]), double log p_rest, and K × (int token id, float log p), most likely first.
 */
public final class KlDivergence {
    private static final long MAGIC = 0x42544C4D4B4C4431L; // "BTLMKLD1"
    /** Top tokens kept per position by default. */
    public static final int DEFAULT_TOP_K = 64;

    /**
     * @param tokens        positions compared (every token after the first)
     * @param meanKld       mean KL divergence (base ‖ this), nats
     * @param kldP50        median, and the 90th, 99th percentile and maximum (nearest rank)
     * @param top1Agreement fraction of positions where both runs' most likely tokens are the same
     * @param basePerplexity the reference run's perplexity of the text, and this run's
     */
    public record Result(long tokens, double meanKld, double kldP50, double kldP90, double kldP99, double kldMax,
            double top1Agreement, double basePerplexity, double perplexity, int topK) {
        /** This run's perplexity minus the reference's. */
        public double deltaPerplexity() {
            return perplexity - basePerplexity;
        }
    }

    private KlDivergence() {
    }

    /** Scores {@code ids} as {@link Perplexity#compute} does and writes the base file. */
    public static Perplexity.Result saveBase(Generator generator, int[] ids, int window, int stride, int topK, Path out) {
        if (topK < 1) {
            throw new BtlmException("the number of top tokens kept must be positive, got " + topK);
        }
        try (DataOutputStream o = new DataOutputStream(new BufferedOutputStream(Files.newOutputStream(out), 1 << 16))) {
            o.writeLong(MAGIC);
            int vocab = generator.vocabSize();
            int k = Math.min(topK, vocab);
            o.writeInt(vocab);
            o.writeInt(k);
            o.writeInt(window);
            o.writeInt(stride);
            o.writeInt(ids.length);
            for (int id : ids) {
                o.writeInt(id);
            }
            double[] nll = {0};
            long[] scored = {0};
            int[] top = new int[k];
            int windows = Perplexity.forEachScored(generator, ids, window, stride, (t, position, logits, off, v) -> {
                double lse = LogProbs.logSumExp(logits, off, v);
                double lp = logits[off + ids[t]] - lse;
                nll[0] -= lp;
                scored[0]++;
                topTokens(logits, off, v, top);
                double topMass = 0;
                for (int id : top) {
                    topMass += Math.exp(logits[off + id] - lse);
                }
                double rest = restMass(logits, off, v, lse, top, topMass);
                try {
                    o.writeFloat((float) lp);
                    o.writeDouble(rest > 0 ? Math.log(rest) : Double.NEGATIVE_INFINITY);
                    for (int id : top) {
                        o.writeInt(id);
                        o.writeFloat((float) (logits[off + id] - lse));
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            return new Perplexity.Result(Math.exp(nll[0] / scored[0]), scored[0], nll[0], windows);
        } catch (IOException | UncheckedIOException e) {
            throw new BtlmException("cannot write the KL base file " + out + ": " + message(e));
        }
    }

    /** Scores {@code ids} and compares each position's distribution with the base file's. */
    public static Result compare(Generator generator, int[] ids, int window, int stride, Path base) {
        try (DataInputStream in = new DataInputStream(new BufferedInputStream(Files.newInputStream(base), 1 << 16))) {
            if (in.readLong() != MAGIC) {
                throw new BtlmException(base + " is not a KL base file (written by btlm perplexity --kl-base-out)");
            }
            int vocab = in.readInt();
            int k = in.readInt();
            int baseWindow = in.readInt();
            int baseStride = in.readInt();
            int n = in.readInt();
            if (vocab != generator.vocabSize()) {
                throw new BtlmException(base + " was made by a model of vocabulary " + vocab + ", this one has "
                        + generator.vocabSize());
            }
            if (k < 1 || k > vocab || n < 0 || n > 1 << 28) {
                throw new BtlmException(base + ": corrupt header (top " + k + ", " + n + " tokens)");
            }
            if (baseWindow != window || baseStride != stride) {
                throw new BtlmException(base + " was scored in windows of " + baseWindow + " with stride " + baseStride
                        + "; use the same --window and --stride (here " + window + " and " + stride + ")");
            }
            int[] baseIds = new int[n];
            for (int i = 0; i < n; i++) {
                baseIds[i] = in.readInt();
            }
            if (!Arrays.equals(baseIds, ids)) {
                int i = Arrays.mismatch(baseIds, ids);
                throw new BtlmException(base + " was made from another text: " + n + " tokens against " + ids.length
                        + ", first different at token " + i);
            }
            double[] kld = new double[Math.max(0, n - 1)];
            double[] nll = {0, 0}; // base, this
            int[] count = {0, 0}; // scored, same top-1
            int[] topIds = new int[k];
            float[] topLp = new float[k];
            boolean[] inTop = new boolean[vocab];
            Perplexity.forEachScored(generator, ids, window, stride, (t, position, logits, off, v) -> {
                double baseLp;
                double logRest;
                try {
                    baseLp = in.readFloat();
                    logRest = in.readDouble();
                    for (int j = 0; j < k; j++) {
                        topIds[j] = in.readInt();
                        topLp[j] = in.readFloat();
                        if (topIds[j] < 0 || topIds[j] >= vocab) {
                            throw new BtlmException(base + ": corrupt record at token " + t);
                        }
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                double lse = LogProbs.logSumExp(logits, off, v);
                double kl = 0;
                double topMass = 0;
                for (int j = 0; j < k; j++) {
                    double lq = logits[off + topIds[j]] - lse;
                    kl += Math.exp(topLp[j]) * (topLp[j] - lq);
                    topMass += Math.exp(lq);
                    inTop[topIds[j]] = true;
                }
                if (logRest > Double.NEGATIVE_INFINITY) {
                    double qRest = 0;
                    for (int id = 0; id < v; id++) {
                        if (!inTop[id]) {
                            qRest += Math.exp(logits[off + id] - lse);
                        }
                    }
                    kl += Math.exp(logRest) * (logRest - Math.log(qRest));
                }
                for (int j = 0; j < k; j++) {
                    inTop[topIds[j]] = false;
                }
                kld[count[0]] = kl;
                nll[0] -= baseLp;
                nll[1] -= logits[off + ids[t]] - lse;
                count[0]++;
                int best = 0; // Sampler.argmax's rule: the first of equal maxima
                for (int id = 1; id < v; id++) {
                    if (logits[off + id] > logits[off + best]) {
                        best = id;
                    }
                }
                count[1] += best == topIds[0] ? 1 : 0;
            });
            if (in.read() != -1) {
                throw new BtlmException(base + " holds more positions than this text has");
            }
            int scored = count[0];
            double mean = 0;
            for (int i = 0; i < scored; i++) {
                mean += kld[i];
            }
            mean /= scored;
            double[] sorted = Arrays.copyOf(kld, scored);
            Arrays.sort(sorted);
            return new Result(scored, mean, percentile(sorted, 0.50), percentile(sorted, 0.90),
                    percentile(sorted, 0.99), sorted[scored - 1], (double) count[1] / scored,
                    Math.exp(nll[0] / scored), Math.exp(nll[1] / scored), k);
        } catch (NoSuchFileException e) {
            throw new BtlmException("the KL base file " + base + " does not exist");
        } catch (EOFException e) {
            throw new BtlmException(base + " ends early: it holds fewer positions than this text has");
        } catch (IOException | UncheckedIOException e) {
            if (e.getCause() instanceof EOFException) {
                throw new BtlmException(base + " ends early: it holds fewer positions than this text has");
            }
            throw new BtlmException("cannot read the KL base file " + base + ": " + message(e));
        }
    }

    /** The nearest-rank percentile q of ascending {@code sorted}. */
    static double percentile(double[] sorted, double q) {
        int rank = (int) Math.ceil(q * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
    }

    /** The {@code top.length} largest logits' token ids, largest first (the lower id first on ties). */
    static void topTokens(float[] logits, int off, int vocab, int[] top) {
        int k = top.length;
        // min-heap of the best k so far: its head is the weakest kept
        PriorityQueue<Integer> heap = new PriorityQueue<>(k, (a, b) -> {
            int c = Float.compare(logits[off + a], logits[off + b]);
            return c != 0 ? c : Integer.compare(b, a);
        });
        for (int id = 0; id < vocab; id++) {
            if (heap.size() < k) {
                heap.add(id);
            } else {
                int weakest = heap.peek();
                float x = logits[off + id];
                if (x > logits[off + weakest]) {
                    heap.poll();
                    heap.add(id);
                }
            }
        }
        for (int j = k - 1; j >= 0; j--) {
            top[j] = heap.poll();
        }
    }

    /** Mass outside {@code top}: summed directly when small, where 1 − topMass would cancel. */
    private static double restMass(float[] logits, int off, int vocab, double lse, int[] top, double topMass) {
        if (top.length == vocab) {
            return 0;
        }
        if (topMass < 0.5) {
            return 1 - topMass;
        }
        boolean[] inTop = new boolean[vocab];
        for (int id : top) {
            inTop[id] = true;
        }
        double rest = 0;
        for (int id = 0; id < vocab; id++) {
            if (!inTop[id]) {
                rest += Math.exp(logits[off + id] - lse);
            }
        }
        return rest;
    }

    private static String message(Exception e) {
        Throwable c = e instanceof UncheckedIOException && e.getCause() != null ? e.getCause() : e;
        return c.getMessage() == null ? c.getClass().getSimpleName() : c.getMessage();
    }
}
