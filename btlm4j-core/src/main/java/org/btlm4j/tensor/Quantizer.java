package org.btlm4j.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;

import org.btlm4j.checkpoint.DType;

/**
 * Quantizes float rows to GGUF's Q8_0 and Q4_0 blocks, bit for bit as ggml's reference
 * quantizers {@code quantize_row_q8_0_ref} and {@code quantize_row_q4_0_ref} do (float arithmetic
 * throughout, fp16 scales rounded to nearest even as {@code GGML_FP32_TO_FP16}). A row of
 * {@code cols} values becomes ⌈cols/32⌉ blocks; the last block is padded with zeros before it is
 * quantized (padding dequantizes to exactly 0 in both formats).
 */
public final class Quantizer {

    private static final int QK = 32;
    // own constants rather than Quantized's, so that quantizing needs no Vector API
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;

    private Quantizer() {
    }

    /** float → BF16 bits, rounding to nearest even; a NaN stays a (quiet) NaN. */
    public static short toBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if (Float.isNaN(v)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    /** Bytes of one quantized row of {@code cols} values: ⌈cols/32⌉ blocks. */
    public static long rowBytes(DType type, int cols) {
        checkType(type);
        if (cols < 0) {
            throw new IllegalArgumentException("negative column count " + cols);
        }
        return (long) ((cols + QK - 1) / QK) * type.blockBytes();
    }

    /**
     * Quantizes src[srcOff, srcOff + cols) into {@link #rowBytes} bytes of dst from dstOff.
     *
     * @throws IllegalArgumentException for a type other than Q8_0 or Q4_0
     */
    public static void quantizeRow(DType type, float[] src, int srcOff, int cols, MemorySegment dst, long dstOff) {
        checkType(type);
        Objects.checkFromIndexSize(srcOff, cols, src.length);
        Objects.checkFromIndexSize(dstOff, rowBytes(type, cols), dst.byteSize());
        final float[] block = new float[QK];
        final int blocks = (cols + QK - 1) / QK;
        for (int b = 0; b < blocks; b++) {
            final int n = Math.min(QK, cols - b * QK);
            System.arraycopy(src, srcOff + b * QK, block, 0, n);
            java.util.Arrays.fill(block, n, QK, 0f);
            final long o = dstOff + (long) b * type.blockBytes();
            if (type == DType.Q8_0) {
                quantizeQ8_0(block, dst, o);
            } else {
                quantizeQ4_0(block, dst, o);
            }
        }
    }

    private static void quantizeQ8_0(float[] x, MemorySegment dst, long o) {
        float amax = 0f;
        for (int j = 0; j < QK; j++) {
            amax = Math.max(amax, Math.abs(x[j]));
        }
        final float d = amax / 127;
        final float id = d != 0 ? 1f / d : 0f;
        dst.set(SHORT_LE, o, Float.floatToFloat16(d));
        for (int j = 0; j < QK; j++) {
            dst.set(BYTE, o + 2 + j, (byte) roundf(x[j] * id));
        }
    }

    private static void quantizeQ4_0(float[] x, MemorySegment dst, long o) {
        float amax = 0f;
        float max = 0f;
        for (int j = 0; j < QK; j++) {
            final float v = x[j];
            if (amax < Math.abs(v)) { // strict: the first of equal magnitudes wins
                amax = Math.abs(v);
                max = v;
            }
        }
        final float d = max / -8;
        final float id = d != 0 ? 1f / d : 0f;
        dst.set(SHORT_LE, o, Float.floatToFloat16(d));
        for (int j = 0; j < QK / 2; j++) {
            final float x0 = x[j] * id;
            final float x1 = x[QK / 2 + j] * id;
            // C's (int8_t) conversion truncates toward zero; x·id + 8.5 lies in [0.5, 16.5]
            final int q0 = Math.min(15, (int) (x0 + 8.5f));
            final int q1 = Math.min(15, (int) (x1 + 8.5f));
            dst.set(BYTE, o + 2 + j, (byte) (q0 | q1 << 4));
        }
    }

    /** C's roundf: to nearest, halfway cases away from zero (the sum is exact in double). */
    static float roundf(float v) {
        return (float) Math.copySign(Math.floor(Math.abs((double) v) + 0.5), v);
    }

    private static void checkType(DType type) {
        if (type != DType.Q8_0 && type != DType.Q4_0) {
            throw new IllegalArgumentException("not a quantized weight type: " + type);
        }
    }
}
