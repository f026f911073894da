package org.btlm4j.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;

import org.btlm4j.checkpoint.DType;
import org.btlm4j.checkpoint.TensorInfo;

/**
 * Cost of one product for n = 1..64 rows of x at c_fc's shape (2560 in, 6826 out): what a batched
 * decode step (one row per active sequence) pays per matrix. By default y = x·W with W stored
 * [in, out] (the Conv1D layout of the official checkpoints); with the third argument {@code t},
 * y = x·Wᵀ with W stored [out, in] (btlm4j's GGUF files). Prints, asserts nothing, and is not part
 * of the test suite. Run after {@code mvn test-compile}:
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp btlm4j-core/target/classes:btlm4j-core/target/test-classes \
 *     org.btlm4j.tensor.BatchRowsBench [threads] [dtype] [t]
 * </pre>
 */
public final class BatchRowsBench {
    private BatchRowsBench() {
    }

    public static void main(String[] args) {
        final int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        final DType dtype = args.length > 1 ? DType.valueOf(args[1]) : DType.BF16;
        final boolean transposed = args.length > 2 && args[2].equals("t");
        try (Arena arena = Arena.ofShared(); Parallel pool = new Parallel(threads)) {
            // enough copies to read from DRAM
            final int rows = transposed ? 6826 : 2560;
            final int cols = transposed ? 2560 : 6826;
            final WeightMatrix[] ws = dtype.isQuantized()
                    ? quantizedCopies(arena, dtype, rows, cols)
                    : TensorBench.copies(arena, dtype, rows, cols);
            System.out.printf("%d threads, %s, %s (the second of two sweeps: C2 has compiled every path)%n", threads,
                    ws[0], transposed ? "y = x·Wᵀ" : "y = x·W");
            for (int pass = 0; pass < 2; pass++) {
                for (int n : new int[] {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64}) {
                    sweep(pool, ws, n, transposed, pass == 1);
                }
            }
        }
    }

    private static void sweep(Parallel pool, WeightMatrix[] ws, int n, boolean transposed, boolean print) {
        final float[] x = new float[n * 2560];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.sin(i);
        }
        final float[] y = new float[n * 6826];
        final long warmUntil = System.nanoTime() + 1_000_000_000L;
        for (int k = 0; System.nanoTime() < warmUntil; k++) {
            product(pool, ws[k % ws.length], x, n, y, transposed);
        }
        final int reps = 20;
        final long start = System.nanoTime();
        for (int r = 0; r < reps; r++) {
            product(pool, ws[r % ws.length], x, n, y, transposed);
        }
        final double ms = (System.nanoTime() - start) / 1e6 / reps;
        if (print) {
            System.out.printf("n=%3d  %7.2f ms per product  %6.3f ms per row%n", n, ms, ms / n);
        }
    }

    /** Copies of one matrix of N(0,1) rows quantized to Q8_0 or Q4_0, 256 MiB in all. */
    private static WeightMatrix[] quantizedCopies(Arena arena, DType dtype, int rows, int cols) {
        final long rowBytes = Quantizer.rowBytes(dtype, cols);
        final MemorySegment first = arena.allocate(rowBytes * rows, 64);
        final Random rnd = new Random(1);
        final float[] src = new float[cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                src[c] = (float) rnd.nextGaussian();
            }
            Quantizer.quantizeRow(dtype, src, 0, cols, first, r * rowBytes);
        }
        final WeightMatrix[] ws = new WeightMatrix[(int) Math.max(2, (256L << 20) / (rowBytes * rows) + 1)];
        for (int i = 0; i < ws.length; i++) {
            final MemorySegment data = i == 0 ? first : arena.allocate(rowBytes * rows, 64).copyFrom(first);
            ws[i] = WeightMatrix.of(new TensorInfo(dtype + "[" + rows + "," + cols + "]", dtype,
                    new long[] {rows, cols}, data, "bench"));
        }
        return ws;
    }

    private static void product(Parallel pool, WeightMatrix w, float[] x, int n, float[] y, boolean transposed) {
        if (transposed) {
            w.multiplyTransposed(pool, x, n, y);
        } else {
            w.multiply(pool, x, n, y);
        }
    }
}
