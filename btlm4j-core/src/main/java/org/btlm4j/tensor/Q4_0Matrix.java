package org.btlm4j.tensor;

import static java.nio.ByteOrder.LITTLE_ENDIAN;
import static jdk.incubator.vector.VectorOperators.ZERO_EXTEND_B2I;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHR;

import java.lang.foreign.MemorySegment;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;

import org.btlm4j.checkpoint.DType;

/**
 * A GGUF/ggml Q4_0 weight matrix [rows, cols]; see {@link WeightMatrix}. Each row is
 * ⌈cols/32⌉ blocks of 18 bytes: a little-endian fp16 scale d, then 16 bytes qs, element j
 * (j &lt; 16) in the low nibble of qs[j] and element j + 16 in its high nibble; w = d·(q − 8). The
 * padding elements of a row's last block are zero. The segment need not be aligned.
 *
 * <p>A load takes LANES bytes of qs, zero-extends them to ints ({@code ZERO_EXTEND_B2I}), and splits each into
 * its low nibble (elements k…) and high nibble (elements 16 + k…), minus 8, converted to float.
 * Otherwise the kernels are those of {@link Q8_0Matrix} and must be kept in step, but for decode:
 * Q8_0's four-rows-per-pass kernel measured slower here (four rows' nibble splits per x load), so
 * decode keeps one row with two blocks per iteration. The conversions are written out at every
 * load (see {@link BF16Matrix} for why).
 */
public final class Q4_0Matrix extends BlockQuantizedMatrix {

    private static final int HALF = QK / 2;
    private static final int BB = 18; // block bytes
    /** Byte offset of the quants in a block. */
    private static final int QS = 2;

    /** Bytes per row. */
    private final long stride;

    Q4_0Matrix(String name, int rows, int cols, MemorySegment data) {
        super(name, rows, cols, data);
        this.stride = Quantizer.rowBytes(DType.Q4_0, cols);
        if (stride * rows != data.byteSize()) {
            throw new IllegalArgumentException(this + " needs " + stride * rows + " bytes, got " + data.byteSize());
        }
    }

    @Override
    public DType dtype() {
        return DType.Q4_0;
    }

    /** Element c of row r, scalar: ggml's d·(q − 8). */
    @Override
    float element(int r, int c) {
        final long o = r * stride + (long) (c / QK) * BB;
        final int j = c % QK;
        final int byteVal = data.get(Quantized.BYTE, o + QS + j % HALF) & 0xFF;
        final int q = j < HALF ? byteVal & 0xF : byteVal >>> 4;
        return Float.float16ToFloat(data.get(Quantized.SHORT_LE, o)) * (q - 8);
    }

    // ---- dequantization ----

    /** Writes blocks [b0, b1) of row r (32 floats each, padding included) to dst[off...). */
    @Override
    void dequantizeBlocks(int r, int b0, int b1, float[] dst, int off) {
        final MemorySegment w = data;
        final long base = r * stride;
        for (int b = b0; b < b1; b++, off += QK) {
            final long o = base + (long) b * BB;
            final float d = Float.float16ToFloat(w.get(Quantized.SHORT_LE, o));
            if (Quantized.VECTOR) {
                final FloatVector dv = FloatVector.broadcast(FLOATS, d);
                for (int k = 0; k < HALF; k += LANES) {
                    final IntVector q = (IntVector) ByteVector
                            .fromMemorySegment(Quantized.BYTES, w, o + QS + k, LITTLE_ENDIAN).convertShape(ZERO_EXTEND_B2I, INTS, 0);
                    ((FloatVector) q.and(0xF).sub(8).convert(I2F, 0)).mul(dv).intoArray(dst, off + k);
                    ((FloatVector) q.lanewise(LSHR, 4).sub(8).convert(I2F, 0)).mul(dv)
                            .intoArray(dst, off + HALF + k);
                }
            } else {
                for (int k = 0; k < HALF; k++) {
                    final int v = w.get(Quantized.BYTE, o + QS + k) & 0xFF;
                    dst[off + k] = d * ((v & 0xF) - 8);
                    dst[off + HALF + k] = d * ((v >>> 4) - 8);
                }
            }
        }
    }

