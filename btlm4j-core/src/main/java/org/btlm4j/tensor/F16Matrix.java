package org.btlm4j.tensor;

import static java.nio.ByteOrder.LITTLE_ENDIAN;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

import org.btlm4j.checkpoint.DType;

/** An IEEE half-precision (float16) weight matrix; see {@link WeightMatrix}. */
public final class F16Matrix extends WeightMatrix {

    F16Matrix(String name, int rows, int cols, MemorySegment data) {
        super(name, rows, cols, data);
    }

    @Override
    public DType dtype() {
        return DType.F16;
    }

    // ---- element loads: the only part that differs between the three matrix classes ----

    /** Elements [i, i + LANES) as floats, exactly as {@link Float#float16ToFloat} converts them. */
    private static FloatVector load(MemorySegment w, long i) {
        return widen(ShortVector.fromMemorySegment(HALVES, w, i * Short.BYTES, LITTLE_ENDIAN));
    }

    /** As {@link #load(MemorySegment, long)}, reading only the lanes set in {@code m} (the others are 0). */
    private static FloatVector load(MemorySegment w, long i, VectorMask<Float> m) {
        return widen(ShortVector.fromMemorySegment(HALVES, w, i * Short.BYTES, LITTLE_ENDIAN, m.cast(HALVES)));
    }

    /**
     * IEEE half to float without a table or branches (JDK 25's Vector API has no half-float
     * conversion). Sign-extending to 32 bits and shifting left by 13 puts the sign at bit 31 and the
     * 15 exponent+fraction bits at 13..27, where they read as a float whose exponent is 112 too
     * small; multiplying by 2^112 rebiases them exactly, normals and subnormals alike (a scaling by
     * a power of two into float's normal range), and keeps signed zeros. Exponent 31 (infinity,
     * NaN) gets the float exponent forced to all ones before the multiplication, which leaves
     * infinities alone and turns a signalling NaN quiet with its payload kept, just as the
     * hardware conversion behind {@link Float#float16ToFloat} does.
     */
    private static FloatVector widen(ShortVector h) {
        final IntVector i = (IntVector) h.convertShape(VectorOperators.S2I, INTS, 0);
        final VectorMask<Integer> infOrNaN = i.lanewise(VectorOperators.AND, 0x7C00).compare(VectorOperators.EQ, 0x7C00);
        return i.lanewise(VectorOperators.LSHL, 13)
                .lanewise(VectorOperators.AND, 0x8FFF_E000)
                .lanewise(VectorOperators.OR, 0x7F80_0000, infOrNaN)
                .reinterpretAsFloats()
                .mul(0x1p112f);
    }

    // ---- kernels (kept identical in F32Matrix, F16Matrix and BF16Matrix) ----

    @Override
    void convertRow(int r, float[] dst, int dstOffset) {
        final MemorySegment w = data;
        final long e = (long) r * cols;
        final int full = cols - cols % LANES;
        for (int c = 0; c < full; c += LANES) {
            load(w, e + c).intoArray(dst, dstOffset + c);
        }
        if (full < cols) {
            final VectorMask<Float> m = FLOATS.indexInRange(full, cols);
            load(w, e + full, m).intoArray(dst, dstOffset + full, m);
        }
    }

    @Override
    void multiplyColumns(float[] x, int n, float[] y, int c0, int c1) {
        if (n == 1) {
            decodeColumns(x, y, c0, c1);
            return;
        }
        final int full4 = c0 + (c1 - c0) / (4 * LANES) * (4 * LANES);
        for (int rb = 0; rb < rows; rb += PREFILL_ROW_BLOCK) {
            final int re = Math.min(rows, rb + PREFILL_ROW_BLOCK);
            for (int c = c0; c < full4; c += 4 * LANES) {
                for (int t = 0; t < n; t += 4) {
                    prefillTile4(x, n, y, c, t, rb, re);
                }
            }
            for (int c = full4; c < c1; c += LANES) {
                final VectorMask<Float> m = FLOATS.indexInRange(c, c1);
                for (int t = 0; t < n; t += 4) {
                    prefillTile1(x, n, y, c, m, t, rb, re);
                }
            }
        }
    }

