package org.btlm4j.tensor;

import static java.nio.ByteOrder.LITTLE_ENDIAN;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Random;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import org.btlm4j.checkpoint.DType;
import org.btlm4j.checkpoint.TensorInfo;

/**
 * Throughput of the matrix kernels at BTLM-3B's shapes; prints, asserts nothing, and is not part
 * of the test suite. Run after {@code mvn test-compile}:
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp btlm4j-core/target/classes:btlm4j-core/target/test-classes \
 *     org.btlm4j.tensor.TensorBench [threads] [dtype]
 * </pre>
 */
public final class TensorBench {

    private TensorBench() {
    }

    public static void main(String[] args) {
        final int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        final DType dtype = args.length > 1 ? DType.valueOf(args[1]) : DType.BF16;
        System.out.printf("%d threads, %s weights, %d float lanes%n", threads, dtype, WeightMatrix.LANES);
        try (Arena arena = Arena.ofShared(); Parallel pool = new Parallel(threads)) {
            // Decode is bound by memory bandwidth, and one 35 MB matrix partly fits the 32 MB L3:
            // cycle through enough copies (as a real forward pass does through its layers) that
            // every call reads from DRAM.
            final WeightMatrix[] up = copies(arena, dtype, 2560, 6826);   // c_fc: [n_embd, n_inner]
            final WeightMatrix[] down = copies(arena, dtype, 6826, 2560); // mlp.c_proj: [n_inner, n_embd]
            final WeightMatrix head = matrix(arena, dtype, 50257, 2560);  // wte as the LM head

            // the machine's read bandwidth right now, for scale: the benchmark host may be shared
            stream(pool, arena);
            decode(pool, up, false);
            decode(pool, down, false);
            decode(pool, new WeightMatrix[] {head}, true);
            stream(pool, arena);

            prefill(pool, up[0], 64, false);
            prefill(pool, down[0], 64, false);
            prefill(pool, matrix(arena, dtype, 8192, 2560), 64, true);
        }
    }

    /** A plain vectorized sum over 512 MiB split across the pool: the memory system's read rate. */
    private static void stream(Parallel pool, Arena arena) {
        final long bytes = 512L << 20;
        final MemorySegment seg = arena.allocate(bytes, 64);
        seg.fill((byte) 1);
        final int chunk = 1 << 20;
        final float[] sink = new float[1];
        final double[] seconds = time(10, () -> pool.forRange((int) (bytes / chunk), (from, to) -> {
            float s = 0;
            for (int k = from; k < to; k++) {
                s += sum(seg, (long) k * chunk, chunk);
            }
            sink[0] += s;
        }));
        System.out.printf("stream  (reference: a vector sum over 512 MiB)        best %6.2f GB/s, median %6.2f GB/s%n",
                bytes / seconds[0] / 1e9, bytes / seconds[1] / 1e9);
    }

    private static float sum(MemorySegment seg, long offset, int bytes) {
        final VectorSpecies<Float> f = FloatVector.SPECIES_PREFERRED;
        final int step = 4 * f.vectorByteSize();
        FloatVector a0 = FloatVector.zero(f);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        for (int i = 0; i < bytes; i += step) {
            a0 = a0.add(FloatVector.fromMemorySegment(f, seg, offset + i, LITTLE_ENDIAN));
            a1 = a1.add(FloatVector.fromMemorySegment(f, seg, offset + i + f.vectorByteSize(), LITTLE_ENDIAN));
            a2 = a2.add(FloatVector.fromMemorySegment(f, seg, offset + i + 2 * f.vectorByteSize(), LITTLE_ENDIAN));
            a3 = a3.add(FloatVector.fromMemorySegment(f, seg, offset + i + 3 * f.vectorByteSize(), LITTLE_ENDIAN));
        }
        return a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
    }

