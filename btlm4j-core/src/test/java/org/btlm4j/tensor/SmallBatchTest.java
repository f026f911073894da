package org.btlm4j.tensor;

import static org.btlm4j.tensor.WeightMatrixTest.assertClose;
import static org.btlm4j.tensor.WeightMatrixTest.SENTINEL;
import static org.btlm4j.tensor.WeightMatrixTest.output;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import org.btlm4j.checkpoint.DType;
import org.btlm4j.checkpoint.TensorInfo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The small-batch products (a few rows of x, one per sequence of a batched decode step) in every
 * weight format and both directions, against the scalar {@link ReferenceKernels} on random
 * non-zero inputs, and against the same rows computed inside a batch large enough to take the
 * prefill path.
 */
class SmallBatchTest {

    /** Row counts around the tile sizes and the small-batch limit. */
    private static final int[] TOKENS = {1, 2, 3, 5, 7, 12, 13, 17};
    /** Rows appended to reach the prefill path for the comparison with it. */
    private static final int PREFILL_TOKENS = 40;

    private static Arena arena;
    private static Parallel single;
    private static Parallel three;

    @BeforeAll
    static void setUp() {
        arena = Arena.ofShared(); // the pool's workers read the weights
        single = new Parallel(1);
        three = new Parallel(3);
    }

    @AfterAll
    static void tearDown() {
        single.close();
        three.close();
        arena.close();
    }

    static Stream<Arguments> shapes() {
        final int[][] dims = {{6826, 80}, {80, 6826}, {33, 2560}, {2560, 33}, {170, 1}, {1, 170}, {7, 33}};
        final List<Arguments> cases = new ArrayList<>();
        int k = 0;
        for (DType type : List.of(DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0)) {
            for (int[] d : dims) {
                cases.add(Arguments.of(type, d[0], d[1], (k++ % 2 == 0) ? 2 : 6));
            }
        }
        return cases.stream();
    }

    private static TensorInfo tensor(DType type, int rows, int cols, int misalign, Random rnd) {
        return type == DType.Q8_0 || type == DType.Q4_0
                ? QuantizedMatrixTest.quantized(arena, type, rows, cols, misalign, rnd)
                : RandomTensors.random(arena, "w", type, rows, cols, misalign, rnd);
    }

    @ParameterizedTest(name = "{0} [{1}, {2}] at +{3}")
    @MethodSource("shapes")
    void fewRowsMatchTheReferenceAndThePrefillPath(DType type, int rows, int cols, int misalign) {
        final Random rnd = new Random(97L * rows + cols + type.ordinal());
        final TensorInfo t = tensor(type, rows, cols, misalign, rnd);
        final WeightMatrix w = WeightMatrix.of(t);
        for (int n : TOKENS) {
            check(w, t, n, false, rows, cols, rnd);
            check(w, t, n, true, cols, rows, rnd);
        }
    }

    /** One direction: x [n, in] → y [n, out], with in × out = the weight's shape or its transpose. */
    private static void check(WeightMatrix w, TensorInfo t, int n, boolean transposed, int in, int out, Random rnd) {
        // the n rows first, then more rows so that the whole batch takes the prefill path
        final float[] big = RandomTensors.gaussian(rnd, PREFILL_TOKENS * in);
        final float[] x = Arrays.copyOf(big, n * in);
        final float[] expected = new float[n * out];
        final float[] magnitude = new float[n * out];
        if (transposed) {
            ReferenceKernels.multiplyTransposed(t, x, n, expected);
            ReferenceKernels.multiplyTransposedMagnitude(t, x, n, magnitude);
        } else {
            ReferenceKernels.multiply(t, x, n, expected);
            ReferenceKernels.multiplyMagnitude(t, x, n, magnitude);
        }
        final String what = (transposed ? "multiplyTransposed " : "multiply ") + w + " n=" + n;
        for (Parallel pool : List.of(single, three)) {
            final float[] y = output(n * out);
            product(w, pool, x, n, y, transposed);
            assertClose(expected, magnitude, in, y, n * out, what + " threads=" + pool.threads());
        }
        // the same rows inside a prefill-sized batch: the same values up to float rounding
        final float[] yBig = new float[PREFILL_TOKENS * out + 1];
        yBig[PREFILL_TOKENS * out] = SENTINEL;
        product(w, three, big, PREFILL_TOKENS, yBig, transposed);
        final float[] head = Arrays.copyOf(yBig, n * out + 1);
        head[n * out] = SENTINEL;
        assertClose(expected, magnitude, in, head, n * out, what + " inside a batch of " + PREFILL_TOKENS);
    }

    private static void product(WeightMatrix w, Parallel pool, float[] x, int n, float[] y, boolean transposed) {
        if (transposed) {
            w.multiplyTransposed(pool, x, n, y);
        } else {
            w.multiply(pool, x, n, y);
        }
    }
}
