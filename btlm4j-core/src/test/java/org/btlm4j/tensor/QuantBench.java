package org.btlm4j.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Random;

import org.btlm4j.checkpoint.DType;
import org.btlm4j.checkpoint.TensorInfo;

/**
 * Throughput of multiplyTransposed for Q8_0, Q4_0 and (for comparison, in the same run) BF16
 * weights at BTLM-3B's MLP shapes; prints, asserts nothing, not part of the test suite. Run after
 * {@code mvn test-compile}:
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp btlm4j-core/target/classes:btlm4j-core/target/test-classes \
 *     org.btlm4j.tensor.QuantBench [threads [types, e.g. Q8_0,Q4_0 [prefill tokens]]]
 * </pre>
 */
public final class QuantBench {

    private QuantBench() {
    }

    public static void main(String[] args) {
        final int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        // optional second argument: the types to run, comma-separated (default BF16,Q8_0,Q4_0)
        final DType[] types = Arrays.stream((args.length > 1 ? args[1] : "BF16,Q8_0,Q4_0").split(","))
                .map(DType::valueOf).toArray(DType[]::new);
        // optional third argument: the tokens of the prefill products (default 64; a prompt chunk is 512)
        final int tokens = args.length > 2 ? Integer.parseInt(args[2]) : 64;
        System.out.printf("%d threads, %d float lanes%n", threads, WeightMatrix.LANES);
        try (Arena arena = Arena.ofShared(); Parallel pool = new Parallel(threads)) {
            for (DType type : types) {
                // [out, in] as the quantized checkpoints store them: c_fc is [6826, 2560], c_proj [2560, 6826]
                final WeightMatrix[] up = copies(arena, type, 6826, 2560);
                final WeightMatrix[] down = copies(arena, type, 2560, 6826);
                decode(pool, up);
                decode(pool, down);
                prefill(pool, up[0], tokens);
                prefill(pool, down[0], tokens);
            }
        }
    }

    private static long bytes(WeightMatrix w) {
        return w.data.byteSize();
    }

    private static void decode(Parallel pool, WeightMatrix[] ws) {
        final WeightMatrix w0 = ws[0];
        final float[] x = RandomTensors.gaussian(new Random(1), w0.cols());
        final float[] y = new float[w0.rows()];
        final long bytes = bytes(w0);
        final int[] next = {0};
        final double[] s = time((int) Math.max(16, 4_000_000_000L / bytes),
                () -> ws[next[0]++ % ws.length].multiplyTransposed(pool, x, 1, y));
        final double weights = (double) w0.rows() * w0.cols();
        System.out.printf("decode  %-18s n=1:  best %6.2f GB/s, median %6.2f GB/s, %.3f ns/weight (%.3f ms)%n",
                w0.dtype() + "[" + w0.rows() + "," + w0.cols() + "]", bytes / s[0] / 1e9, bytes / s[1] / 1e9,
                s[1] * 1e9 / weights, s[1] * 1e3);
    }

    private static void prefill(Parallel pool, WeightMatrix w, int n) {
        final float[] x = RandomTensors.gaussian(new Random(2), n * w.cols());
        final float[] y = new float[n * w.rows()];
        final double flops = 2.0 * n * w.rows() * w.cols();
        final double[] s = time(10, () -> w.multiplyTransposed(pool, x, n, y));
        System.out.printf("prefill %-18s n=%d: best %6.1f GFLOP/s, median %6.1f GFLOP/s (%.2f ms)%n",
                w.dtype() + "[" + w.rows() + "," + w.cols() + "]", n, flops / s[0] / 1e9, flops / s[1] / 1e9, s[1] * 1e3);
    }

    /** Enough copies (of one random matrix's bytes) to exceed the last-level cache several times over. */
    private static WeightMatrix[] copies(Arena arena, DType type, int rows, int cols) {
        final Random rnd = new Random(5);
        final long bytes = type.byteSize(new long[] {rows, cols});
        final MemorySegment first = arena.allocate(bytes, 64);
        final float[] src = new float[cols];
        final long rowBytes = bytes / rows;
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                src[c] = (float) rnd.nextGaussian();
            }
            if (type.isQuantized()) {
                Quantizer.quantizeRow(type, src, 0, cols, first, r * rowBytes);
            } else {
                for (int c = 0; c < cols; c++) {
                    RandomTensors.put(first, type, (long) r * cols + c, src[c]);
                }
            }
        }
        final WeightMatrix[] ws = new WeightMatrix[(int) Math.max(2, (256L << 20) / bytes + 1)];
        for (int i = 0; i < ws.length; i++) {
            final MemorySegment seg = i == 0 ? first : arena.allocate(bytes, 64).copyFrom(first);
            ws[i] = WeightMatrix.of(new TensorInfo("w" + i, type, new long[] {rows, cols}, seg, "bench"));
        }
        return ws;
    }

    private static double[] time(int reps, Runnable run) {
        final long warmUntil = System.nanoTime() + 1_000_000_000L;
        while (System.nanoTime() < warmUntil) {
            run.run();
        }
        final double[] t = new double[reps];
        for (int i = 0; i < reps; i++) {
            final long start = System.nanoTime();
            run.run();
            t[i] = (System.nanoTime() - start) / 1e9;
        }
        Arrays.sort(t);
        return new double[] {t[0], t[reps / 2]};
    }
}
