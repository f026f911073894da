package org.btlm4j.tensor;

import static java.nio.ByteOrder.LITTLE_ENDIAN;
import static jdk.incubator.vector.VectorOperators.B2F;

import java.lang.foreign.MemorySegment;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;

import org.btlm4j.checkpoint.DType;

/**
 * A GGUF/ggml Q8_0 weight matrix [rows, cols]; see {@link WeightMatrix}. Each row is
 * ⌈cols/32⌉ blocks of 34 bytes: a little-endian fp16 scale d, then 32 int8 q; w = d·q, and the
 * padding elements of a row's last block are zero. The segment need not be aligned (34-byte blocks
 * never are).
 *
 * <p>Kernels convert LANES int8 at a time straight to float ({@code B2F}: sign-extend and convert),
 * and, as in the float kernels, the conversion is written out at every load so that C2 inlines it
 * (see {@link BF16Matrix}). Products of whole blocks are computed in vectors; the columns of a
 * partial last block are added in scalar code (its x elements past {@code cols} are not read).
 * {@link Q4_0Matrix} has the same kernels but for the loads (and its decode kernel) and must be
 * kept in step.
 */
public final class Q8_0Matrix extends BlockQuantizedMatrix {

    private static final int BB = 34; // block bytes
    private static final int HALF = QK / 2;
    /** Byte offset of the quants in a block. */
    private static final int QS = 2;

    /** Whole blocks per row from which decode takes four rows per pass. */
    private static final int LONG_ROW_BLOCKS = 128;

    /** Bytes per row. */
    private final long stride;

    Q8_0Matrix(String name, int rows, int cols, MemorySegment data) {
        super(name, rows, cols, data);
        this.stride = Quantizer.rowBytes(DType.Q8_0, cols);
        if (stride * rows != data.byteSize()) {
            throw new IllegalArgumentException(this + " needs " + stride * rows + " bytes, got " + data.byteSize());
        }
    }

    @Override
    public DType dtype() {
        return DType.Q8_0;
    }

