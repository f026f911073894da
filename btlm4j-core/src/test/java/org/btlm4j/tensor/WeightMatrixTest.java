package org.btlm4j.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import org.btlm4j.BtlmException;
import org.btlm4j.checkpoint.DType;
import org.btlm4j.checkpoint.TensorInfo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

class WeightMatrixTest {

    private static final int[] SIZES = {1, 7, 80, 170, 6826};
    private static final int[] TOKENS = {1, 3, 8, 13, 17};
    /** float32 unit roundoff, 2^-24. */
    private static final double U = 0x1p-24;
    /** Marks output slots a kernel must write (NaN) and must not touch (the value after the end). */
    static final float SENTINEL = -12345.5f;

    private static Arena arena;
    private static Parallel single;
    private static Parallel three;

    @BeforeAll
    static void setUp() {
        arena = Arena.ofShared(); // workers read the weights: a confined segment would refuse them
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
        for (DType dtype : List.of(DType.F32, DType.F16, DType.BF16)) {
            for (int rows : SIZES) {
                for (int cols : SIZES) {
                    if (rows == 6826 && cols == 6826) {
                        continue; // 47M weights: the reference alone would take far too long
                    }
                    cases.add(Arguments.of(dtype, rows, cols, (k++ % 2 == 0) ? 2 : 6));
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} [{1}, {2}] at +{3}")
    @MethodSource("shapes")
    void productsMatchTheReference(DType dtype, int rows, int cols, int misalign) {
        final Random rnd = new Random(31L * rows + cols + dtype.ordinal());
        final TensorInfo t = RandomTensors.random(arena, "w", dtype, rows, cols, misalign, rnd);
        final WeightMatrix w = WeightMatrix.of(t);
        assertEquals(dtype, w.dtype());
        assertEquals(rows, w.rows());
        assertEquals(cols, w.cols());
        for (int n : TOKENS) {
            // the big shapes get fewer token counts: the double reference costs rows·cols·n
            if ((long) rows * cols > 100_000 && (n == 8 || n == 17)) {
                continue;
            }
            // y = x·W
            final float[] x = RandomTensors.gaussian(rnd, n * rows);
            final float[] expected = new float[n * cols];
            final float[] magnitude = new float[n * cols];
            ReferenceKernels.multiply(t, x, n, expected);
            ReferenceKernels.multiplyMagnitude(t, x, n, magnitude);
            float[] first = null;
            for (Parallel pool : List.of(single, three)) {
                final float[] y = output(n * cols);
                w.multiply(pool, x, n, y);
                assertClose(expected, magnitude, rows, y, n * cols, "multiply " + w + " n=" + n + " threads=" + pool.threads());
                if (first == null) {
                    first = y;
                } else if (n > WeightMatrix.SMALL_BATCH) {
                    // prefill splits columns, which leaves each sum's order alone: same bits for any
                    // thread count (decode and small batches split rows into partial sums, so they
                    // may differ in ulps)
                    assertArrayEquals(first, y, "multiply depends on the thread count");
                }
            }
            // y = x·Wᵀ
            final float[] xt = RandomTensors.gaussian(rnd, n * cols);
            final float[] expectedT = new float[n * rows];
            final float[] magnitudeT = new float[n * rows];
            ReferenceKernels.multiplyTransposed(t, xt, n, expectedT);
            ReferenceKernels.multiplyTransposedMagnitude(t, xt, n, magnitudeT);
            float[] firstT = null;
            for (Parallel pool : List.of(single, three)) {
                final float[] y = output(n * rows);
                w.multiplyTransposed(pool, xt, n, y);
                assertClose(expectedT, magnitudeT, cols, y, n * rows,
                        "multiplyTransposed " + w + " n=" + n + " threads=" + pool.threads());
                if (firstT == null) {
                    firstT = y;
                } else {
                    assertArrayEquals(firstT, y, "multiplyTransposed depends on the thread count");
                }
            }
        }
        // rows convert exactly: the conversion to float is exact for all three formats
        final float[] expectedRow = new float[cols + 3];
        final float[] row = new float[cols + 3];
        for (int r : new int[] {0, rows / 2, rows - 1}) {
            ReferenceKernels.row(t, r, expectedRow, 3);
            Arrays.fill(row, SENTINEL);
            w.row(r, row, 3);
            for (int c = 0; c < cols; c++) {
                assertEquals(Float.floatToRawIntBits(expectedRow[3 + c]), Float.floatToRawIntBits(row[3 + c]),
                        () -> "row of " + w);
            }
            assertEquals(SENTINEL, row[2], "row wrote before its offset");
        }
    }

    /** A NaN-filled output with a sentinel after it: every slot must be written and nothing beyond. */
    static float[] output(int len) {
        final float[] y = new float[len + 1];
        Arrays.fill(y, Float.NaN);
        y[len] = SENTINEL;
        return y;
    }

    /**
     * The kernels sum {@code terms} float32 products with one rounding each, in an order of their
     * own; the reference sums exactly (in double). A float32 sum's error is bounded by
     * (number of terms)·u·Σ|terms|, and for terms of random sign it grows like √terms·u·Σ|terms| in
     * practice; 8·√terms·u·Σ|terms| has ample margin for that and is still far below the size of
     * one term (Σ|terms|/terms), so a lost or doubled product would fail.
     */
    static void assertClose(float[] expected, float[] magnitude, int terms, float[] actual, int len, String what) {
        assertEquals(SENTINEL, actual[len], what + " wrote past its output");
        for (int i = 0; i < len; i++) {
            final double tolerance = 8 * Math.sqrt(terms) * U * magnitude[i] + Float.MIN_NORMAL;
            final double error = Math.abs((double) actual[i] - expected[i]);
            if (!(error <= tolerance)) { // also catches NaN: an unwritten slot
                fail(what + ": element " + i + " is " + actual[i] + ", expected " + expected[i] + " ± " + tolerance);
            }
        }
    }

    @Test
    void f16ConvertsAllBitPatternsExactly() {
        final short[] bits = new short[1 << 16];
        for (int i = 0; i < bits.length; i++) {
            bits[i] = (short) i;
        }
        // one long row: whole vectors; 24 columns: the overlapping last window; 7 columns: scalar code
        for (int[] shape : new int[][] {{1, 1 << 16}, {(1 << 16) / 24 + 1, 24}, {(1 << 16) / 7 + 1, 7}}) {
            final short[] padded = Arrays.copyOf(bits, shape[0] * shape[1]);
            final WeightMatrix w = WeightMatrix.of(RandomTensors.raw16(arena, "all", DType.F16, shape[0], shape[1], padded, 6));
            final float[] out = new float[padded.length];
            for (int r = 0; r < shape[0]; r++) {
                w.row(r, out, r * shape[1]);
            }
            for (int i = 0; i < padded.length; i++) {
                final float expected = Float.float16ToFloat(padded[i]);
                final int e = Float.floatToRawIntBits(expected);
                final int a = Float.floatToRawIntBits(out[i]);
                final int index = i;
                assertEquals(e, a, () -> String.format("F16 %04x: expected %08x (%s), got %08x (%s)",
                        padded[index] & 0xFFFF, e, expected, a, out[index]));
            }
        }
    }

    @Test
    void bf16ConvertsAllBitPatternsExactly() {
        final short[] bits = new short[1 << 16];
        for (int i = 0; i < bits.length; i++) {
            bits[i] = (short) i;
        }
        final WeightMatrix w = WeightMatrix.of(RandomTensors.raw16(arena, "all", DType.BF16, 1, 1 << 16, bits, 2));
        final float[] out = new float[bits.length];
        w.row(0, out, 0);
        for (int i = 0; i < bits.length; i++) {
            assertEquals(i << 16, Float.floatToRawIntBits(out[i]));
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"})
    void productsMatchOnHeapSegmentsToo(DType dtype) {
        // a heap segment (e.g. a small test checkpoint read into memory) must work as well
        final Random rnd = new Random(7);
        final int rows = 33;
        final int cols = 45;
        final java.lang.foreign.MemorySegment heap =
                java.lang.foreign.MemorySegment.ofArray(new byte[rows * cols * dtype.bytes() + 2]).asSlice(2);
        for (int i = 0; i < rows * cols; i++) {
            RandomTensors.put(heap, dtype, i, RandomTensors.gaussianNonZero(rnd));
        }
        final TensorInfo t = new TensorInfo("heap", dtype, new long[] {rows, cols}, heap, "test");
        final float[] x = RandomTensors.gaussian(rnd, 5 * rows);
        final float[] expected = new float[5 * cols];
        final float[] magnitude = new float[5 * cols];
        ReferenceKernels.multiply(t, x, 5, expected);
        ReferenceKernels.multiplyMagnitude(t, x, 5, magnitude);
        final float[] y = output(5 * cols);
        WeightMatrix.of(t).multiply(three, x, 5, y);
        assertClose(expected, magnitude, rows, y, 5 * cols, "heap multiply");
    }

    @Test
    void rejectsOtherRanksAndTypesNamingTheTensor() {
        final TensorInfo vector = new TensorInfo("ln.weight", DType.F32, new long[] {4},
                RandomTensors.allocate(arena, 16, 0), "model.safetensors");
        final BtlmException rank = assertThrows(BtlmException.class, () -> WeightMatrix.of(vector));
        assertTrue(rank.getMessage().contains("ln.weight"), rank.getMessage());

        final TensorInfo ints = new TensorInfo("ids", DType.I32, new long[] {2, 2},
                RandomTensors.allocate(arena, 16, 0), "model.safetensors");
        final BtlmException type = assertThrows(BtlmException.class, () -> WeightMatrix.of(ints));
        assertTrue(type.getMessage().contains("ids") && type.getMessage().contains("I32"), type.getMessage());
    }

    @Test
    void rejectsShortOperands() {
        final WeightMatrix w = WeightMatrix.of(RandomTensors.random(arena, "w", DType.BF16, 8, 16, 0, new Random(1)));
        assertThrows(IllegalArgumentException.class, () -> w.multiply(single, new float[15], 2, new float[32]));
        assertThrows(IllegalArgumentException.class, () -> w.multiply(single, new float[16], 2, new float[31]));
        assertThrows(IllegalArgumentException.class, () -> w.multiplyTransposed(single, new float[31], 2, new float[16]));
        assertThrows(IndexOutOfBoundsException.class, () -> w.row(8, new float[16], 0));
        assertThrows(IndexOutOfBoundsException.class, () -> w.row(0, new float[16], 1));
    }

    @Test
    void workerFailureOnConfinedSegmentPropagates() {
        // a confined segment cannot be read by the workers; the failure must reach the caller
        try (Arena confined = Arena.ofConfined()) {
            final TensorInfo t = RandomTensors.random(confined, "w", DType.BF16, 256, 512, 2, new Random(3));
            final WeightMatrix w = WeightMatrix.of(t);
            final RuntimeException e = assertThrows(RuntimeException.class,
                    () -> w.multiply(three, new float[256], 1, new float[512]));
            assertInstanceOf(WrongThreadException.class, e);
        }
    }
}
