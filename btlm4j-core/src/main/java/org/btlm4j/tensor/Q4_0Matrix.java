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
    private float element(int r, int c) {
        final long o = r * stride + (long) (c / QK) * BB;
        final int j = c % QK;
        final int byteVal = data.get(Quantized.BYTE, o + QS + j % HALF) & 0xFF;
        final int q = j < HALF ? byteVal & 0xF : byteVal >>> 4;
        return Float.float16ToFloat(data.get(Quantized.SHORT_LE, o)) * (q - 8);
    }

    /** Σ_{c ∈ [32·fullBlocks, cols)} x[xo + c]·W[r][c]: the partial last block, scalar. */
    private float tail(float[] x, int xo, int r) {
        float s = 0;
        for (int c = fullBlocks * QK; c < cols; c++) {
            s = Math.fma(x[xo + c], element(r, c), s);
        }
        return s;
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
            for (int t = 0; t < n; t++) {
                for (int r = r0; r < r1; r++) {
                    float s = 0;
                    for (int c = 0; c < cols; c++) {
                        s = Math.fma(x[t * cols + c], element(r, c), s);
                    }
                    y[t * rows + r] = s;
                }
            }
            return;
        }
        if (n == 1) {
            for (int r = r0; r < r1; r++) {
                y[r] = fullBlocks * QK < cols ? dotRow(x, r) + tail(x, 0, r) : dotRow(x, r);
            }
            return;
        }
        // Prefill: as in Q8_0Matrix, four rows at a time are dequantized once into buf and then
        // multiplied by all n tokens in 4×4 float tiles; converting the nibbles inside 2×8 tiles
        // (once per eight tokens) measured slower.
        final int full = fullBlocks * QK;
        final float[] buf = new float[4 * full];
        final float[] sums = new float[8];
        for (int r = r0; r < r1; r += 4) {
            for (int i = 0; i < 4; i++) {
                dequantizeBlocks(Math.min(r + i, r1 - 1), 0, fullBlocks, buf, i * full);
            }
            for (int t = 0; t < n; t += 4) {
                if (n - t <= 2) {
                    Quantized.floatTile4x2(x, n, cols, full, t, buf, sums);
                    for (int k = 0; k < 2 && t + k < n; k++) {
                        final int at = (t + k) * rows + r;
                        for (int i = 0; i < 4 && r + i < r1; i++) {
                            y[at + i] = full < cols ? sums[2 * i + k] + tail(x, (t + k) * cols, r + i) : sums[2 * i + k];
                        }
                    }
                } else {
                    floatTile4x4(x, n, y, r, r1, t, buf);
                }
            }
        }
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

    /**
     * Rows r..r+3 × tokens t..t+3 (prefill) from buf, where the caller has dequantized the four
     * rows' whole blocks (d·q, exact) once for all tokens; slots past r1 or n repeat the last row
     * or token and are not stored.
     */
    private void floatTile4x4(float[] x, int n, float[] y, int r, int r1, int t, float[] buf) {
        final int full = fullBlocks * QK;
        final int x0 = t * cols;
        final int x1 = Math.min(t + 1, n - 1) * cols;
        final int x2 = Math.min(t + 2, n - 1) * cols;
        final int x3 = Math.min(t + 3, n - 1) * cols;
        // a<row><token>
        FloatVector a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33;
        a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = FloatVector.zero(FLOATS);
        a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = FloatVector.zero(FLOATS);
        for (int c = 0; c < full; c += LANES) {
            final FloatVector w0 = FloatVector.fromArray(FLOATS, buf, c);
            final FloatVector w1 = FloatVector.fromArray(FLOATS, buf, full + c);
            final FloatVector w2 = FloatVector.fromArray(FLOATS, buf, 2 * full + c);
            final FloatVector w3 = FloatVector.fromArray(FLOATS, buf, 3 * full + c);
            FloatVector xv = FloatVector.fromArray(FLOATS, x, x0 + c);
            a00 = w0.fma(xv, a00);
            a10 = w1.fma(xv, a10);
            a20 = w2.fma(xv, a20);
            a30 = w3.fma(xv, a30);
            xv = FloatVector.fromArray(FLOATS, x, x1 + c);
            a01 = w0.fma(xv, a01);
            a11 = w1.fma(xv, a11);
            a21 = w2.fma(xv, a21);
            a31 = w3.fma(xv, a31);
            xv = FloatVector.fromArray(FLOATS, x, x2 + c);
            a02 = w0.fma(xv, a02);
            a12 = w1.fma(xv, a12);
            a22 = w2.fma(xv, a22);
            a32 = w3.fma(xv, a32);
            xv = FloatVector.fromArray(FLOATS, x, x3 + c);
            a03 = w0.fma(xv, a03);
            a13 = w1.fma(xv, a13);
            a23 = w2.fma(xv, a23);
            a33 = w3.fma(xv, a33);
        }
        final float[] s = {
            VectorMath.sum(a00), VectorMath.sum(a01), VectorMath.sum(a02), VectorMath.sum(a03),
            VectorMath.sum(a10), VectorMath.sum(a11), VectorMath.sum(a12), VectorMath.sum(a13),
            VectorMath.sum(a20), VectorMath.sum(a21), VectorMath.sum(a22), VectorMath.sum(a23),
            VectorMath.sum(a30), VectorMath.sum(a31), VectorMath.sum(a32), VectorMath.sum(a33)};
        final boolean partial = full < cols;
        for (int k = 0; k < 4 && t + k < n; k++) {
            final int at = (t + k) * rows + r;
            for (int i = 0; i < 4 && r + i < r1; i++) {
                final float sum = s[4 * i + k];
                y[at + i] = partial ? sum + tail(x, (t + k) * cols, r + i) : sum;
            }
        }
    }
}
