package org.btlm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The word-at-a-time NaN/Inf count against a plain count of the decoded values, on random data
 * of odd sizes with NaNs, infinities, the largest finite values and subnormals mixed in.
 */
class NonFiniteTest {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** A random value, now and then one of the special ones. */
    private static float value(Random r) {
        return switch (r.nextInt(12)) {
            case 0 -> Float.NaN;
            case 1 -> Float.POSITIVE_INFINITY;
            case 2 -> Float.NEGATIVE_INFINITY;
            case 3 -> Float.intBitsToFloat(0x7fc00001 | r.nextInt(1 << 20)) * (r.nextBoolean() ? 1 : -1); // other NaNs
            case 4 -> r.nextBoolean() ? Float.MAX_VALUE : -65504f; // largest finite F32, F16
            case 5 -> Float.MIN_VALUE * r.nextInt(100);
            default -> (float) r.nextGaussian() * 3;
        };
    }

    private static TensorInfo tensor(DType type, long n, MemorySegment data) {
        return new TensorInfo("t", type, new long[] {n}, data, "test");
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 33, 80, 6826})
    void floatTypesCountAsTheirDecodedValues(int n) {
        Random r = new Random(n);
        MemorySegment f32 = MemorySegment.ofArray(new byte[4 * n]);
        MemorySegment bf16 = MemorySegment.ofArray(new byte[2 * n]);
        MemorySegment f16 = MemorySegment.ofArray(new byte[2 * n]);
        MemorySegment f64 = MemorySegment.ofArray(new byte[8 * n]);
        long expect32 = 0;
        long expectBf16 = 0;
        long expect16 = 0;
        long expect64 = 0;
        for (int i = 0; i < n; i++) {
            float v = value(r);
            f32.setAtIndex(F32, i, v);
            expect32 += Float.isFinite(v) ? 0 : 1;
            short b = (short) (Float.floatToRawIntBits(v) >>> 16); // truncation keeps NaN/Inf as they are
            bf16.setAtIndex(I16, i, b);
            expectBf16 += Float.isFinite(Float.intBitsToFloat((b & 0xffff) << 16)) ? 0 : 1;
            short h = Float.floatToFloat16(v);
            f16.setAtIndex(I16, i, h);
            expect16 += Float.isFinite(Float.float16ToFloat(h)) ? 0 : 1;
            double d = r.nextInt(5) == 0 ? Double.longBitsToDouble(0x7ff0000000000000L | r.nextLong() >>> 13) : v;
            f64.setAtIndex(F64, i, d);
            expect64 += Double.isFinite(d) ? 0 : 1;
        }
        assertTrue(n < 33 || expect32 > 0 && expect16 >= expect32, "the data has non-finite values to find");
        assertEquals(expect32, NonFinite.count(tensor(DType.F32, n, f32)));
        assertEquals(expectBf16, NonFinite.count(tensor(DType.BF16, n, bf16)));
        assertEquals(expect16, NonFinite.count(tensor(DType.F16, n, f16)));
        assertEquals(expect64, NonFinite.count(tensor(DType.F64, n, f64)));
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 3, 80})
    void quantizedBlocksCountAllTheirWeightsWhenTheScaleIsNotFinite(int rows) {
        Random r = new Random(rows);
        for (DType type : new DType[] {DType.Q8_0, DType.Q4_0}) {
            int blocks = rows * 2; // rows of 64 weights
            MemorySegment data = MemorySegment.ofArray(new byte[blocks * type.blockBytes()]);
            long expect = 0;
            for (int b = 0; b < blocks; b++) {
                long at = (long) b * type.blockBytes();
                for (int j = 2; j < type.blockBytes(); j++) {
                    data.set(ValueLayout.JAVA_BYTE, at + j, (byte) r.nextInt(256)); // quants: any bits
                }
                short scale = Float.floatToFloat16(value(r));
                data.set(I16, at, scale);
                expect += Float.isFinite(Float.float16ToFloat(scale)) ? 0 : type.blockSize();
            }
            assertEquals(expect, NonFinite.count(new TensorInfo("q", type, new long[] {rows, 64}, data, "test")), type::name);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 33})
    void integerTensorsHaveNone(int n) {
        MemorySegment data = MemorySegment.ofArray(new byte[4 * n]);
        data.fill((byte) 0xff); // the bits of a NaN, but these are integers
        assertEquals(0, NonFinite.count(tensor(DType.I32, n, data)));
    }
}
