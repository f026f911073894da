package org.btlm4j.tensor;

import static jdk.incubator.vector.VectorOperators.B2F;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.ZERO_EXTEND_B2I;

import java.util.Objects;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;

import org.btlm4j.checkpoint.DType;

/**
 * Kernels over a run of GGUF Q8_0 or Q4_0 blocks held in a {@code byte[]} (the quantized KV cache):
 * the two products attention needs, {@code y += α·x} and {@code a·x}, where x is the run of values
 * the blocks encode from their first. A block is ggml's: a little-endian fp16 scale d, then 32
 * int8 q (Q8_0, value d·q) or 16 bytes of nibbles (Q4_0: value j &lt; 16 in the low nibble of byte j,
 * value j + 16 in its high nibble, value d·(q − 8)). The scale is applied once per block: the axpy
 * broadcasts α·d, the dot sums a·q over the block and multiplies by d.
 *
 * <p>{@code len} need not be a multiple of 32: the values of a last, partial block beyond it are
 * not read. The vector paths need 8 or 16 float lanes ({@link Quantized#VECTOR}); otherwise and
 * for a partial last block the scalar loop runs. The conversions are written out at every load
 * (see {@link BF16Matrix} for why).
 */
public final class BlockVectors {
    private static final int QK = Quantized.QK;
    private static final int HALF = QK / 2;
    private static final int LANES = WeightMatrix.LANES;

    private BlockVectors() {
    }

    /** Bytes of the blocks holding {@code len} values of {@code type} (Q8_0 or Q4_0). */
    public static int bytes(DType type, int len) {
        return (len + QK - 1) / QK * blockBytes(type);
    }

    private static int blockBytes(DType type) {
        if (type != DType.Q8_0 && type != DType.Q4_0) {
            throw new IllegalArgumentException("not a block type: " + type);
        }
        return (int) type.blockBytes();
    }

    private static float scale(byte[] x, int o) {
        return Float.float16ToFloat((short) ((x[o] & 0xFF) | x[o + 1] << 8));
    }

    /** Value i of the run starting at {@code xOff}, scalar. */
    static float value(DType type, byte[] x, int xOff, int i) {
        final int o = xOff + i / QK * blockBytes(type);
        final int j = i % QK;
        if (type == DType.Q8_0) {
            return scale(x, o) * x[o + 2 + j];
        }
        final int b = x[o + 2 + j % HALF] & 0xFF;
        return scale(x, o) * ((j < HALF ? b & 0xF : b >>> 4) - 8);
    }

