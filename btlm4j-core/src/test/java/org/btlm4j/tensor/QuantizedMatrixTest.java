package org.btlm4j.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import org.btlm4j.checkpoint.DType;
import org.btlm4j.checkpoint.TensorInfo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/** Q8_0 and Q4_0 weight matrices and the quantizer, against {@link ReferenceKernels} and ggml. */
class QuantizedMatrixTest {

    private static final int[] SIZES = {1, 7, 32, 33, 80, 170, 6826};
    private static final int[] TOKENS = {1, 3, 8, 13};
    /** float32 unit roundoff, 2^-24. */
    private static final double U = 0x1p-24;
    /** Marks output slots a kernel must write (NaN) and must not touch (the value after the end). */
    private static final float SENTINEL = -12345.5f;
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

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

    /** Quantizes N(0,1) rows into a [rows, cols] tensor starting {@code misalign} bytes past a 64-byte boundary. */
    static TensorInfo quantized(DType type, int rows, int cols, int misalign, Random rnd) {
        return quantized(arena, type, rows, cols, misalign, rnd);
    }

    /** As {@link #quantized(DType, int, int, int, Random)}, allocated in {@code arena}. */
    static TensorInfo quantized(Arena arena, DType type, int rows, int cols, int misalign, Random rnd) {
        final long rowBytes = Quantizer.rowBytes(type, cols);
        final MemorySegment data = RandomTensors.allocate(arena, rowBytes * rows, misalign);
        final float[] src = RandomTensors.gaussian(rnd, cols);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                src[c] = RandomTensors.gaussianNonZero(rnd);
            }
            Quantizer.quantizeRow(type, src, 0, cols, data, r * rowBytes);
        }
        return new TensorInfo("w", type, new long[] {rows, cols}, data, "test");
    }

    static Stream<Arguments> shapes() {
        final List<Arguments> cases = new ArrayList<>();
        int k = 0;
        for (DType type : List.of(DType.Q8_0, DType.Q4_0)) {
            for (int rows : SIZES) {
                for (int cols : SIZES) {
                    // 6826 only against narrow partners: the double reference costs rows·cols·n
                    if ((long) rows * cols > 250_000) {
                        continue;
                    }
                    cases.add(Arguments.of(type, rows, cols, (k++ % 2 == 0) ? 2 : 6));
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} [{1}, {2}] at +{3}")
    @MethodSource("shapes")
    void productsMatchTheReference(DType type, int rows, int cols, int misalign) {
        final Random rnd = new Random(31L * rows + cols + type.ordinal());
        final TensorInfo t = quantized(type, rows, cols, misalign, rnd);
        final WeightMatrix w = WeightMatrix.of(t);
        assertEquals(type, w.dtype());
        assertEquals(rows, w.rows());
        assertEquals(cols, w.cols());
        for (int n : TOKENS) {
            if ((long) rows * cols > 100_000 && n == 8) {
                continue;
            }
            // y = x·Wᵀ, the model's product
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
                    // whole rows per thread: the same bits for any thread count
                    assertArrayEquals(firstT, y, "multiplyTransposed depends on the thread count");
                }
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
                    // fewer tokens split rows into partial sums, as decode does: ulps may differ
                    assertArrayEquals(first, y, "multiply depends on the thread count");
                }
            }
        }
        // rows dequantize exactly: d·q is exact in float32 (11 + 8 significant bits)
        final float[] expectedRow = new float[cols + 3];
        final float[] row = new float[cols + 4];
        for (int r : new int[] {0, rows / 2, rows - 1}) {
            ReferenceKernels.row(t, r, expectedRow, 3);
            Arrays.fill(row, SENTINEL);
            w.row(r, row, 3);
            for (int c = 0; c < cols; c++) {
                assertEquals(Float.floatToRawIntBits(expectedRow[3 + c]), Float.floatToRawIntBits(row[3 + c]),
                        () -> "row of " + w);
            }
            assertEquals(SENTINEL, row[2], "row wrote before its offset");
            assertEquals(SENTINEL, row[3 + cols], "row wrote past its end");
        }
    }

    private static float[] output(int len) {
        final float[] y = new float[len + 1];
        Arrays.fill(y, Float.NaN);
        y[len] = SENTINEL;
        return y;
    }

    /**
     * As in WeightMatrixTest: the reference sums the dequantized products exactly (in double);
     * the kernels round each product or FMA once, plus, in the decode kernels, once more per
     * block when the block's sum Σq·x is scaled by d (a relative error of u on a partial sum, no
     * larger than the others). A float32 sum's error grows like √terms·u·Σ|terms| for random
     * signs; 8·√terms·u·Σ|terms| leaves ample margin and stays far below one term's size, so a
     * lost, doubled or misplaced product fails.
     */
    private static void assertClose(float[] expected, float[] magnitude, int terms, float[] actual, int len, String what) {
        assertEquals(SENTINEL, actual[len], what + " wrote past its output");
        for (int i = 0; i < len; i++) {
            final double tolerance = 8 * Math.sqrt(terms) * U * magnitude[i] + Float.MIN_NORMAL;
            final double error = Math.abs((double) actual[i] - expected[i]);
            if (!(error <= tolerance)) { // also catches NaN: an unwritten slot
                fail(what + ": element " + i + " is " + actual[i] + ", expected " + expected[i] + " ± " + tolerance);
            }
        }
    }

    // ---- the quantizer ----

    /**
     * Blocks quantized by ggml's own quantize_row_q8_0_ref / quantize_row_q4_0_ref (compiled from
     * ggml-quants.c with gcc, fp16 by _Float16 round-to-nearest-even), as hex: block 0..31;
     * −(0..31) (Q4_0: the negative max flips d's sign); −5, 5, ... (Q4_0: the first of two equal
     * magnitudes sets the sign, and the other one clips to 15); all zeros (d = 0, Q4_0 nibbles 8);
     * halfway cases ±2.5, ±0.5, ±1.5 then zeros (Q8_0: roundf rounds halves away from zero).
     */
    private static final float[][] KNOWN_INPUT = {
        range(1), range(-1), tieBlock(), new float[32], halves()};
    private static final String[] KNOWN_Q8_0 = {
        "d0330004080c1014191d2125292d3135393d42464a4e52565a5e62666b6f73777b7f",
        "d03300fcf8f4f0ece7e3dfdbd7d3cfcbc7c3bebab6b2aeaaa6a29e9a95918d898581",
        "0a29817f81a1c0e00020405f7f81a1c0e00020405f7f81a1c0e00020405f7f81a1c0",
        "00000000000000000000000000000000000000000000000000000000000000000000",
        "0a257f8119e74cb40000000000000000000000000000000000000000000000000000"};
    private static final String[] KNOWN_Q4_0 = {
        "c0c348483737373726262626151515150404",
        "c04348483737373726262626151515150404",
        "0039a0cfe0f20426486a8caecfe0f2042648",
        "008088888888888888888888888888888888",
        "00b5808f868a838d88888888888888888888"};

    private static float[] range(int sign) {
        final float[] b = new float[32];
        for (int j = 0; j < 32; j++) {
            b[j] = sign * j;
        }
        return b;
    }

    private static float[] tieBlock() {
        final float[] b = new float[32];
        b[0] = -5;
        b[1] = 5;
        for (int j = 0; j < 30; j++) {
            b[2 + j] = 1.25f * (j % 9 - 4);
        }
        return b;
    }

    private static float[] halves() {
        final float[] b = new float[32];
        System.arraycopy(new float[] {2.5f, -2.5f, 0.5f, -0.5f, 1.5f, -1.5f}, 0, b, 0, 6);
        return b;
    }

    @Test
    void quantizerMatchesGgmlBitForBit() {
        for (int i = 0; i < KNOWN_INPUT.length; i++) {
            for (DType type : List.of(DType.Q8_0, DType.Q4_0)) {
                final MemorySegment out = RandomTensors.allocate(arena, type.blockBytes(), 3);
                Quantizer.quantizeRow(type, KNOWN_INPUT[i], 0, 32, out, 0);
                final String expected = (type == DType.Q8_0 ? KNOWN_Q8_0 : KNOWN_Q4_0)[i];
                assertEquals(expected, HexFormat.of().formatHex(out.toArray(ValueLayout.JAVA_BYTE)),
                        type + " block " + i);
            }
        }
        // and the matrices read ggml's layout: block 0..31 as Q8_0 is d·q with d = fp16(31/127)
        final MemorySegment q8 = RandomTensors.allocate(arena, 34, 1);
        q8.copyFrom(MemorySegment.ofArray(HexFormat.of().parseHex(KNOWN_Q8_0[0])));
        final float[] row = new float[32];
        WeightMatrix.of(new TensorInfo("k", DType.Q8_0, new long[] {1, 32}, q8, "test")).row(0, row, 0);
        final float d8 = Float.float16ToFloat((short) 0x33D0);
        assertEquals(0, row[0], 0); // −0 with a negative d, as ggml gives
        assertEquals(d8 * 4, row[1]);
        assertEquals(d8 * 127, row[31]);
        // Q4_0 of 0..31: d = −3.875; element 0 is 0x48's low nibble 8 → 0, element 16 its high nibble 4
        final MemorySegment q4 = RandomTensors.allocate(arena, 18, 5);
        q4.copyFrom(MemorySegment.ofArray(HexFormat.of().parseHex(KNOWN_Q4_0[0])));
        WeightMatrix.of(new TensorInfo("k", DType.Q4_0, new long[] {1, 32}, q4, "test")).row(0, row, 0);
        assertEquals(0, row[0], 0); // −0 with a negative d, as ggml gives
        assertEquals(-3.875f * (4 - 8), row[16]);
        assertEquals(-3.875f * (0 - 8), row[31]); // the max, 31, comes back exactly
        assertEquals(-3.875f * (4 - 8), row[15]);
    }

    @Test
    void rowBytesCountsWholeBlocks() {
        assertEquals(0, Quantizer.rowBytes(DType.Q8_0, 0));
        assertEquals(34, Quantizer.rowBytes(DType.Q8_0, 1));
        assertEquals(34, Quantizer.rowBytes(DType.Q8_0, 32));
        assertEquals(68, Quantizer.rowBytes(DType.Q8_0, 33));
        assertEquals(18 * 214, Quantizer.rowBytes(DType.Q4_0, 6826));
        assertEquals(DType.Q4_0.byteSize(new long[] {3, 6826}), 3 * Quantizer.rowBytes(DType.Q4_0, 6826));
        assertThrows(IllegalArgumentException.class, () -> Quantizer.rowBytes(DType.BF16, 32));
    }

    /**
     * Round trip: with d the float scale ggml computes and d' = fp16(d) the stored one,
     * |x − d'q| ≤ |x − dq| + |q|·|d − d'|. Q8_0 rounds x/d to nearest, so |x − dq| ≤ |d|/2 (plus
     * the rounding of x·(1/d), at most a few ulps of q, covered by a 1e-5·|d| slack). Q4_0
     * truncates x/d + 8.5, also ≤ |d|/2 off, except that q clips to 15: values with x/d ≥ 7.5
     * (only possible with the sign opposite to the max, up to x/d = 8) are up to |d| off.
     */
    @ParameterizedTest
    @EnumSource(names = {"Q8_0", "Q4_0"})
    void roundTripErrorIsBounded(DType type) {
        final Random rnd = new Random(7 + type.ordinal());
        final int cols = 32 * 40 + 11;
        final float[] src = new float[cols];
        final MemorySegment data = RandomTensors.allocate(arena, Quantizer.rowBytes(type, cols), 6);
        final float[] back = new float[cols];
        for (int trial = 0; trial < 50; trial++) {
            final double scale = Math.pow(10, rnd.nextInt(9) - 4);
            for (int c = 0; c < cols; c++) {
                src[c] = (float) (rnd.nextGaussian() * scale);
            }
            Quantizer.quantizeRow(type, src, 0, cols, data, 0);
            WeightMatrix.of(new TensorInfo("rt", type, new long[] {1, cols}, data, "test")).row(0, back, 0);
            for (int b = 0; b * 32 < cols; b++) {
                final int n = Math.min(32, cols - 32 * b);
                float amax = 0;
                float max = 0;
                for (int j = 0; j < n; j++) {
                    final float v = src[32 * b + j];
                    if (amax < Math.abs(v)) {
                        amax = Math.abs(v);
                        max = v;
                    }
                }
                final float d = type == DType.Q8_0 ? amax / 127 : max / -8;
                final float stored = Float.float16ToFloat(data.get(SHORT_LE, (long) b * type.blockBytes()));
                assertEquals(Float.floatToFloat16(d), Float.floatToFloat16(stored));
                for (int j = 0; j < n; j++) {
                    final int c = 32 * b + j;
                    final double q = stored == 0 ? 0 : back[c] / stored;
                    final boolean clipped = type == DType.Q4_0 && src[c] / (double) d >= 7.5;
                    final double bound = (clipped ? 1.0 : 0.5) * Math.abs(d) + Math.abs(q) * Math.abs(d - stored)
                            + 1e-5 * Math.abs(d);
                    final double err = Math.abs((double) src[c] - back[c]);
                    if (!(err <= bound)) {
                        fail(type + " element " + c + ": " + src[c] + " came back as " + back[c] + ", d=" + d);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"Q8_0", "Q4_0"})
    void tailPaddingIsZero(DType type) {
        final Random rnd = new Random(3);
        for (int cols : new int[] {1, 7, 33, 63}) {
            final float[] src = RandomTensors.gaussian(rnd, cols);
            final long bytes = Quantizer.rowBytes(type, cols);
            final MemorySegment data = RandomTensors.allocate(arena, bytes, 2);
            data.fill((byte) 0x5A); // garbage the quantizer must overwrite
            Quantizer.quantizeRow(type, src, 0, cols, data, 0);
            final int blocks = (cols + 31) / 32;
            for (int c = cols; c < 32 * blocks; c++) {
                assertEquals(0, ReferenceKernels.dequantize(type, data, 0, c), 0, type + " padding element " + c);
                final long q = (long) (blocks - 1) * type.blockBytes() + 2;
                final int j = c % 32;
                if (type == DType.Q8_0) {
                    assertEquals(0, data.get(ValueLayout.JAVA_BYTE, q + j));
                } else {
                    final int v = data.get(ValueLayout.JAVA_BYTE, q + j % 16) & 0xFF;
                    assertEquals(8, j < 16 ? v & 0xF : v >>> 4, "Q4_0 padding nibble " + c);
                }
            }
        }
    }

    @Test
    void dispatchesOnType() {
        final Random rnd = new Random(1);
        assertInstanceOf(Q8_0Matrix.class, WeightMatrix.of(quantized(DType.Q8_0, 3, 40, 2, rnd)));
        assertInstanceOf(Q4_0Matrix.class, WeightMatrix.of(quantized(DType.Q4_0, 3, 40, 2, rnd)));
        assertThrows(IllegalArgumentException.class,
                () -> Quantizer.quantizeRow(DType.F32, new float[32], 0, 32, MemorySegment.ofArray(new byte[128]), 0));
        assertThrows(IndexOutOfBoundsException.class,
                () -> Quantizer.quantizeRow(DType.Q8_0, new float[64], 0, 64, MemorySegment.ofArray(new byte[67]), 0));
        assertTrue(WeightMatrix.of(quantized(DType.Q4_0, 1, 1, 6, rnd)).toString().contains("Q4_0"));
    }

    /** Zero tokens: nothing to read and nothing written. */
    @ParameterizedTest
    @EnumSource(names = {"Q8_0", "Q4_0"})
    void emptyInputsAreNoOps(DType type) {
        final WeightMatrix w = WeightMatrix.of(quantized(type, 5, 40, 2, new Random(2)));
        final float[] y = {SENTINEL};
        w.multiplyTransposed(three, new float[0], 0, y);
        w.multiply(three, new float[0], 0, y);
        assertEquals(SENTINEL, y[0]);
    }
}