    // ---- y = x·Wᵀ: the model's products ----

    @Override
    void multiplyTransposedRows(float[] x, int n, float[] y, int r0, int r1) {
        if (!Quantized.VECTOR) {
            multiplyTransposedScalar(x, n, y, r0, r1);
            return;
        }
        if (n == 1) {
            for (int r = r0; r < r1; r++) {
                y[r] = fullBlocks * QK < cols ? dotRow(x, r) + tail(x, 0, r) : dotRow(x, r);
            }
            return;
        }
        if (n == FEW_TOKENS) {
            multiplyTransposedFew(x, y, r0, r1);
            return;
        }
        multiplyTransposedPrefill(x, n, y, r0, r1);
    }

    /**
     * Two tokens (n = {@link #FEW_TOKENS}): each row's blocks are converted once and multiplied by
     * both (the prefill path would dequantize four rows into a buffer and read them back, which
     * costs more than the products for so few tokens).
     */
    private void multiplyTransposedFew(float[] x, float[] y, int r0, int r1) {
        final boolean partial = fullBlocks * QK < cols;
        for (int r = r0; r < r1; r++) {
            dotRowTokens2(x, y, r);
            if (partial) {
                y[r] += tail(x, 0, r);
                y[rows + r] += tail(x, cols, r);
            }
        }
    }