    /**
     * One token: y[c0..c1) = Σ_r x[r]·W[r][c0..c1), eight rows at a time. Each pass holds eight
     * broadcast x values in registers and sweeps the column range once, so W is read as eight
     * sequential streams and y (a few KiB, in L1) is updated once per eight rows.
     */
    private void decodeColumns(float[] x, float[] y, int c0, int c1) {
        final MemorySegment w = data;
        final long s = cols;
        final int full = c0 + (c1 - c0) / LANES * LANES;
        final VectorMask<Float> m = FLOATS.indexInRange(full, c1);
        Arrays.fill(y, c0, c1, 0f);
        int r = 0;
        for (; r + 8 <= rows; r += 8) {
            final FloatVector x0 = FloatVector.broadcast(FLOATS, x[r]);
            final FloatVector x1 = FloatVector.broadcast(FLOATS, x[r + 1]);
            final FloatVector x2 = FloatVector.broadcast(FLOATS, x[r + 2]);
            final FloatVector x3 = FloatVector.broadcast(FLOATS, x[r + 3]);
            final FloatVector x4 = FloatVector.broadcast(FLOATS, x[r + 4]);
            final FloatVector x5 = FloatVector.broadcast(FLOATS, x[r + 5]);
            final FloatVector x6 = FloatVector.broadcast(FLOATS, x[r + 6]);
            final FloatVector x7 = FloatVector.broadcast(FLOATS, x[r + 7]);
            final long e = r * s;
            for (int c = c0; c < full; c += LANES) {
                FloatVector a = FloatVector.fromArray(FLOATS, y, c);
                a = load(w, e + c).fma(x0, a);
                a = load(w, e + s + c).fma(x1, a);
                a = load(w, e + 2 * s + c).fma(x2, a);
                a = load(w, e + 3 * s + c).fma(x3, a);
                a = load(w, e + 4 * s + c).fma(x4, a);
                a = load(w, e + 5 * s + c).fma(x5, a);
                a = load(w, e + 6 * s + c).fma(x6, a);
                a = load(w, e + 7 * s + c).fma(x7, a);
                a.intoArray(y, c);
            }
            if (full < c1) {
                FloatVector a = FloatVector.fromArray(FLOATS, y, full, m);
                a = load(w, e + full, m).fma(x0, a);
                a = load(w, e + s + full, m).fma(x1, a);
                a = load(w, e + 2 * s + full, m).fma(x2, a);
                a = load(w, e + 3 * s + full, m).fma(x3, a);
                a = load(w, e + 4 * s + full, m).fma(x4, a);
                a = load(w, e + 5 * s + full, m).fma(x5, a);
                a = load(w, e + 6 * s + full, m).fma(x6, a);
                a = load(w, e + 7 * s + full, m).fma(x7, a);
                a.intoArray(y, full, m);
            }
        }
        for (; r < rows; r++) {
            final FloatVector xr = FloatVector.broadcast(FLOATS, x[r]);
            final long e = r * s;
            for (int c = c0; c < full; c += LANES) {
                load(w, e + c).fma(xr, FloatVector.fromArray(FLOATS, y, c)).intoArray(y, c);
            }
            if (full < c1) {
                load(w, e + full, m).fma(xr, FloatVector.fromArray(FLOATS, y, full, m)).intoArray(y, full, m);
            }
        }
    }

