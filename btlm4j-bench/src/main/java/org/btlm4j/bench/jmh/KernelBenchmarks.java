package org.btlm4j.bench.jmh;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.btlm4j.checkpoint.DType;
import org.btlm4j.checkpoint.TensorInfo;
import org.btlm4j.tensor.Parallel;
import org.btlm4j.tensor.VectorMath;
import org.btlm4j.tensor.WeightMatrix;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The kernels of one BTLM-3B layer at full size: decode matvec and prefill matmul per weight
 * format (the MLP up projection [2560, 6826] and the down projection [6826, 2560]), the tied head
 * as x·Wᵀ, layer norm and attention's dot/axpy. Run with {@code ./btlm jmh} (see README).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class KernelBenchmarks {

    @Param({"BF16", "F16", "F32"})
    public String dtype;

    @Param({"2"})
    public int threads;

    private Arena arena;
    private Parallel pool;
    private WeightMatrix up; // [2560, 6826]
    private WeightMatrix down; // [6826, 2560]
    private float[] x1;
    private float[] x64;
    private float[] xInner1;
    private float[] y1;
    private float[] y64;
    private float[] yDown1;
    private float[] ln;
    private float[] lnW;
    private float[] lnB;
    private float[] lnOut;

    @Setup(Level.Trial)
    public void setup() {
        arena = Arena.ofShared();
        pool = new Parallel(threads);
        DType t = DType.valueOf(dtype);
        Random r = new Random(42);
        up = WeightMatrix.of(random("up", t, 2560, 6826, r));
        down = WeightMatrix.of(random("down", t, 6826, 2560, r));
        x1 = gaussian(r, 2560);
        x64 = gaussian(r, 64 * 2560);
        xInner1 = gaussian(r, 6826);
        y1 = new float[6826];
        y64 = new float[64 * 6826];
        yDown1 = new float[2560];
        ln = gaussian(r, 2560);
        lnW = gaussian(r, 2560);
        lnB = gaussian(r, 2560);
        lnOut = new float[2560];
    }

    private TensorInfo random(String name, DType t, int rows, int cols, Random r) {
        long n = (long) rows * cols;
        MemorySegment seg = arena.allocate(n * t.bytes(), 64);
        for (long i = 0; i < n; i++) {
            float v = (float) (r.nextGaussian() * 0.02);
            switch (t) {
                case F32 -> seg.setAtIndex(ValueLayout.JAVA_FLOAT, i, v);
                case F16 -> seg.setAtIndex(ValueLayout.JAVA_SHORT, i, Float.floatToFloat16(v));
                default -> seg.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) (Float.floatToRawIntBits(v) >>> 16));
            }
        }
        return new TensorInfo(name, t, new long[] {rows, cols}, seg, "jmh");
    }

    private static float[] gaussian(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        pool.close();
        arena.close();
    }

    /** Decode: one token through the MLP up projection (35 MB of BF16). */
    @Benchmark
    public float[] matvecUp() {
        up.multiply(pool, x1, 1, y1);
        return y1;
    }

    /** Decode: one token through the MLP down projection, rows 6826 long. */
    @Benchmark
    public float[] matvecDown() {
        down.multiply(pool, xInner1, 1, yDown1);
        return yDown1;
    }

    /** Prefill: 64 tokens through the up projection (2.2 GFLOP). */
    @Benchmark
    public float[] matmulUp64() {
        up.multiply(pool, x64, 64, y64);
        return y64;
    }

    /** x·Wᵀ as for the tied head, on the down matrix's [6826, 2560] layout. */
    @Benchmark
    public float[] matvecTransposed() {
        down.multiplyTransposed(pool, x1, 1, y1);
        return y1;
    }

    @Benchmark
    public float[] layerNorm() {
        VectorMath.layerNorm(ln, 0, 2560, lnW, lnB, 1e-5f, lnOut, 0);
        return lnOut;
    }

    /** Attention's inner loop for one head at 2k positions: 2048 dot products of 80 and 2048 axpys. */
    @Benchmark
    public float attentionHead2k() {
        float s = 0;
        for (int j = 0; j < 2048; j++) {
            s += VectorMath.dot(x64, (j % 64) * 2560, x64, (j * 80) % (64 * 2560 - 80), 80);
            VectorMath.axpy(0.001f, x64, (j * 80) % (64 * 2560 - 80), lnOut, 0, 80);
        }
        return s;
    }
}