    private static void decode(Parallel pool, WeightMatrix[] ws, boolean transposed) {
        final WeightMatrix w0 = ws[0];
        final float[] x = random(transposed ? w0.cols() : w0.rows());
        final float[] y = new float[transposed ? w0.rows() : w0.cols()];
        final long bytes = (long) w0.rows() * w0.cols() * w0.dtype().bytes();
        final int[] next = {0};
        final double[] seconds = time((int) Math.max(16, 8_000_000_000L / bytes), () -> {
            final WeightMatrix w = ws[next[0]++ % ws.length];
            if (transposed) {
                w.multiplyTransposed(pool, x, 1, y);
            } else {
                w.multiply(pool, x, 1, y);
            }
        });
        System.out.printf("decode  %-18s %-17s n=1:  best %6.2f GB/s, median %6.2f GB/s (%.3f ms)%n",
                transposed ? "multiplyTransposed" : "multiply", w0.dtype() + "[" + w0.rows() + "," + w0.cols() + "]",
                bytes / seconds[0] / 1e9, bytes / seconds[1] / 1e9, seconds[1] * 1e3);
    }

    private static void prefill(Parallel pool, WeightMatrix w, int n, boolean transposed) {
        final float[] x = random(n * (transposed ? w.cols() : w.rows()));
        final float[] y = new float[n * (transposed ? w.rows() : w.cols())];
        final double flops = 2.0 * n * w.rows() * w.cols();
        final double[] seconds = time(20, () -> {
            if (transposed) {
                w.multiplyTransposed(pool, x, n, y);
            } else {
                w.multiply(pool, x, n, y);
            }
        });
        System.out.printf("prefill %-18s %-17s n=%d: best %6.1f GFLOP/s, median %6.1f GFLOP/s (%.2f ms)%n",
                transposed ? "multiplyTransposed" : "multiply", w.dtype() + "[" + w.rows() + "," + w.cols() + "]", n,
                flops / seconds[0] / 1e9, flops / seconds[1] / 1e9, seconds[1] * 1e3);
    }

    /** Enough copies of a matrix to exceed the last-level cache several times over. */
    static WeightMatrix[] copies(Arena arena, DType dtype, int rows, int cols) {
        final long bytes = (long) rows * cols * dtype.bytes();
        final WeightMatrix[] ws = new WeightMatrix[(int) Math.max(2, (256L << 20) / bytes + 1)];
        for (int i = 0; i < ws.length; i++) {
            ws[i] = matrix(arena, dtype, rows, cols);
        }
        return ws;
    }

    /** Best and median seconds per run, after a warm-up that lets C2 compile the kernels. */
    private static double[] time(int reps, Runnable run) {
        final long warmUntil = System.nanoTime() + 1_500_000_000L;
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

    private static float[] random(int len) {
        final Random rnd = new Random(len);
        final float[] a = new float[len];
        for (int i = 0; i < len; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        return a;
    }

    /** Random weights of magnitude ~0.01–1, filled with a cheap generator (this is 100s of MB). */
    private static WeightMatrix matrix(Arena arena, DType dtype, int rows, int cols) {
        final long count = (long) rows * cols;
        final MemorySegment data = arena.allocate(count * dtype.bytes() + 64, 64).asSlice(2, count * dtype.bytes());
        long state = 0x9E3779B97F4A7C15L ^ count;
        for (long i = 0; i < count; i++) {
            state = state * 6364136223846793005L + 1442695040888963407L;
            final float v = Float.intBitsToFloat(0x3C000000 | (int) ((state >>> 33) & 0x83FFFFFF)); // sign, ±[2^-7, 2^0)
            switch (dtype) {
                case F32 -> data.set(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LITTLE_ENDIAN), 4 * i, v);
                case F16 -> data.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LITTLE_ENDIAN), 2 * i,
                        Float.floatToFloat16(v));
                case BF16 -> data.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LITTLE_ENDIAN), 2 * i,
                        (short) (Float.floatToRawIntBits(v) >>> 16));
                default -> throw new IllegalArgumentException(dtype.toString());
            }
        }
        return WeightMatrix.of(new TensorInfo(dtype + "[" + rows + "," + cols + "]", dtype,
                new long[] {rows, cols}, data, "bench"));
    }
}