    /**
     * Tokens t..t+3 × columns [c, c + 4·LANES) over rows [rb, re): sixteen accumulators in
     * registers, each weight vector loaded (and converted) once for four tokens. Token slots past
     * n repeat the last token and are not stored, which keeps the loop free of branches.
     */
    private void prefillTile4(float[] x, int n, float[] y, int c, int t, int rb, int re) {
        final MemorySegment w = data;
        final long s = cols;
        final int x0 = t * rows;
        final int x1 = Math.min(t + 1, n - 1) * rows;
        final int x2 = Math.min(t + 2, n - 1) * rows;
        final int x3 = Math.min(t + 3, n - 1) * rows;
        final int y0 = t * cols + c;
        final int y1 = Math.min(t + 1, n - 1) * cols + c;
        final int y2 = Math.min(t + 2, n - 1) * cols + c;
        final int y3 = Math.min(t + 3, n - 1) * cols + c;
        final int l1 = LANES;
        final int l2 = 2 * LANES;
        final int l3 = 3 * LANES;
        FloatVector a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33;
        if (rb == 0) {
            a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = FloatVector.zero(FLOATS);
            a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = FloatVector.zero(FLOATS);
        } else {
            a00 = FloatVector.fromArray(FLOATS, y, y0);
            a01 = FloatVector.fromArray(FLOATS, y, y0 + l1);
            a02 = FloatVector.fromArray(FLOATS, y, y0 + l2);
            a03 = FloatVector.fromArray(FLOATS, y, y0 + l3);
            a10 = FloatVector.fromArray(FLOATS, y, y1);
            a11 = FloatVector.fromArray(FLOATS, y, y1 + l1);
            a12 = FloatVector.fromArray(FLOATS, y, y1 + l2);
            a13 = FloatVector.fromArray(FLOATS, y, y1 + l3);
            a20 = FloatVector.fromArray(FLOATS, y, y2);
            a21 = FloatVector.fromArray(FLOATS, y, y2 + l1);
            a22 = FloatVector.fromArray(FLOATS, y, y2 + l2);
            a23 = FloatVector.fromArray(FLOATS, y, y2 + l3);
            a30 = FloatVector.fromArray(FLOATS, y, y3);
            a31 = FloatVector.fromArray(FLOATS, y, y3 + l1);
            a32 = FloatVector.fromArray(FLOATS, y, y3 + l2);
            a33 = FloatVector.fromArray(FLOATS, y, y3 + l3);
        }
        for (int r = rb; r < re; r++) {
            final long e = r * s + c;
            final FloatVector w0 = load(w, e);
            final FloatVector w1 = load(w, e + l1);
            final FloatVector w2 = load(w, e + l2);
            final FloatVector w3 = load(w, e + l3);
            FloatVector b = FloatVector.broadcast(FLOATS, x[x0 + r]);
            a00 = w0.fma(b, a00);
            a01 = w1.fma(b, a01);
            a02 = w2.fma(b, a02);
            a03 = w3.fma(b, a03);
            b = FloatVector.broadcast(FLOATS, x[x1 + r]);
            a10 = w0.fma(b, a10);
            a11 = w1.fma(b, a11);
            a12 = w2.fma(b, a12);
            a13 = w3.fma(b, a13);
            b = FloatVector.broadcast(FLOATS, x[x2 + r]);
            a20 = w0.fma(b, a20);
            a21 = w1.fma(b, a21);
            a22 = w2.fma(b, a22);
            a23 = w3.fma(b, a23);
            b = FloatVector.broadcast(FLOATS, x[x3 + r]);
            a30 = w0.fma(b, a30);
            a31 = w1.fma(b, a31);
            a32 = w2.fma(b, a32);
            a33 = w3.fma(b, a33);
        }
        a00.intoArray(y, y0);
        a01.intoArray(y, y0 + l1);
        a02.intoArray(y, y0 + l2);
        a03.intoArray(y, y0 + l3);
        if (t + 1 < n) {
            a10.intoArray(y, y1);
            a11.intoArray(y, y1 + l1);
            a12.intoArray(y, y1 + l2);
            a13.intoArray(y, y1 + l3);
        }
        if (t + 2 < n) {
            a20.intoArray(y, y2);
            a21.intoArray(y, y2 + l1);
            a22.intoArray(y, y2 + l2);
            a23.intoArray(y, y2 + l3);
        }
        if (t + 3 < n) {
            a30.intoArray(y, y3);
            a31.intoArray(y, y3 + l1);
            a32.intoArray(y, y3 + l2);
            a33.intoArray(y, y3 + l3);
        }
    }