    /**
     * Tokens 0 and 1 (x from 0 and from cols), the whole blocks of row r: per block the nibbles
     * are converted once, then for each token the 32 products are summed in a vector and scaled
     * by d (acc = blockSum·d + acc), as in decode, two blocks per iteration. A block is written
     * out without an inner loop over its vectors: with one block per iteration and such an inner
     * loop, this kernel ran 5–8× slower in about half of the JVM runs (C2 left the accumulating
     * FMA un-intrinsified, allocating a vector per block, when the type profile did not pin the
     * loop-carried vectors' class); this shape measured stable.
     */
    private void dotRowTokens2(float[] x, float[] y, int r) {
        final MemorySegment w = data;
        final long base = r * stride;
        final int x0 = 0;
        final int x1 = cols;
        final int full2 = fullBlocks & ~1;
        // a<token><block parity>: two blocks per iteration, so that their FMA chains overlap
        FloatVector a00 = FloatVector.zero(FLOATS);
        FloatVector a10 = a00;
        FloatVector a01 = a00;
        FloatVector a11 = a00;
        int b = 0;
        for (; b < full2; b += 2) {
            final long o = base + (long) b * BB;
            final int c = b * QK;
            final float d = Float.float16ToFloat(w.get(Quantized.SHORT_LE, o));
            IntVector q = (IntVector) ByteVector
                    .fromMemorySegment(Quantized.BYTES, w, o + QS, LITTLE_ENDIAN).convertShape(ZERO_EXTEND_B2I, INTS, 0);
            FloatVector lo = (FloatVector) q.and(0xF).sub(8).convert(I2F, 0);
            FloatVector hi = (FloatVector) q.lanewise(LSHR, 4).sub(8).convert(I2F, 0);
            FloatVector s0 = hi.fma(FloatVector.fromArray(FLOATS, x, x0 + c + HALF), lo.mul(FloatVector.fromArray(FLOATS, x, x0 + c)));
            FloatVector s1 = hi.fma(FloatVector.fromArray(FLOATS, x, x1 + c + HALF), lo.mul(FloatVector.fromArray(FLOATS, x, x1 + c)));
            if (LANES < HALF) { // 8 lanes: the second half of the block's bytes
                q = (IntVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + QS + LANES, LITTLE_ENDIAN)
                        .convertShape(ZERO_EXTEND_B2I, INTS, 0);
                lo = (FloatVector) q.and(0xF).sub(8).convert(I2F, 0);
                hi = (FloatVector) q.lanewise(LSHR, 4).sub(8).convert(I2F, 0);
                s0 = hi.fma(FloatVector.fromArray(FLOATS, x, x0 + c + HALF + LANES), lo.fma(FloatVector.fromArray(FLOATS, x, x0 + c + LANES), s0));
                s1 = hi.fma(FloatVector.fromArray(FLOATS, x, x1 + c + HALF + LANES), lo.fma(FloatVector.fromArray(FLOATS, x, x1 + c + LANES), s1));
            }
            final float db = Float.float16ToFloat(w.get(Quantized.SHORT_LE, o + BB));
            IntVector qb = (IntVector) ByteVector
                    .fromMemorySegment(Quantized.BYTES, w, o + BB + QS, LITTLE_ENDIAN).convertShape(ZERO_EXTEND_B2I, INTS, 0);
            FloatVector lob = (FloatVector) qb.and(0xF).sub(8).convert(I2F, 0);
            FloatVector hib = (FloatVector) qb.lanewise(LSHR, 4).sub(8).convert(I2F, 0);
            FloatVector s0b = hib.fma(FloatVector.fromArray(FLOATS, x, x0 + c + QK + HALF), lob.mul(FloatVector.fromArray(FLOATS, x, x0 + c + QK)));
            FloatVector s1b = hib.fma(FloatVector.fromArray(FLOATS, x, x1 + c + QK + HALF), lob.mul(FloatVector.fromArray(FLOATS, x, x1 + c + QK)));
            if (LANES < HALF) { // 8 lanes: the second half of the block's bytes
                qb = (IntVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + BB + QS + LANES, LITTLE_ENDIAN)
                        .convertShape(ZERO_EXTEND_B2I, INTS, 0);
                lob = (FloatVector) qb.and(0xF).sub(8).convert(I2F, 0);
                hib = (FloatVector) qb.lanewise(LSHR, 4).sub(8).convert(I2F, 0);
                s0b = hib.fma(FloatVector.fromArray(FLOATS, x, x0 + c + QK + HALF + LANES), lob.fma(FloatVector.fromArray(FLOATS, x, x0 + c + QK + LANES), s0b));
                s1b = hib.fma(FloatVector.fromArray(FLOATS, x, x1 + c + QK + HALF + LANES), lob.fma(FloatVector.fromArray(FLOATS, x, x1 + c + QK + LANES), s1b));
            }
            a00 = s0.fma(FloatVector.broadcast(FLOATS, d), a00);
            a10 = s1.fma(FloatVector.broadcast(FLOATS, d), a10);
            a01 = s0b.fma(FloatVector.broadcast(FLOATS, db), a01);
            a11 = s1b.fma(FloatVector.broadcast(FLOATS, db), a11);
        }
        if (b < fullBlocks) {
            final long o = base + (long) b * BB;
            final int c = b * QK;
            final float d = Float.float16ToFloat(w.get(Quantized.SHORT_LE, o));
            IntVector q = (IntVector) ByteVector
                    .fromMemorySegment(Quantized.BYTES, w, o + QS, LITTLE_ENDIAN).convertShape(ZERO_EXTEND_B2I, INTS, 0);
            FloatVector lo = (FloatVector) q.and(0xF).sub(8).convert(I2F, 0);
            FloatVector hi = (FloatVector) q.lanewise(LSHR, 4).sub(8).convert(I2F, 0);
            FloatVector s0 = hi.fma(FloatVector.fromArray(FLOATS, x, x0 + c + HALF), lo.mul(FloatVector.fromArray(FLOATS, x, x0 + c)));
            FloatVector s1 = hi.fma(FloatVector.fromArray(FLOATS, x, x1 + c + HALF), lo.mul(FloatVector.fromArray(FLOATS, x, x1 + c)));
            if (LANES < HALF) { // 8 lanes: the second half of the block's bytes
                q = (IntVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + QS + LANES, LITTLE_ENDIAN)
                        .convertShape(ZERO_EXTEND_B2I, INTS, 0);
                lo = (FloatVector) q.and(0xF).sub(8).convert(I2F, 0);
                hi = (FloatVector) q.lanewise(LSHR, 4).sub(8).convert(I2F, 0);
                s0 = hi.fma(FloatVector.fromArray(FLOATS, x, x0 + c + HALF + LANES), lo.fma(FloatVector.fromArray(FLOATS, x, x0 + c + LANES), s0));
                s1 = hi.fma(FloatVector.fromArray(FLOATS, x, x1 + c + HALF + LANES), lo.fma(FloatVector.fromArray(FLOATS, x, x1 + c + LANES), s1));
            }
            a00 = s0.fma(FloatVector.broadcast(FLOATS, d), a00);
            a10 = s1.fma(FloatVector.broadcast(FLOATS, d), a10);
        }
        y[r] = VectorMath.sum(a00.add(a01));
        y[rows + r] = VectorMath.sum(a10.add(a11));
    }

