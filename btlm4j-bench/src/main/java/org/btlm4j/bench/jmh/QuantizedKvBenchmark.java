package org.btlm4j.bench.jmh;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.btlm4j.checkpoint.DType;
import org.btlm4j.tensor.BlockVectors;
import org.btlm4j.tensor.Quantizer;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Attention over a quantized KV cache for the heads of one BTLM-3B layer at 8,000 positions
 * (32 heads of 80 dimensions, one thread): the scores as axpys over each dimension's run of keys,
 * the output as dot products over each dimension's run of values — one dimension per call
 * ({@code perDimension}) or four per pass ({@code fourDimensions}, what the model uses). Four
 * layers' caches (68 MB at q8_0) are cycled so the blocks come from memory, as in decoding.
 * Run with {@code ./btlm jmh QuantizedKvBenchmark}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class QuantizedKvBenchmark {
    private static final int HEADS = 32;
    private static final int DIMS = 80;
    private static final int POSITIONS = 8000;
    private static final int CAPACITY = 8192;
    private static final int LAYERS = 4;

    @Param({"Q8_0", "Q4_0"})
    public String kv;

    private DType type;
    private int stride;
    private byte[][] keys;
    private byte[][] values;
    private float[] q;
    private float[] scores;
    private float[] out;
    private int layer;

    @Setup
    public void setup() {
        type = DType.valueOf(kv);
        stride = BlockVectors.bytes(type, CAPACITY);
        Random r = new Random(7);
        keys = new byte[LAYERS][];
        values = new byte[LAYERS][];
        float[] row = new float[CAPACITY];
        for (int l = 0; l < LAYERS; l++) {
            keys[l] = new byte[HEADS * DIMS * stride];
            values[l] = new byte[HEADS * DIMS * stride];
            for (int i = 0; i < HEADS * DIMS; i++) {
                for (int j = 0; j < CAPACITY; j++) {
                    row[j] = (float) r.nextGaussian();
                }
                Quantizer.quantizeRow(type, row, 0, CAPACITY, MemorySegment.ofArray(keys[l]), (long) i * stride);
                for (int j = 0; j < CAPACITY; j++) {
                    row[j] = (float) r.nextGaussian();
                }
                Quantizer.quantizeRow(type, row, 0, CAPACITY, MemorySegment.ofArray(values[l]), (long) i * stride);
            }
        }
        q = new float[HEADS * DIMS];
        for (int i = 0; i < q.length; i++) {
            q[i] = (float) r.nextGaussian() * 0.1f;
        }
        scores = new float[POSITIONS];
        out = new float[HEADS * DIMS];
    }

    /** One layer's heads, one dimension per kernel call. */
    @Benchmark
    public float[] perDimension() {
        byte[] k = keys[layer];
        byte[] v = values[layer];
        layer = (layer + 1) % LAYERS;
        for (int h = 0; h < HEADS; h++) {
            Arrays.fill(scores, 0f);
            for (int d = 0; d < DIMS; d++) {
                BlockVectors.axpy(type, q[h * DIMS + d], k, (h * DIMS + d) * stride, scores, 0, POSITIONS);
            }
            for (int d = 0; d < DIMS; d++) {
                out[h * DIMS + d] = BlockVectors.dot(type, scores, 0, v, (h * DIMS + d) * stride, POSITIONS);
            }
        }
        return out;
    }

    /** One layer's heads, four dimensions per kernel call. */
    @Benchmark
    public float[] fourDimensions() {
        byte[] k = keys[layer];
        byte[] v = values[layer];
        layer = (layer + 1) % LAYERS;
        for (int h = 0; h < HEADS; h++) {
            Arrays.fill(scores, 0f);
            for (int d = 0; d < DIMS; d += BlockVectors.GROUP) {
                BlockVectors.axpy4(type, q, h * DIMS + d, k, (h * DIMS + d) * stride, stride, scores, 0, POSITIONS);
            }
            for (int d = 0; d < DIMS; d += BlockVectors.GROUP) {
                BlockVectors.dot4(type, scores, 0, v, (h * DIMS + d) * stride, stride, POSITIONS, out, h * DIMS + d);
            }
        }
        return out;
    }
}