    /** As {@link #prefillTile4} for the one (possibly partial, per {@code m}) column vector at c. */
    private void prefillTile1(float[] x, int n, float[] y, int c, VectorMask<Float> m, int t, int rb, int re) {
        final MemorySegment w = data;
        final long s = cols;
        final int x0 = t * rows;
        final int x1 = Math.min(t + 1, n - 1) * rows;
        final int x2 = Math.min(t + 2, n - 1) * rows;
        final int x3 = Math.min(t + 3, n - 1) * rows;
        final int y0 = t * cols + c;
        final int y1 = Math.min(t + 1, n - 1) * cols + c;
        final int y2 = Math.min(t + 2, n - 1) * cols + c;
        final int y3 = Math.min(t + 3, n - 1) * cols + c;
        FloatVector a0, a1, a2, a3;
        if (rb == 0) {
            a0 = a1 = a2 = a3 = FloatVector.zero(FLOATS);
        } else {
            a0 = FloatVector.fromArray(FLOATS, y, y0, m);
            a1 = FloatVector.fromArray(FLOATS, y, y1, m);
            a2 = FloatVector.fromArray(FLOATS, y, y2, m);
            a3 = FloatVector.fromArray(FLOATS, y, y3, m);
        }
        for (int r = rb; r < re; r++) {
            final FloatVector wv = load(w, r * s + c, m);
            a0 = wv.fma(FloatVector.broadcast(FLOATS, x[x0 + r]), a0);
            a1 = wv.fma(FloatVector.broadcast(FLOATS, x[x1 + r]), a1);
            a2 = wv.fma(FloatVector.broadcast(FLOATS, x[x2 + r]), a2);
            a3 = wv.fma(FloatVector.broadcast(FLOATS, x[x3 + r]), a3);
        }
        a0.intoArray(y, y0, m);
        if (t + 1 < n) {
            a1.intoArray(y, y1, m);
        }
        if (t + 2 < n) {
            a2.intoArray(y, y2, m);
        }
        if (t + 3 < n) {
            a3.intoArray(y, y3, m);
        }
    }

    @Override
    void multiplyTransposedRows(float[] x, int n, float[] y, int r0, int r1) {
        for (int r = r0; r < r1; r += 4) {
            if (n == 1) {
                dotRows4(x, y, r, r1);
            } else {
                for (int t = 0; t < n; t += 4) {
                    dotTile4x4(x, n, y, r, r1, t);
                }
            }
        }
    }

    /**
     * One token: y[r..r+3] = W[r..r+3]·x, the four rows sharing each load of x. Row slots at or
     * past r1 repeat row r1 - 1 (already in cache) and are not stored.
     */
    private void dotRows4(float[] x, float[] y, int r, int r1) {
        final MemorySegment w = data;
        final long s = cols;
        final long e0 = r * s;
        final long e1 = Math.min(r + 1, r1 - 1) * s;
        final long e2 = Math.min(r + 2, r1 - 1) * s;
        final long e3 = Math.min(r + 3, r1 - 1) * s;
        final int full = cols - cols % LANES;
        FloatVector a0 = FloatVector.zero(FLOATS);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        for (int c = 0; c < full; c += LANES) {
            final FloatVector xv = FloatVector.fromArray(FLOATS, x, c);
            a0 = load(w, e0 + c).fma(xv, a0);
            a1 = load(w, e1 + c).fma(xv, a1);
            a2 = load(w, e2 + c).fma(xv, a2);
            a3 = load(w, e3 + c).fma(xv, a3);
        }
        if (full < cols) {
            final VectorMask<Float> m = FLOATS.indexInRange(full, cols);
            final FloatVector xv = FloatVector.fromArray(FLOATS, x, full, m);
            a0 = load(w, e0 + full, m).fma(xv, a0);
            a1 = load(w, e1 + full, m).fma(xv, a1);
            a2 = load(w, e2 + full, m).fma(xv, a2);
            a3 = load(w, e3 + full, m).fma(xv, a3);
        }
        y[r] = a0.reduceLanes(VectorOperators.ADD);
        if (r + 1 < r1) {
            y[r + 1] = a1.reduceLanes(VectorOperators.ADD);
        }
        if (r + 2 < r1) {
            y[r + 2] = a2.reduceLanes(VectorOperators.ADD);
        }
        if (r + 3 < r1) {
            y[r + 3] = a3.reduceLanes(VectorOperators.ADD);
        }
    }