    /**
     * One token, the whole blocks of row r: per block the 32 products (q − 8)·x are summed in a
     * vector, which is then scaled by d once (acc = blockSum·d + acc). Two blocks per iteration
     * into two accumulators, so consecutive blocks' FMA chains overlap.
     */
    private float dotRow(float[] x, int r) {
        final MemorySegment w = data;
        final long base = r * stride;
        final int full2 = fullBlocks & ~1;
        FloatVector a0 = FloatVector.zero(FLOATS);
        FloatVector a1 = a0;
        int b = 0;
        for (; b < full2; b += 2) {
            final long o = base + (long) b * BB;
            final int c = b * QK;
            final float d0 = Float.float16ToFloat(w.get(Quantized.SHORT_LE, o));
            final float d1 = Float.float16ToFloat(w.get(Quantized.SHORT_LE, o + BB));
            FloatVector s0 = FloatVector.zero(FLOATS);
            FloatVector s1 = s0;
            for (int k = 0; k < HALF; k += LANES) {
                final IntVector q0 = (IntVector) ByteVector
                        .fromMemorySegment(Quantized.BYTES, w, o + QS + k, LITTLE_ENDIAN).convertShape(ZERO_EXTEND_B2I, INTS, 0);
                final IntVector q1 = (IntVector) ByteVector
                        .fromMemorySegment(Quantized.BYTES, w, o + BB + QS + k, LITTLE_ENDIAN).convertShape(ZERO_EXTEND_B2I, INTS, 0);
                s0 = ((FloatVector) q0.and(0xF).sub(8).convert(I2F, 0)).fma(FloatVector.fromArray(FLOATS, x, c + k), s0);
                s1 = ((FloatVector) q1.and(0xF).sub(8).convert(I2F, 0))
                        .fma(FloatVector.fromArray(FLOATS, x, c + QK + k), s1);
                s0 = ((FloatVector) q0.lanewise(LSHR, 4).sub(8).convert(I2F, 0))
                        .fma(FloatVector.fromArray(FLOATS, x, c + HALF + k), s0);
                s1 = ((FloatVector) q1.lanewise(LSHR, 4).sub(8).convert(I2F, 0))
                        .fma(FloatVector.fromArray(FLOATS, x, c + QK + HALF + k), s1);
            }
            a0 = s0.fma(FloatVector.broadcast(FLOATS, d0), a0);
            a1 = s1.fma(FloatVector.broadcast(FLOATS, d1), a1);
        }
        if (b < fullBlocks) {
            final long o = base + (long) b * BB;
            final int c = b * QK;
            final float d0 = Float.float16ToFloat(w.get(Quantized.SHORT_LE, o));
            FloatVector s0 = FloatVector.zero(FLOATS);
            for (int k = 0; k < HALF; k += LANES) {
                final IntVector q0 = (IntVector) ByteVector
                        .fromMemorySegment(Quantized.BYTES, w, o + QS + k, LITTLE_ENDIAN).convertShape(ZERO_EXTEND_B2I, INTS, 0);
                s0 = ((FloatVector) q0.and(0xF).sub(8).convert(I2F, 0)).fma(FloatVector.fromArray(FLOATS, x, c + k), s0);
                s0 = ((FloatVector) q0.lanewise(LSHR, 4).sub(8).convert(I2F, 0))
                        .fma(FloatVector.fromArray(FLOATS, x, c + HALF + k), s0);
            }
            a0 = s0.fma(FloatVector.broadcast(FLOATS, d0), a0);
        }
        return VectorMath.sum(a0.add(a1));
    }
}