    /** y[yOff + i] += alpha · x_i for i &lt; len, x the values of the blocks from {@code xOff}. */
    public static void axpy(DType type, float alpha, byte[] x, int xOff, float[] y, int yOff, int len) {
        Objects.checkFromIndexSize(xOff, bytes(type, len), x.length);
        Objects.checkFromIndexSize(yOff, len, y.length);
        final int bb = blockBytes(type);
        final int full = Quantized.VECTOR ? len / QK : 0;
        if (type == DType.Q8_0) {
            for (int b = 0, o = xOff, yo = yOff; b < full; b++, o += bb, yo += QK) {
                final FloatVector ad = FloatVector.broadcast(WeightMatrix.FLOATS, alpha * scale(x, o));
                for (int k = 0; k < QK; k += LANES) {
                    ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o + 2 + k).convertShape(B2F, WeightMatrix.FLOATS, 0))
                            .fma(ad, FloatVector.fromArray(WeightMatrix.FLOATS, y, yo + k)).intoArray(y, yo + k);
                }
            }
        } else {
            for (int b = 0, o = xOff, yo = yOff; b < full; b++, o += bb, yo += QK) {
                final FloatVector ad = FloatVector.broadcast(WeightMatrix.FLOATS, alpha * scale(x, o));
                for (int k = 0; k < HALF; k += LANES) {
                    final IntVector q = (IntVector) ByteVector.fromArray(Quantized.BYTES, x, o + 2 + k)
                            .convertShape(ZERO_EXTEND_B2I, WeightMatrix.INTS, 0);
                    ((FloatVector) q.and(0xF).sub(8).convert(I2F, 0))
                            .fma(ad, FloatVector.fromArray(WeightMatrix.FLOATS, y, yo + k)).intoArray(y, yo + k);
                    ((FloatVector) q.lanewise(LSHR, 4).sub(8).convert(I2F, 0))
                            .fma(ad, FloatVector.fromArray(WeightMatrix.FLOATS, y, yo + HALF + k))
                            .intoArray(y, yo + HALF + k);
                }
            }
        }
        for (int i = full * QK; i < len; i++) {
            y[yOff + i] += alpha * value(type, x, xOff, i);
        }
    }

    /** Σ a[aOff + i] · x_i for i &lt; len, x the values of the blocks from {@code xOff}. */
    public static float dot(DType type, float[] a, int aOff, byte[] x, int xOff, int len) {
        Objects.checkFromIndexSize(xOff, bytes(type, len), x.length);
        Objects.checkFromIndexSize(aOff, len, a.length);
        final int bb = blockBytes(type);
        final int full = Quantized.VECTOR ? len / QK : 0;
        FloatVector acc = FloatVector.zero(WeightMatrix.FLOATS);
        if (type == DType.Q8_0) {
            for (int b = 0, o = xOff, ao = aOff; b < full; b++, o += bb, ao += QK) {
                FloatVector s = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o + 2)
                        .convertShape(B2F, WeightMatrix.FLOATS, 0)).mul(FloatVector.fromArray(WeightMatrix.FLOATS, a, ao));
                for (int k = LANES; k < QK; k += LANES) {
                    s = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o + 2 + k)
                            .convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(FloatVector.fromArray(WeightMatrix.FLOATS, a, ao + k), s);
                }
                acc = s.fma(FloatVector.broadcast(WeightMatrix.FLOATS, scale(x, o)), acc);
            }
        } else {
            for (int b = 0, o = xOff, ao = aOff; b < full; b++, o += bb, ao += QK) {
                FloatVector s = FloatVector.zero(WeightMatrix.FLOATS);
                for (int k = 0; k < HALF; k += LANES) {
                    final IntVector q = (IntVector) ByteVector.fromArray(Quantized.BYTES, x, o + 2 + k)
                            .convertShape(ZERO_EXTEND_B2I, WeightMatrix.INTS, 0);
                    s = ((FloatVector) q.and(0xF).sub(8).convert(I2F, 0))
                            .fma(FloatVector.fromArray(WeightMatrix.FLOATS, a, ao + k), s);
                    s = ((FloatVector) q.lanewise(LSHR, 4).sub(8).convert(I2F, 0))
                            .fma(FloatVector.fromArray(WeightMatrix.FLOATS, a, ao + HALF + k), s);
                }
                acc = s.fma(FloatVector.broadcast(WeightMatrix.FLOATS, scale(x, o)), acc);
            }
        }
        float sum = VectorMath.sum(acc); // fixed lane order: the same bits compiled or not
        for (int i = full * QK; i < len; i++) {
            sum += a[aOff + i] * value(type, x, xOff, i);
        }
        return sum;
    }

    /** Scalar references for the tests: each value dequantized on its own, sums in double. */
    static float dotReference(DType type, float[] a, int aOff, byte[] x, int xOff, int len) {
        double s = 0;
        for (int i = 0; i < len; i++) {
            s += (double) a[aOff + i] * value(type, x, xOff, i);
        }
        return (float) s;
    }

    static void axpyReference(DType type, float alpha, byte[] x, int xOff, float[] y, int yOff, int len) {
        for (int i = 0; i < len; i++) {
            y[yOff + i] = (float) (y[yOff + i] + (double) alpha * value(type, x, xOff, i));
        }
    }
}