    /**
     * Rows r..r+3 × tokens t..t+3: sixteen dot products sharing every load, so each weight vector
     * is read once per four tokens. Slots past r1 or n repeat the last row or token and are not
     * stored.
     */
    private void dotTile4x4(float[] x, int n, float[] y, int r, int r1, int t) {
        final MemorySegment w = data;
        final long s = cols;
        final long e0 = r * s;
        final long e1 = Math.min(r + 1, r1 - 1) * s;
        final long e2 = Math.min(r + 2, r1 - 1) * s;
        final long e3 = Math.min(r + 3, r1 - 1) * s;
        final int x0 = t * cols;
        final int x1 = Math.min(t + 1, n - 1) * cols;
        final int x2 = Math.min(t + 2, n - 1) * cols;
        final int x3 = Math.min(t + 3, n - 1) * cols;
        final int full = cols - cols % LANES;
        // a<row><token>
        FloatVector a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33;
        a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = FloatVector.zero(FLOATS);
        a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = FloatVector.zero(FLOATS);
        for (int c = 0; c < full; c += LANES) {
            final FloatVector w0 = load(w, e0 + c);
            final FloatVector w1 = load(w, e1 + c);
            final FloatVector w2 = load(w, e2 + c);
            final FloatVector w3 = load(w, e3 + c);
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
        if (full < cols) {
            final VectorMask<Float> m = FLOATS.indexInRange(full, cols);
            final FloatVector w0 = load(w, e0 + full, m);
            final FloatVector w1 = load(w, e1 + full, m);
            final FloatVector w2 = load(w, e2 + full, m);
            final FloatVector w3 = load(w, e3 + full, m);
            FloatVector xv = FloatVector.fromArray(FLOATS, x, x0 + full, m);
            a00 = w0.fma(xv, a00);
            a10 = w1.fma(xv, a10);
            a20 = w2.fma(xv, a20);
            a30 = w3.fma(xv, a30);
            xv = FloatVector.fromArray(FLOATS, x, x1 + full, m);
            a01 = w0.fma(xv, a01);
            a11 = w1.fma(xv, a11);
            a21 = w2.fma(xv, a21);
            a31 = w3.fma(xv, a31);
            xv = FloatVector.fromArray(FLOATS, x, x2 + full, m);
            a02 = w0.fma(xv, a02);
            a12 = w1.fma(xv, a12);
            a22 = w2.fma(xv, a22);
            a32 = w3.fma(xv, a32);
            xv = FloatVector.fromArray(FLOATS, x, x3 + full, m);
            a03 = w0.fma(xv, a03);
            a13 = w1.fma(xv, a13);
            a23 = w2.fma(xv, a23);
            a33 = w3.fma(xv, a33);
        }
        final boolean row1 = r + 1 < r1;
        final boolean row2 = r + 2 < r1;
        final boolean row3 = r + 3 < r1;
        storeTokenRow(y, t * rows + r, row1, row2, row3, a00, a10, a20, a30);
        if (t + 1 < n) {
            storeTokenRow(y, (t + 1) * rows + r, row1, row2, row3, a01, a11, a21, a31);
        }
        if (t + 2 < n) {
            storeTokenRow(y, (t + 2) * rows + r, row1, row2, row3, a02, a12, a22, a32);
        }
        if (t + 3 < n) {
            storeTokenRow(y, (t + 3) * rows + r, row1, row2, row3, a03, a13, a23, a33);
        }
    }

    private static void storeTokenRow(float[] y, int at, boolean row1, boolean row2, boolean row3,
                                      FloatVector a0, FloatVector a1, FloatVector a2, FloatVector a3) {
        y[at] = a0.reduceLanes(VectorOperators.ADD);
        if (row1) {
            y[at + 1] = a1.reduceLanes(VectorOperators.ADD);
        }
        if (row2) {
            y[at + 2] = a2.reduceLanes(VectorOperators.ADD);
        }
        if (row3) {
            y[at + 3] = a3.reduceLanes(VectorOperators.ADD);
        }
    }
}
