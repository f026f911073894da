package org.btlm4j.tensor;

import static java.nio.ByteOrder.LITTLE_ENDIAN;

import java.lang.foreign.ValueLayout;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/** Constants shared by {@link Q8_0Matrix}, {@link Q4_0Matrix} and {@link Quantizer}. */
final class Quantized {

    /** Weights per block (ggml's QK8_0 and QK4_0). */
    static final int QK = 32;

    static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LITTLE_ENDIAN);
    static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;

    /**
     * Whether the vector kernels apply: they load LANES bytes at a time (a 64- or 128-bit byte
     * vector for 8 or 16 float lanes), and a block of 32 must split into whole vectors. With
     * 4-lane floats (128-bit SSE only) the kernels fall back to scalar code.
     */
    static final boolean VECTOR = WeightMatrix.LANES >= 8 && WeightMatrix.LANES <= 16;
    /** LANES bytes: one load fills one float vector after widening. */
    static final VectorSpecies<Byte> BYTES = VECTOR
            ? VectorSpecies.of(byte.class, VectorShape.forBitSize(WeightMatrix.LANES * 8))
            : ByteVector.SPECIES_64;

    /** Columns per chunk of the x·W prefill path, which dequantizes rows piecewise into a buffer. */
    static final int COLUMN_CHUNK = 512;

    private Quantized() {
    }

    /**
     * The last one or two tokens t, t+1 of a batch against four dequantized rows (the x·Wᵀ tiles
     * of {@link Q8_0Matrix} and {@link Q4_0Matrix}): s[2·i + k] = Σ_{c &lt; full} buf[bufOff + i·full + c]·
     * x[(t + k)·cols + c], each sum added in the same order as in their 4×4 tiles. A token slot past
     * n repeats the last token. Saves a batch of two or three rows (a batched decode step) the
     * FMAs of two empty token slots.
     */
    static void floatTile4x2(float[] x, int n, int cols, int full, int t, float[] buf, int bufOff, float[] s) {
        final int x0 = t * cols;
        final int x1 = Math.min(t + 1, n - 1) * cols;
        // a<row><token>
        FloatVector a00, a01, a10, a11, a20, a21, a30, a31;
        a00 = a01 = a10 = a11 = a20 = a21 = a30 = a31 = FloatVector.zero(WeightMatrix.FLOATS);
        for (int c = 0; c < full; c += WeightMatrix.LANES) {
            final FloatVector w0 = FloatVector.fromArray(WeightMatrix.FLOATS, buf, bufOff + c);
            final FloatVector w1 = FloatVector.fromArray(WeightMatrix.FLOATS, buf, bufOff + full + c);
            final FloatVector w2 = FloatVector.fromArray(WeightMatrix.FLOATS, buf, bufOff + 2 * full + c);
            final FloatVector w3 = FloatVector.fromArray(WeightMatrix.FLOATS, buf, bufOff + 3 * full + c);
            FloatVector xv = FloatVector.fromArray(WeightMatrix.FLOATS, x, x0 + c);
            a00 = w0.fma(xv, a00);
            a10 = w1.fma(xv, a10);
            a20 = w2.fma(xv, a20);
            a30 = w3.fma(xv, a30);
            xv = FloatVector.fromArray(WeightMatrix.FLOATS, x, x1 + c);
            a01 = w0.fma(xv, a01);
            a11 = w1.fma(xv, a11);
            a21 = w2.fma(xv, a21);
            a31 = w3.fma(xv, a31);
        }
        s[0] = VectorMath.sum(a00);
        s[1] = VectorMath.sum(a01);
        s[2] = VectorMath.sum(a10);
        s[3] = VectorMath.sum(a11);
        s[4] = VectorMath.sum(a20);
        s[5] = VectorMath.sum(a21);
        s[6] = VectorMath.sum(a30);
        s[7] = VectorMath.sum(a31);
    }
}
