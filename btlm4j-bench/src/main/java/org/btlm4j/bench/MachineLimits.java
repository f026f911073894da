package org.btlm4j.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.btlm4j.tensor.Parallel;

/**
 * The two limits a forward pass runs into, measured in Java on this machine in the same run as the
 * benchmark: sequential read bandwidth (decode reads every weight once per token) and the FMA
 * rate (prefill is matrix-matrix work).
 */
public final class MachineLimits {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    private MachineLimits() {
    }

    /**
     * Best of {@code reps} sequential reads of a {@code bytes}-sized off-heap buffer (larger than
     * every cache), split over the pool's threads, in GB/s (10^9 bytes).
     */
    public static double readBandwidthGBs(Parallel pool, long bytes, int reps) {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment seg = arena.allocate(bytes, 2L << 20);
            // The same backing the --no-mmap weights get: transparent huge pages where Linux allows.
            org.btlm4j.checkpoint.InMemoryCopy.adviseHugePages(seg);
            // Touch every page with non-zero data so the reads below hit real memory.
            long floats = bytes / 4;
            int threads = pool.threads();
            pool.forRange(threads, (from, to) -> {
                for (int t = from; t < to; t++) {
                    long a = floats * t / threads;
                    long b = floats * (t + 1) / threads;
                    for (long i = a; i < b; i++) {
                        seg.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i, (i & 1023) * 1e-3f);
                    }
                }
            });
            double best = 0;
            float[] sink = new float[threads];
            for (int r = 0; r < reps; r++) {
                long start = System.nanoTime();
                pool.forRange(threads, (from, to) -> {
                    for (int t = from; t < to; t++) {
                        long a = bytes * t / threads / 256 * 256;
                        long b = t == threads - 1 ? bytes : bytes * (t + 1) / threads / 256 * 256;
                        sink[t] = sum(seg, a, b);
                    }
                });
                double s = (System.nanoTime() - start) / 1e9;
                best = Math.max(best, bytes / s / 1e9);
            }
            if (Float.isNaN(sink[0])) {
                throw new IllegalStateException("unexpected NaN");
            }
            return best;
        }
    }

    /** Sums [from, to) in 1 MiB slices: int-indexed inner loops let C2 drop the bounds checks. */
    private static float sum(MemorySegment seg, long from, long to) {
        final int vb = F.vectorByteSize();
        final int step = vb * 4;
        float total = 0;
        for (long block = from; block < to; block += 1 << 20) {
            MemorySegment s = seg.asSlice(block, Math.min(1 << 20, to - block));
            int n = (int) s.byteSize();
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector a2 = FloatVector.zero(F);
            FloatVector a3 = FloatVector.zero(F);
            for (int i = 0; i + step <= n; i += step) {
                a0 = a0.add(FloatVector.fromMemorySegment(F, s, i, ByteOrder.nativeOrder()));
                a1 = a1.add(FloatVector.fromMemorySegment(F, s, i + vb, ByteOrder.nativeOrder()));
                a2 = a2.add(FloatVector.fromMemorySegment(F, s, i + 2 * vb, ByteOrder.nativeOrder()));
                a3 = a3.add(FloatVector.fromMemorySegment(F, s, i + 3 * vb, ByteOrder.nativeOrder()));
            }
            total += a0.add(a1).add(a2).add(a3).reduceLanes(VectorOperators.ADD);
        }
        return total;
    }

    /** Peak float32 FMA rate over the pool's threads, in GFLOP/s (an FMA counts as 2 FLOPs). */
    public static double fmaPeakGflops(Parallel pool, int reps) {
        final int iters = 20_000_000;
        int threads = pool.threads();
        float[] sink = new float[threads];
        double best = 0;
        for (int r = 0; r < reps; r++) {
            long start = System.nanoTime();
            pool.forRange(threads, (from, to) -> {
                for (int t = from; t < to; t++) {
                    sink[t] = fmaLoop(iters);
                }
            });
            double s = (System.nanoTime() - start) / 1e9;
            best = Math.max(best, 2.0 * 12 * F.length() * (double) iters * threads / s / 1e9);
        }
        if (Float.isNaN(sink[0])) {
            throw new IllegalStateException("unexpected NaN");
        }
        return best;
    }

    /** Twelve independent FMA chains: enough to cover the FMA latency on two ports. */
    private static float fmaLoop(int iters) {
        FloatVector m = FloatVector.broadcast(F, 0.999999f);
        FloatVector c = FloatVector.broadcast(F, 1e-7f);
        FloatVector a0 = FloatVector.broadcast(F, 1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
        FloatVector a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (int i = 0; i < iters; i++) {
            a0 = a0.fma(m, c);
            a1 = a1.fma(m, c);
            a2 = a2.fma(m, c);
            a3 = a3.fma(m, c);
            a4 = a4.fma(m, c);
            a5 = a5.fma(m, c);
            a6 = a6.fma(m, c);
            a7 = a7.fma(m, c);
            a8 = a8.fma(m, c);
            a9 = a9.fma(m, c);
            a10 = a10.fma(m, c);
            a11 = a11.fma(m, c);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).add(a8).add(a9).add(a10).add(a11)
                .reduceLanes(VectorOperators.ADD);
    }
}
