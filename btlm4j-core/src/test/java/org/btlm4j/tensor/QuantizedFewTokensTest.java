package org.btlm4j.tensor;

import static org.btlm4j.tensor.WeightMatrixTest.assertClose;
import static org.btlm4j.tensor.WeightMatrixTest.output;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

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
 * y = x·Wᵀ for Q8_0 and Q4_0 weights and every token count from 1 to 13: one token (decode), the
 * few-token kernel (two tokens per pass over a row) up to {@link BlockQuantizedMatrix#FEW_TOKENS}
 * and the prefill tiles past it. Each is
 * compared with the float64 reference on random non-zero weights and inputs, with 1 and 3
 * threads, at widths with and without a partial last block; and each token of a batch with the
 * same token computed alone.
 */
class QuantizedFewTokensTest {

    private static final int[] COLS = {32, 33, 80, 2560, 6826};
    private static final int[] ROWS = {1, 3, 7};
    private static final int MAX_TOKENS = 13;

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
        final List<Arguments> cases = new ArrayList<>();
        int k = 0;
        for (DType type : List.of(DType.Q8_0, DType.Q4_0)) {
            for (int rows : ROWS) {
                for (int cols : COLS) {
                    cases.add(Arguments.of(type, rows, cols, (k++ % 2 == 0) ? 2 : 6));
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} [{1}, {2}] at +{3}")
    @MethodSource("shapes")
    void everyTokenCountMatchesTheReferenceAndDecode(DType type, int rows, int cols, int misalign) {
        final Random rnd = new Random(131L * rows + cols + type.ordinal());
        final TensorInfo t = QuantizedMatrixTest.quantized(arena, type, rows, cols, misalign, rnd);
        final WeightMatrix w = WeightMatrix.of(t);
        for (int n = 1; n <= MAX_TOKENS; n++) {
            final float[] x = new float[n * cols];
            for (int i = 0; i < x.length; i++) {
                x[i] = RandomTensors.gaussianNonZero(rnd);
            }
            final float[] expected = new float[n * rows];
            final float[] magnitude = new float[n * rows];
            ReferenceKernels.multiplyTransposed(t, x, n, expected);
            ReferenceKernels.multiplyTransposedMagnitude(t, x, n, magnitude);
            final String what = "multiplyTransposed " + w + " n=" + n;
            float[] first = null;
            for (Parallel pool : List.of(single, three)) {
                final float[] y = output(n * rows);
                w.multiplyTransposed(pool, x, n, y);
                assertClose(expected, magnitude, cols, y, n * rows, what + " threads=" + pool.threads());
                if (first == null) {
                    first = y;
                } else {
                    // whole rows per thread: a row's sums do not depend on the thread count
                    assertArrayEquals(first, y, what + " depends on the thread count");
                }
            }
            // each token alone (the decode kernel) agrees with its slot in the batch
            for (int k = 0; k < n; k++) {
                final float[] one = output(rows);
                w.multiplyTransposed(three, Arrays.copyOfRange(x, k * cols, (k + 1) * cols), 1, one);
                final float[] slotExpected = Arrays.copyOfRange(expected, k * rows, (k + 1) * rows);
                final float[] slotMagnitude = Arrays.copyOfRange(magnitude, k * rows, (k + 1) * rows);
                assertClose(slotExpected, slotMagnitude, cols, one, rows, what + " token " + k + " alone");
                final float[] slot = Arrays.copyOfRange(first, k * rows, (k + 1) * rows + 1);
                slot[rows] = one[rows]; // the sentinel
                // both within the reference's bound of each other: twice the bound around the decode value
                final float[] twice = new float[rows];
                for (int i = 0; i < rows; i++) {
                    twice[i] = 2 * slotMagnitude[i];
                }
                assertClose(Arrays.copyOf(one, rows), twice, cols, slot, rows, what + " token " + k + " in the batch vs alone");
            }
        }
    }
}