    /** Element c of row r, scalar. */
    @Override
    float element(int r, int c) {
        final long o = r * stride + (long) (c / QK) * BB;
        return Float.float16ToFloat(data.get(Quantized.SHORT_LE, o)) * data.get(Quantized.BYTE, o + QS + c % QK);
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
                for (int k = 0; k < QK; k += LANES) {
                    ((FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + QS + k, LITTLE_ENDIAN)
                            .convertShape(B2F, FLOATS, 0)).mul(dv).intoArray(dst, off + k);
                }
            } else {
                for (int k = 0; k < QK; k++) {
                    dst[off + k] = d * w.get(Quantized.BYTE, o + QS + k);
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
            // Decode: four rows per pass share the x loads, which paid off for long rows (1.3× at
            // cols = 6826) but measured ~1.9× slower for short ones (cols = 2560, 80 blocks), where
            // one row with two blocks per iteration stays faster.
            if (fullBlocks >= LONG_ROW_BLOCKS) {
                for (int r = r0; r < r1; r += 4) {
                    dotRows4(x, y, r, r1);
                }
            } else {
                for (int r = r0; r < r1; r++) {
                    y[r] = fullBlocks * QK < cols ? dotRow(x, r) + tail(x, 0, r) : dotRow(x, r);
                }
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
     * Tokens 0 and 1 (x from 0 and from cols), the whole blocks of row r: per block the int8
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
            FloatVector q = (FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + QS, LITTLE_ENDIAN)
                    .convertShape(B2F, FLOATS, 0);
            FloatVector p = (FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + QS + HALF, LITTLE_ENDIAN)
                    .convertShape(B2F, FLOATS, 0);
            FloatVector s0 = p.fma(FloatVector.fromArray(FLOATS, x, x0 + c + HALF), q.mul(FloatVector.fromArray(FLOATS, x, x0 + c)));
            FloatVector s1 = p.fma(FloatVector.fromArray(FLOATS, x, x1 + c + HALF), q.mul(FloatVector.fromArray(FLOATS, x, x1 + c)));
            if (LANES < HALF) { // 8 lanes: the block's other two vectors
                q = (FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + QS + LANES, LITTLE_ENDIAN)
                        .convertShape(B2F, FLOATS, 0);
                p = (FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + QS + HALF + LANES, LITTLE_ENDIAN)
                        .convertShape(B2F, FLOATS, 0);
                s0 = p.fma(FloatVector.fromArray(FLOATS, x, x0 + c + HALF + LANES), q.fma(FloatVector.fromArray(FLOATS, x, x0 + c + LANES), s0));
                s1 = p.fma(FloatVector.fromArray(FLOATS, x, x1 + c + HALF + LANES), q.fma(FloatVector.fromArray(FLOATS, x, x1 + c + LANES), s1));
            }
            final float db = Float.float16ToFloat(w.get(Quantized.SHORT_LE, o + BB));
            FloatVector qb = (FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + BB + QS, LITTLE_ENDIAN)
                    .convertShape(B2F, FLOATS, 0);
            FloatVector pb = (FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + BB + QS + HALF, LITTLE_ENDIAN)
                    .convertShape(B2F, FLOATS, 0);
            FloatVector s0b = pb.fma(FloatVector.fromArray(FLOATS, x, x0 + c + QK + HALF), qb.mul(FloatVector.fromArray(FLOATS, x, x0 + c + QK)));
            FloatVector s1b = pb.fma(FloatVector.fromArray(FLOATS, x, x1 + c + QK + HALF), qb.mul(FloatVector.fromArray(FLOATS, x, x1 + c + QK)));
            if (LANES < HALF) { // 8 lanes: the block's other two vectors
                qb = (FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + BB + QS + LANES, LITTLE_ENDIAN)
                        .convertShape(B2F, FLOATS, 0);
                pb = (FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + BB + QS + HALF + LANES, LITTLE_ENDIAN)
                        .convertShape(B2F, FLOATS, 0);
                s0b = pb.fma(FloatVector.fromArray(FLOATS, x, x0 + c + QK + HALF + LANES), qb.fma(FloatVector.fromArray(FLOATS, x, x0 + c + QK + LANES), s0b));
                s1b = pb.fma(FloatVector.fromArray(FLOATS, x, x1 + c + QK + HALF + LANES), qb.fma(FloatVector.fromArray(FLOATS, x, x1 + c + QK + LANES), s1b));
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
            FloatVector q = (FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + QS, LITTLE_ENDIAN)
                    .convertShape(B2F, FLOATS, 0);
            FloatVector p = (FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + QS + HALF, LITTLE_ENDIAN)
                    .convertShape(B2F, FLOATS, 0);
            FloatVector s0 = p.fma(FloatVector.fromArray(FLOATS, x, x0 + c + HALF), q.mul(FloatVector.fromArray(FLOATS, x, x0 + c)));
            FloatVector s1 = p.fma(FloatVector.fromArray(FLOATS, x, x1 + c + HALF), q.mul(FloatVector.fromArray(FLOATS, x, x1 + c)));
            if (LANES < HALF) { // 8 lanes: the block's other two vectors
                q = (FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + QS + LANES, LITTLE_ENDIAN)
                        .convertShape(B2F, FLOATS, 0);
                p = (FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + QS + HALF + LANES, LITTLE_ENDIAN)
                        .convertShape(B2F, FLOATS, 0);
                s0 = p.fma(FloatVector.fromArray(FLOATS, x, x0 + c + HALF + LANES), q.fma(FloatVector.fromArray(FLOATS, x, x0 + c + LANES), s0));
                s1 = p.fma(FloatVector.fromArray(FLOATS, x, x1 + c + HALF + LANES), q.fma(FloatVector.fromArray(FLOATS, x, x1 + c + LANES), s1));
            }
            a00 = s0.fma(FloatVector.broadcast(FLOATS, d), a00);
            a10 = s1.fma(FloatVector.broadcast(FLOATS, d), a10);
        }
        y[r] = VectorMath.sum(a00.add(a01));
        y[rows + r] = VectorMath.sum(a10.add(a11));
    }

    /**
     * One token, the whole blocks of row r: per block the 32 products q·x are summed in a vector,
     * which is then scaled by d once (acc = blockSum·d + acc). Two blocks per iteration into two
     * accumulators, so consecutive blocks' FMA chains overlap.
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
            FloatVector s0 = ((FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + QS, LITTLE_ENDIAN)
                    .convertShape(B2F, FLOATS, 0)).mul(FloatVector.fromArray(FLOATS, x, c));
            FloatVector s1 = ((FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + BB + QS, LITTLE_ENDIAN)
                    .convertShape(B2F, FLOATS, 0)).mul(FloatVector.fromArray(FLOATS, x, c + QK));
            for (int k = LANES; k < QK; k += LANES) {
                s0 = ((FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + QS + k, LITTLE_ENDIAN)
                        .convertShape(B2F, FLOATS, 0)).fma(FloatVector.fromArray(FLOATS, x, c + k), s0);
                s1 = ((FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + BB + QS + k, LITTLE_ENDIAN)
                        .convertShape(B2F, FLOATS, 0)).fma(FloatVector.fromArray(FLOATS, x, c + QK + k), s1);
            }
            a0 = s0.fma(FloatVector.broadcast(FLOATS, d0), a0);
            a1 = s1.fma(FloatVector.broadcast(FLOATS, d1), a1);
        }
        if (b < fullBlocks) {
            final long o = base + (long) b * BB;
            final int c = b * QK;
            final float d0 = Float.float16ToFloat(w.get(Quantized.SHORT_LE, o));
            FloatVector s0 = FloatVector.zero(FLOATS);
            for (int k = 0; k < QK; k += LANES) {
                s0 = ((FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, o + QS + k, LITTLE_ENDIAN)
                        .convertShape(B2F, FLOATS, 0)).fma(FloatVector.fromArray(FLOATS, x, c + k), s0);
            }
            a0 = s0.fma(FloatVector.broadcast(FLOATS, d0), a0);
        }
        return VectorMath.sum(a0.add(a1));
    }

    /**
     * One token, rows r..r+3 (decode): each block's x vectors are loaded once for the four rows;
     * per row and block the 32 products q·x are summed in a vector, which is then scaled by d once
     * (acc = blockSum·d + acc). The four rows' chains are independent, so they overlap. Slots past
     * r1 repeat the last row and are not stored; a row's sum does not depend on its slot.
     */
    private void dotRows4(float[] x, float[] y, int r, int r1) {
        final MemorySegment w = data;
        final long e0 = r * stride;
        final long e1 = Math.min(r + 1, r1 - 1) * stride;
        final long e2 = Math.min(r + 2, r1 - 1) * stride;
        final long e3 = Math.min(r + 3, r1 - 1) * stride;
        FloatVector a0 = FloatVector.zero(FLOATS);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        for (int b = 0; b < fullBlocks; b++) {
            final long ob = (long) b * BB;
            final int c = b * QK;
            FloatVector xv = FloatVector.fromArray(FLOATS, x, c);
            FloatVector s0 = ((FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, e0 + ob + QS, LITTLE_ENDIAN)
                    .convertShape(B2F, FLOATS, 0)).mul(xv);
            FloatVector s1 = ((FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, e1 + ob + QS, LITTLE_ENDIAN)
                    .convertShape(B2F, FLOATS, 0)).mul(xv);
            FloatVector s2 = ((FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, e2 + ob + QS, LITTLE_ENDIAN)
                    .convertShape(B2F, FLOATS, 0)).mul(xv);
            FloatVector s3 = ((FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, e3 + ob + QS, LITTLE_ENDIAN)
                    .convertShape(B2F, FLOATS, 0)).mul(xv);
            for (int k = LANES; k < QK; k += LANES) {
                final long q = ob + QS + k;
                xv = FloatVector.fromArray(FLOATS, x, c + k);
                s0 = ((FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, e0 + q, LITTLE_ENDIAN)
                        .convertShape(B2F, FLOATS, 0)).fma(xv, s0);
                s1 = ((FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, e1 + q, LITTLE_ENDIAN)
                        .convertShape(B2F, FLOATS, 0)).fma(xv, s1);
                s2 = ((FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, e2 + q, LITTLE_ENDIAN)
                        .convertShape(B2F, FLOATS, 0)).fma(xv, s2);
                s3 = ((FloatVector) ByteVector.fromMemorySegment(Quantized.BYTES, w, e3 + q, LITTLE_ENDIAN)
                        .convertShape(B2F, FLOATS, 0)).fma(xv, s3);
            }
            a0 = s0.fma(FloatVector.broadcast(FLOATS, Float.float16ToFloat(w.get(Quantized.SHORT_LE, e0 + ob))), a0);
            a1 = s1.fma(FloatVector.broadcast(FLOATS, Float.float16ToFloat(w.get(Quantized.SHORT_LE, e1 + ob))), a1);
            a2 = s2.fma(FloatVector.broadcast(FLOATS, Float.float16ToFloat(w.get(Quantized.SHORT_LE, e2 + ob))), a2);
            a3 = s3.fma(FloatVector.broadcast(FLOATS, Float.float16ToFloat(w.get(Quantized.SHORT_LE, e3 + ob))), a3);
        }
        final boolean partial = fullBlocks * QK < cols;
        final float[] s = {VectorMath.sum(a0), VectorMath.sum(a1), VectorMath.sum(a2), VectorMath.sum(a3)};
        for (int i = 0; i < 4 && r + i < r1; i++) {
            y[r + i] = partial ? s[i] + tail(x, 0, r + i) : s[i];
        }
    }
}
