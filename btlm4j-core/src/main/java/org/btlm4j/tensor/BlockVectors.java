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

    private static final IntVector LOW = IntVector.broadcast(WeightMatrix.INTS, 0xF);
    private static final IntVector EIGHT = IntVector.broadcast(WeightMatrix.INTS, 8);

    /** Rows {@link #axpy4} and {@link #dot4} take per pass. */
    public static final int GROUP = 4;

    /**
     * y[yOff + i] += Σ_g alpha[aOff + g] · x_g,i for g &lt; 4 and i &lt; len, where x_g is the run of
     * values whose blocks start at {@code xOff + g·stride}: four {@link #axpy}s in one pass over y,
     * so y is loaded and stored once per block instead of four times (attention accumulates its
     * scores one head dimension at a time over a run of keys).
     *
     * <p>Each format's loop is a method of its own, and the conversions are written out at every
     * load (see {@link BF16Matrix} for why): with both formats in one method, or with the
     * conversions in helper methods, C2 reached its inlining budget and left some of them as
     * calls (measured 3× slower).
     */
    public static void axpy4(DType type, float[] alpha, int aOff, byte[] x, int xOff, int stride,
            float[] y, int yOff, int len) {
        checkRows(type, x, xOff, stride, len);
        Objects.checkFromIndexSize(aOff, GROUP, alpha.length);
        Objects.checkFromIndexSize(yOff, len, y.length);
        final int full = Quantized.VECTOR ? len / QK : 0;
        if (type == DType.Q8_0) {
            axpy4Q8(alpha[aOff], alpha[aOff + 1], alpha[aOff + 2], alpha[aOff + 3], x, xOff, stride, y, yOff, full);
        } else {
            axpy4Q4(alpha[aOff], alpha[aOff + 1], alpha[aOff + 2], alpha[aOff + 3], x, xOff, stride, y, yOff, full);
        }
        for (int i = full * QK; i < len; i++) {
            y[yOff + i] += alpha[aOff] * value(type, x, xOff, i) + alpha[aOff + 1] * value(type, x, xOff + stride, i)
                    + alpha[aOff + 2] * value(type, x, xOff + 2 * stride, i)
                    + alpha[aOff + 3] * value(type, x, xOff + 3 * stride, i);
        }
    }

    private static void axpy4Q8(float a0, float a1, float a2, float a3, byte[] x, int xOff, int stride,
            float[] y, int yOff, int full) {
        final int bb = (int) DType.Q8_0.blockBytes();
        for (int b = 0, o = xOff, yo = yOff; b < full; b++, o += bb, yo += QK) {
            final int o1 = o + stride;
            final int o2 = o1 + stride;
            final int o3 = o2 + stride;
            final FloatVector d0 = FloatVector.broadcast(WeightMatrix.FLOATS, a0 * scale(x, o));
            final FloatVector d1 = FloatVector.broadcast(WeightMatrix.FLOATS, a1 * scale(x, o1));
            final FloatVector d2 = FloatVector.broadcast(WeightMatrix.FLOATS, a2 * scale(x, o2));
            final FloatVector d3 = FloatVector.broadcast(WeightMatrix.FLOATS, a3 * scale(x, o3));
            for (int k = 0; k < QK; k += LANES) {
                FloatVector t = FloatVector.fromArray(WeightMatrix.FLOATS, y, yo + k);
                t = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o + 2 + k).convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(d0, t);
                t = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o1 + 2 + k).convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(d1, t);
                t = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o2 + 2 + k).convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(d2, t);
                t = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o3 + 2 + k).convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(d3, t);
                t.intoArray(y, yo + k);
            }
        }
    }

    private static void axpy4Q4(float a0, float a1, float a2, float a3, byte[] x, int xOff, int stride,
            float[] y, int yOff, int full) {
        final int bb = (int) DType.Q4_0.blockBytes();
        for (int b = 0, o = xOff, yo = yOff; b < full; b++, o += bb, yo += QK) {
            final int o1 = o + stride;
            final int o2 = o1 + stride;
            final int o3 = o2 + stride;
            final FloatVector d0 = FloatVector.broadcast(WeightMatrix.FLOATS, a0 * scale(x, o));
            final FloatVector d1 = FloatVector.broadcast(WeightMatrix.FLOATS, a1 * scale(x, o1));
            final FloatVector d2 = FloatVector.broadcast(WeightMatrix.FLOATS, a2 * scale(x, o2));
            final FloatVector d3 = FloatVector.broadcast(WeightMatrix.FLOATS, a3 * scale(x, o3));
            for (int k = 0; k < HALF; k += LANES) {
                FloatVector lo = FloatVector.fromArray(WeightMatrix.FLOATS, y, yo + k);
                FloatVector hi = FloatVector.fromArray(WeightMatrix.FLOATS, y, yo + HALF + k);
                IntVector q = (IntVector) ByteVector.fromArray(Quantized.BYTES, x, o + 2 + k).convertShape(ZERO_EXTEND_B2I, WeightMatrix.INTS, 0);
                lo = ((FloatVector) q.and(LOW).sub(EIGHT).convert(I2F, 0)).fma(d0, lo);
                hi = ((FloatVector) q.lanewise(LSHR, 4).sub(EIGHT).convert(I2F, 0)).fma(d0, hi);
                q = (IntVector) ByteVector.fromArray(Quantized.BYTES, x, o1 + 2 + k).convertShape(ZERO_EXTEND_B2I, WeightMatrix.INTS, 0);
                lo = ((FloatVector) q.and(LOW).sub(EIGHT).convert(I2F, 0)).fma(d1, lo);
                hi = ((FloatVector) q.lanewise(LSHR, 4).sub(EIGHT).convert(I2F, 0)).fma(d1, hi);
                q = (IntVector) ByteVector.fromArray(Quantized.BYTES, x, o2 + 2 + k).convertShape(ZERO_EXTEND_B2I, WeightMatrix.INTS, 0);
                lo = ((FloatVector) q.and(LOW).sub(EIGHT).convert(I2F, 0)).fma(d2, lo);
                hi = ((FloatVector) q.lanewise(LSHR, 4).sub(EIGHT).convert(I2F, 0)).fma(d2, hi);
                q = (IntVector) ByteVector.fromArray(Quantized.BYTES, x, o3 + 2 + k).convertShape(ZERO_EXTEND_B2I, WeightMatrix.INTS, 0);
                lo = ((FloatVector) q.and(LOW).sub(EIGHT).convert(I2F, 0)).fma(d3, lo);
                hi = ((FloatVector) q.lanewise(LSHR, 4).sub(EIGHT).convert(I2F, 0)).fma(d3, hi);
                lo.intoArray(y, yo + k);
                hi.intoArray(y, yo + HALF + k);
            }
        }
    }

    /**
     * out[outOff + g] = Σ_i a[aOff + i] · x_g,i for g &lt; 4 and i &lt; len, x_g as in {@link #axpy4}:
     * four {@link #dot}s sharing each load of a (attention's output, one head dimension per row
     * of values).
     */
    public static void dot4(DType type, float[] a, int aOff, byte[] x, int xOff, int stride, int len,
            float[] out, int outOff) {
        checkRows(type, x, xOff, stride, len);
        Objects.checkFromIndexSize(aOff, len, a.length);
        Objects.checkFromIndexSize(outOff, GROUP, out.length);
        final int full = Quantized.VECTOR ? len / QK : 0;
        if (type == DType.Q8_0) {
            dot4Q8(a, aOff, x, xOff, stride, full, out, outOff);
        } else {
            dot4Q4(a, aOff, x, xOff, stride, full, out, outOff);
        }
        for (int g = 0; g < GROUP; g++) {
            out[outOff + g] += tailDot(type, a, aOff, x, xOff + g * stride, full * QK, len);
        }
    }

    /**
     * The 4-row dots are written without an inner loop over a block's vectors (8 lanes take the
     * extra vectors in an {@code if}): vectors carried through such a loop were seen left
     * un-intrinsified by C2 in some JVM runs, several times slower.
     */
    private static void dot4Q8(float[] a, int aOff, byte[] x, int xOff, int stride, int full, float[] out, int outOff) {
        final int bb = (int) DType.Q8_0.blockBytes();
        FloatVector acc0 = FloatVector.zero(WeightMatrix.FLOATS);
        FloatVector acc1 = acc0;
        FloatVector acc2 = acc0;
        FloatVector acc3 = acc0;
        for (int b = 0, o = xOff + 2, ao = aOff; b < full; b++, o += bb, ao += QK) {
            final int o1 = o + stride;
            final int o2 = o1 + stride;
            final int o3 = o2 + stride;
            FloatVector av = FloatVector.fromArray(WeightMatrix.FLOATS, a, ao);
            FloatVector s0 = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o).convertShape(B2F, WeightMatrix.FLOATS, 0)).mul(av);
            FloatVector s1 = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o1).convertShape(B2F, WeightMatrix.FLOATS, 0)).mul(av);
            FloatVector s2 = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o2).convertShape(B2F, WeightMatrix.FLOATS, 0)).mul(av);
            FloatVector s3 = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o3).convertShape(B2F, WeightMatrix.FLOATS, 0)).mul(av);
            av = FloatVector.fromArray(WeightMatrix.FLOATS, a, ao + LANES);
            s0 = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o + LANES).convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(av, s0);
            s1 = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o1 + LANES).convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(av, s1);
            s2 = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o2 + LANES).convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(av, s2);
            s3 = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o3 + LANES).convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(av, s3);
            if (LANES < HALF) { // 8 lanes: the block's other two vectors
                av = FloatVector.fromArray(WeightMatrix.FLOATS, a, ao + 2 * LANES);
                s0 = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o + 2 * LANES).convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(av, s0);
                s1 = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o1 + 2 * LANES).convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(av, s1);
                s2 = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o2 + 2 * LANES).convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(av, s2);
                s3 = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o3 + 2 * LANES).convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(av, s3);
                av = FloatVector.fromArray(WeightMatrix.FLOATS, a, ao + 3 * LANES);
                s0 = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o + 3 * LANES).convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(av, s0);
                s1 = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o1 + 3 * LANES).convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(av, s1);
                s2 = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o2 + 3 * LANES).convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(av, s2);
                s3 = ((FloatVector) ByteVector.fromArray(Quantized.BYTES, x, o3 + 3 * LANES).convertShape(B2F, WeightMatrix.FLOATS, 0)).fma(av, s3);
            }
            acc0 = s0.fma(FloatVector.broadcast(WeightMatrix.FLOATS, scale(x, o - 2)), acc0);
            acc1 = s1.fma(FloatVector.broadcast(WeightMatrix.FLOATS, scale(x, o1 - 2)), acc1);
            acc2 = s2.fma(FloatVector.broadcast(WeightMatrix.FLOATS, scale(x, o2 - 2)), acc2);
            acc3 = s3.fma(FloatVector.broadcast(WeightMatrix.FLOATS, scale(x, o3 - 2)), acc3);
        }
        out[outOff] = VectorMath.sum(acc0);
        out[outOff + 1] = VectorMath.sum(acc1);
        out[outOff + 2] = VectorMath.sum(acc2);
        out[outOff + 3] = VectorMath.sum(acc3);
    }

    private static void dot4Q4(float[] a, int aOff, byte[] x, int xOff, int stride, int full, float[] out, int outOff) {
        final int bb = (int) DType.Q4_0.blockBytes();
        FloatVector acc0 = FloatVector.zero(WeightMatrix.FLOATS);
        FloatVector acc1 = acc0;
        FloatVector acc2 = acc0;
        FloatVector acc3 = acc0;
        for (int b = 0, o = xOff + 2, ao = aOff; b < full; b++, o += bb, ao += QK) {
            final int o1 = o + stride;
            final int o2 = o1 + stride;
            final int o3 = o2 + stride;
            FloatVector lo = FloatVector.fromArray(WeightMatrix.FLOATS, a, ao);
            FloatVector hi = FloatVector.fromArray(WeightMatrix.FLOATS, a, ao + HALF);
            IntVector q = (IntVector) ByteVector.fromArray(Quantized.BYTES, x, o).convertShape(ZERO_EXTEND_B2I, WeightMatrix.INTS, 0);
            FloatVector s0 = ((FloatVector) q.lanewise(LSHR, 4).sub(EIGHT).convert(I2F, 0)).fma(hi, ((FloatVector) q.and(LOW).sub(EIGHT).convert(I2F, 0)).mul(lo));
            q = (IntVector) ByteVector.fromArray(Quantized.BYTES, x, o1).convertShape(ZERO_EXTEND_B2I, WeightMatrix.INTS, 0);
            FloatVector s1 = ((FloatVector) q.lanewise(LSHR, 4).sub(EIGHT).convert(I2F, 0)).fma(hi, ((FloatVector) q.and(LOW).sub(EIGHT).convert(I2F, 0)).mul(lo));
            q = (IntVector) ByteVector.fromArray(Quantized.BYTES, x, o2).convertShape(ZERO_EXTEND_B2I, WeightMatrix.INTS, 0);
            FloatVector s2 = ((FloatVector) q.lanewise(LSHR, 4).sub(EIGHT).convert(I2F, 0)).fma(hi, ((FloatVector) q.and(LOW).sub(EIGHT).convert(I2F, 0)).mul(lo));
            q = (IntVector) ByteVector.fromArray(Quantized.BYTES, x, o3).convertShape(ZERO_EXTEND_B2I, WeightMatrix.INTS, 0);
            FloatVector s3 = ((FloatVector) q.lanewise(LSHR, 4).sub(EIGHT).convert(I2F, 0)).fma(hi, ((FloatVector) q.and(LOW).sub(EIGHT).convert(I2F, 0)).mul(lo));
            if (LANES < HALF) { // 8 lanes: the second half of the block's bytes
                lo = FloatVector.fromArray(WeightMatrix.FLOATS, a, ao + LANES);
                hi = FloatVector.fromArray(WeightMatrix.FLOATS, a, ao + HALF + LANES);
                q = (IntVector) ByteVector.fromArray(Quantized.BYTES, x, o + LANES).convertShape(ZERO_EXTEND_B2I, WeightMatrix.INTS, 0);
                s0 = ((FloatVector) q.lanewise(LSHR, 4).sub(EIGHT).convert(I2F, 0)).fma(hi, ((FloatVector) q.and(LOW).sub(EIGHT).convert(I2F, 0)).fma(lo, s0));
                q = (IntVector) ByteVector.fromArray(Quantized.BYTES, x, o1 + LANES).convertShape(ZERO_EXTEND_B2I, WeightMatrix.INTS, 0);
                s1 = ((FloatVector) q.lanewise(LSHR, 4).sub(EIGHT).convert(I2F, 0)).fma(hi, ((FloatVector) q.and(LOW).sub(EIGHT).convert(I2F, 0)).fma(lo, s1));
                q = (IntVector) ByteVector.fromArray(Quantized.BYTES, x, o2 + LANES).convertShape(ZERO_EXTEND_B2I, WeightMatrix.INTS, 0);
                s2 = ((FloatVector) q.lanewise(LSHR, 4).sub(EIGHT).convert(I2F, 0)).fma(hi, ((FloatVector) q.and(LOW).sub(EIGHT).convert(I2F, 0)).fma(lo, s2));
                q = (IntVector) ByteVector.fromArray(Quantized.BYTES, x, o3 + LANES).convertShape(ZERO_EXTEND_B2I, WeightMatrix.INTS, 0);
                s3 = ((FloatVector) q.lanewise(LSHR, 4).sub(EIGHT).convert(I2F, 0)).fma(hi, ((FloatVector) q.and(LOW).sub(EIGHT).convert(I2F, 0)).fma(lo, s3));
            }
            acc0 = s0.fma(FloatVector.broadcast(WeightMatrix.FLOATS, scale(x, o - 2)), acc0);
            acc1 = s1.fma(FloatVector.broadcast(WeightMatrix.FLOATS, scale(x, o1 - 2)), acc1);
            acc2 = s2.fma(FloatVector.broadcast(WeightMatrix.FLOATS, scale(x, o2 - 2)), acc2);
            acc3 = s3.fma(FloatVector.broadcast(WeightMatrix.FLOATS, scale(x, o3 - 2)), acc3);
        }
        out[outOff] = VectorMath.sum(acc0);
        out[outOff + 1] = VectorMath.sum(acc1);
        out[outOff + 2] = VectorMath.sum(acc2);
        out[outOff + 3] = VectorMath.sum(acc3);
    }

    /** Σ a[aOff + i] · x_i for from ≤ i &lt; len, scalar: the values past the whole blocks. */
    private static float tailDot(DType type, float[] a, int aOff, byte[] x, int xOff, int from, int len) {
        float sum = 0;
        for (int i = from; i < len; i++) {
            sum += a[aOff + i] * value(type, x, xOff, i);
        }
        return sum;
    }

    /** The four rows of {@link #axpy4}/{@link #dot4} must lie inside x. */
    private static void checkRows(DType type, byte[] x, int xOff, int stride, int len) {
        final int bytes = bytes(type, len);
        if (xOff < 0 || stride < 0 || (long) xOff + (long) (GROUP - 1) * stride + bytes > x.length) {
            throw new IndexOutOfBoundsException("rows of " + bytes + " bytes from " + xOff + " every " + stride
                    + " bytes outside an array of " + x.length);
        }
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
