package org.btlm4j.tensor;

import static java.nio.ByteOrder.LITTLE_ENDIAN;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;

import org.btlm4j.checkpoint.DType;

/**
 * A float32 weight matrix; see {@link WeightMatrix}. Loads are plain vector loads.
 *
 * <p>The conversion is written out at every load instead of living in a helper method: C2 always
 * inlines the Vector API's own methods (they are annotated to force it), but stops inlining
 * ordinary methods once a compilation has grown past a node budget, which these unrolled kernels
 * reach; a load left as a call then returns its vector boxed on the heap, several times slower.
 * The kernels are otherwise the same in {@link F32Matrix}, {@link F16Matrix} and {@link BF16Matrix}
 * and must be kept in step.
 */
public final class F32Matrix extends WeightMatrix {

    private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LITTLE_ENDIAN);

    F32Matrix(String name, int rows, int cols, MemorySegment data) {
        super(name, rows, cols, data);
    }

    @Override
    public DType dtype() {
        return DType.F32;
    }

    /** Element i as a float, for scalar edges: the stored float. */
    private static float element(MemorySegment w, long i) {
        return w.get(FLOAT_LE, i * Float.BYTES);
    }

    // ---- kernels: the same in F32Matrix, F16Matrix and BF16Matrix but for the weight loads ----

    @Override
    void convertRow(int r, float[] dst, int dstOffset) {
        final MemorySegment w = data;
        final long e = (long) r * cols;
        final int full = cols - cols % LANES;
        for (int c = 0; c < full; c += LANES) {
            final FloatVector v = FloatVector.fromMemorySegment(FLOATS, w, (e + c) * Float.BYTES, LITTLE_ENDIAN);
            v.intoArray(dst, dstOffset + c);
        }
        if (full == cols) {
            return;
        }
        if (cols >= LANES) {
            // the last LANES columns again, overlapping: rewrites some values with themselves
            final FloatVector v =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + cols - LANES) * Float.BYTES, LITTLE_ENDIAN);
            v.intoArray(dst, dstOffset + cols - LANES);
        } else {
            for (int c = 0; c < cols; c++) {
                dst[dstOffset + c] = element(w, e + c);
            }
        }
    }

    /**
     * Prefill: for each block of {@link #PREFILL_ROW_BLOCK} rows and each tile of four column
     * vectors, every block of four tokens is run against the tile while it sits in L1/L2, so the
     * weights come from memory once per call and each converted weight vector feeds four FMAs.
     * The single vectors at the end of the range (and a partial last one) use 4×1 tiles. (8×3
     * tiles, 24 accumulators, measured no faster.)
     *
     * <p>No kernel uses masked loads from the segment: a partial last vector is read as the
     * overlapping window of the last LANES columns instead, which needs no second kind of load.
     */
    @Override
    void multiplyColumns(float[] x, int n, float[] y, int c0, int c1) {
        final int full4 = c0 + (c1 - c0) / (4 * LANES) * (4 * LANES);
        for (int rb = 0; rb < rows; rb += PREFILL_ROW_BLOCK) {
            final int re = Math.min(rows, rb + PREFILL_ROW_BLOCK);
            for (int c = c0; c < full4; c += 4 * LANES) {
                for (int t = 0; t < n; t += 4) {
                    prefillTile4(x, n, y, c, t, rb, re);
                }
            }
            for (int c = full4; c < c1; c += LANES) {
                if (c + LANES <= cols) {
                    for (int t = 0; t < n; t += 4) {
                        prefillTile1(x, n, y, c, ALL, t, rb, re);
                    }
                } else if (cols >= LANES) {
                    // the partial last vector: read the window of the last LANES columns whole
                    // (no masked load) and store only its lanes from c on
                    final int cw = cols - LANES;
                    final VectorMask<Float> m = FLOATS.indexInRange(cw - c, cols - c);
                    for (int t = 0; t < n; t += 4) {
                        prefillTile1(x, n, y, cw, m, t, rb, re);
                    }
                } else {
                    prefillScalar(x, n, y, c, cols, rb, re);
                }
            }
        }
    }

    /**
     * One token, rows [r0, r1): out[o, o + cols) = Σ_r x[r]·W[r][·], eight rows at a time. Each
     * pass holds eight broadcast x values in registers and sweeps the full row width, so a thread
     * reads its block of rows front to back (eight neighbouring streams) and updates its output
     * (in L1/L2) once per eight rows.
     *
     * <p>The loops are split into methods that pass no vectors between them (a vector passed to
     * or returned from a call that C2 does not inline is boxed on the heap).
     */
    @Override
    void multiplyRows(float[] x, int r0, int r1, float[] out, int o) {
        final int full = cols - cols % LANES;
        Arrays.fill(out, o, o + cols, 0f);
        int r = r0;
        for (; r + 8 <= r1; r += 8) {
            decodeRows8(x, r, out, o, full);
            if (full < cols) {
                decodeRows8Tail(x, r, out, o, full);
            }
        }
        for (; r < r1; r++) {
            decodeRow(x, r, out, o, full);
        }
    }

    /**
     * A few tokens (a batched decode step), rows [r0, r1): out[o + t·cols + c] = Σ_r x[t][r]·W[r][c]
     * for t &lt; n. As {@link #multiplyRows}, eight rows per pass sweep the full row width, so a
     * thread reads its block of rows front to back; each weight vector is loaded and converted
     * once and applied to every token. Columns after the last whole vector and rows after the last
     * group of eight are added in scalar code.
     */
    @Override
    void multiplyRowsBatch(float[] x, int n, int r0, int r1, float[] out, int o) {
        final int full = cols - cols % LANES;
        Arrays.fill(out, o, o + n * cols, 0f);
        int r = r0;
        for (; r + 8 <= r1; r += 8) {
            batchRows8(x, n, r, out, o, full);
        }
        final MemorySegment w = data;
        for (int t = 0; t < n; t++) {
            final int ot = o + t * cols;
            for (int i = r0; i < r1; i++) {
                // the rest of the columns of every row, and whole rows after the last group of eight
                final float xi = x[t * rows + i];
                for (int c = i < r ? full : 0; c < cols; c++) {
                    out[ot + c] = Math.fma(xi, element(w, (long) i * cols + c), out[ot + c]);
                }
            }
        }
    }

    /** out[o + t·cols + c] += Σ_{i<8} x[t][r+i]·W[r+i][c] for t &lt; n and the whole vectors of columns. */
    private void batchRows8(float[] x, int n, int r, float[] out, int o, int full) {
        final MemorySegment w = data;
        final long s = cols;
        final long e = r * s;
        for (int c = 0; c < full; c += LANES) {
            final FloatVector v0 = FloatVector.fromMemorySegment(FLOATS, w, (e + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v1 = FloatVector.fromMemorySegment(FLOATS, w, (e + s + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v2 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + 2 * s + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v3 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + 3 * s + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v4 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + 4 * s + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v5 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + 5 * s + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v6 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + 6 * s + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v7 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + 7 * s + c) * Float.BYTES, LITTLE_ENDIAN);
for (int t = 0; t < n; t++) {
                final int xt = t * rows + r;
                final int oc = o + t * cols + c;
                // two independent chains of four, as in decodeRows8
                FloatVector a = v0.fma(FloatVector.broadcast(FLOATS, x[xt]), FloatVector.fromArray(FLOATS, out, oc));
                FloatVector b = v1.mul(FloatVector.broadcast(FLOATS, x[xt + 1]));
                a = v2.fma(FloatVector.broadcast(FLOATS, x[xt + 2]), a);
                b = v3.fma(FloatVector.broadcast(FLOATS, x[xt + 3]), b);
                a = v4.fma(FloatVector.broadcast(FLOATS, x[xt + 4]), a);
                b = v5.fma(FloatVector.broadcast(FLOATS, x[xt + 5]), b);
                a = v6.fma(FloatVector.broadcast(FLOATS, x[xt + 6]), a);
                b = v7.fma(FloatVector.broadcast(FLOATS, x[xt + 7]), b);
                a.add(b).intoArray(out, oc);
            }
        }
    }

    /** out[o + c] += Σ_{i<8} x[r+i]·W[r+i][c] for the whole vectors of columns, c &lt; full. */
    private void decodeRows8(float[] x, int r, float[] out, int o, int full) {
        final MemorySegment w = data;
        final long s = cols;
        final long e = r * s;
        final FloatVector x0 = FloatVector.broadcast(FLOATS, x[r]);
        final FloatVector x1 = FloatVector.broadcast(FLOATS, x[r + 1]);
        final FloatVector x2 = FloatVector.broadcast(FLOATS, x[r + 2]);
        final FloatVector x3 = FloatVector.broadcast(FLOATS, x[r + 3]);
        final FloatVector x4 = FloatVector.broadcast(FLOATS, x[r + 4]);
        final FloatVector x5 = FloatVector.broadcast(FLOATS, x[r + 5]);
        final FloatVector x6 = FloatVector.broadcast(FLOATS, x[r + 6]);
        final FloatVector x7 = FloatVector.broadcast(FLOATS, x[r + 7]);
        for (int c = 0; c < full; c += LANES) {
            final FloatVector v0 = FloatVector.fromMemorySegment(FLOATS, w, (e + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v1 = FloatVector.fromMemorySegment(FLOATS, w, (e + s + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v2 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + 2 * s + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v3 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + 3 * s + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v4 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + 4 * s + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v5 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + 5 * s + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v6 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + 6 * s + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v7 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + 7 * s + c) * Float.BYTES, LITTLE_ENDIAN);
            // two independent chains of four, so an FMA does not wait on the previous one's result
            FloatVector a = v0.fma(x0, FloatVector.fromArray(FLOATS, out, o + c));
            FloatVector b = v1.mul(x1);
            a = v2.fma(x2, a);
            b = v3.fma(x3, b);
            a = v4.fma(x4, a);
            b = v5.fma(x5, b);
            a = v6.fma(x6, a);
            b = v7.fma(x7, b);
            a.add(b).intoArray(out, o + c);
        }
    }

    /** As {@link #decodeRows8} for the last, partial vector of columns [full, cols). */
    private void decodeRows8Tail(float[] x, int r, float[] out, int o, int full) {
        final MemorySegment w = data;
        final long s = cols;
        if (cols < LANES) {
            for (int i = 0; i < 8; i++) {
                scalarRow(x[r + i], (r + i) * s, out, o, 0);
            }
            return;
        }
        // the window of the last LANES columns, read whole (in bounds, no masked load); only its
        // lanes from `full` on are new, and only they are added to out
        final int c = cols - LANES;
        final long e = r * s + c;
        FloatVector a = FloatVector.zero(FLOATS);
        for (int i = 0; i < 8; i++) {
            final FloatVector v = FloatVector.fromMemorySegment(FLOATS, w, (e + i * s) * Float.BYTES, LITTLE_ENDIAN);
            a = v.fma(FloatVector.broadcast(FLOATS, x[r + i]), a);
        }
        final VectorMask<Float> m = FLOATS.indexInRange(c - full, cols - full);
        FloatVector.fromArray(FLOATS, out, o + c, m).add(a).intoArray(out, o + c, m);
    }

    /** out[o + c] += x[r]·W[r][c] for all columns; {@code full} ends the whole vectors. */
    private void decodeRow(float[] x, int r, float[] out, int o, int full) {
        final MemorySegment w = data;
        final long e = (long) r * cols;
        final FloatVector xr = FloatVector.broadcast(FLOATS, x[r]);
        for (int c = 0; c < full; c += LANES) {
            final FloatVector v = FloatVector.fromMemorySegment(FLOATS, w, (e + c) * Float.BYTES, LITTLE_ENDIAN);
            v.fma(xr, FloatVector.fromArray(FLOATS, out, o + c)).intoArray(out, o + c);
        }
        if (full == cols) {
            return;
        }
        if (cols < LANES) {
            scalarRow(x[r], e, out, o, 0);
            return;
        }
        final int c = cols - LANES; // the overlapping last window, as in decodeRows8Tail
        final VectorMask<Float> m = FLOATS.indexInRange(c - full, cols - full);
        final FloatVector v = FloatVector.fromMemorySegment(FLOATS, w, (e + c) * Float.BYTES, LITTLE_ENDIAN);
        v.fma(xr, FloatVector.fromArray(FLOATS, out, o + c, m)).intoArray(out, o + c, m);
    }

    /** out[o + c] += xr·W[e + c] for c in [from, cols), in scalar code (matrices narrower than a vector). */
    private void scalarRow(float xr, long e, float[] out, int o, int from) {
        final MemorySegment w = data;
        for (int c = from; c < cols; c++) {
            out[o + c] = Math.fma(xr, element(w, e + c), out[o + c]);
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
            final FloatVector w0 = FloatVector.fromMemorySegment(FLOATS, w, e * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector w1 = FloatVector.fromMemorySegment(FLOATS, w, (e + l1) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector w2 = FloatVector.fromMemorySegment(FLOATS, w, (e + l2) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector w3 = FloatVector.fromMemorySegment(FLOATS, w, (e + l3) * Float.BYTES, LITTLE_ENDIAN);
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

    /**
     * As {@link #prefillTile4} for the one column vector starting at c (a whole vector, or the
     * window of the last LANES columns), storing only the lanes set in {@code m}.
     */
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
            final FloatVector wv = FloatVector.fromMemorySegment(FLOATS, w, (r * s + c) * Float.BYTES, LITTLE_ENDIAN);
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

    /** Prefill for a matrix narrower than one vector: y[t][c] for c in [c0, c1), rows [rb, re), in scalar code. */
    private void prefillScalar(float[] x, int n, float[] y, int c0, int c1, int rb, int re) {
        final MemorySegment w = data;
        for (int t = 0; t < n; t++) {
            for (int c = c0; c < c1; c++) {
                float sum = rb == 0 ? 0f : y[t * cols + c];
                for (int r = rb; r < re; r++) {
                    sum = Math.fma(x[t * rows + r], element(w, (long) r * cols + c), sum);
                }
                y[t * cols + c] = sum;
            }
        }
    }

    @Override
    void multiplyTransposedRows(float[] x, int n, float[] y, int r0, int r1) {
        final float[] lanes = new float[16 * LANES]; // accumulators parked for the scalar sums
        if (n == 1) {
            for (int r = r0; r < r1; r++) {
                y[r] = dotRow(x, r, lanes);
            }
            return;
        }
        for (int r = r0; r < r1; r += 4) {
            for (int t = 0; t < n; t += 4) {
                if (n - t <= 2) {
                    dotTile4x2(x, n, y, r, r1, t, lanes);
                } else {
                    dotTile4x4(x, n, y, r, r1, t, lanes);
                }
            }
        }
    }

    /**
     * One token: W[r]·x. One row at a time, so a thread reads its rows as a single sequential
     * stream (measured faster than sharing x loads across rows read side by side), with eight
     * accumulators: more loads in flight, and the FMA latency covered. Columns after the last
     * whole vector are added by {@link #tail} in scalar code, keeping this method small enough for
     * C2 to inline every vector op (see {@link #multiplyRows}).
     */
    private float dotRow(float[] x, int r, float[] lanes) {
        final MemorySegment w = data;
        final long e = (long) r * cols;
        final int full8 = cols - cols % (8 * LANES);
        final int full = cols - cols % LANES;
        FloatVector a0 = FloatVector.zero(FLOATS);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        FloatVector a4 = a0;
        FloatVector a5 = a0;
        FloatVector a6 = a0;
        FloatVector a7 = a0;
        int c = 0;
        for (; c < full8; c += 8 * LANES) {
            final FloatVector v0 = FloatVector.fromMemorySegment(FLOATS, w, (e + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v1 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + c + LANES) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v2 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + c + 2 * LANES) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v3 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + c + 3 * LANES) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v4 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + c + 4 * LANES) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v5 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + c + 5 * LANES) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v6 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + c + 6 * LANES) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector v7 =
                    FloatVector.fromMemorySegment(FLOATS, w, (e + c + 7 * LANES) * Float.BYTES, LITTLE_ENDIAN);
            a0 = v0.fma(FloatVector.fromArray(FLOATS, x, c), a0);
            a1 = v1.fma(FloatVector.fromArray(FLOATS, x, c + LANES), a1);
            a2 = v2.fma(FloatVector.fromArray(FLOATS, x, c + 2 * LANES), a2);
            a3 = v3.fma(FloatVector.fromArray(FLOATS, x, c + 3 * LANES), a3);
            a4 = v4.fma(FloatVector.fromArray(FLOATS, x, c + 4 * LANES), a4);
            a5 = v5.fma(FloatVector.fromArray(FLOATS, x, c + 5 * LANES), a5);
            a6 = v6.fma(FloatVector.fromArray(FLOATS, x, c + 6 * LANES), a6);
            a7 = v7.fma(FloatVector.fromArray(FLOATS, x, c + 7 * LANES), a7);
        }
        for (; c < full; c += LANES) {
            final FloatVector v = FloatVector.fromMemorySegment(FLOATS, w, (e + c) * Float.BYTES, LITTLE_ENDIAN);
            a0 = v.fma(FloatVector.fromArray(FLOATS, x, c), a0);
        }
        final FloatVector sum = a0.add(a1).add(a2.add(a3)).add(a4.add(a5).add(a6.add(a7)));
        sum.intoArray(lanes, 0);
        return full < cols ? sumLanes(lanes, 0) + tail(x, 0, e, full) : sumLanes(lanes, 0);
    }

    /**
     * Rows r..r+3 × tokens t, t+1: as {@link #dotTile4x4} for the last one or two tokens of a
     * batch, so that a batch of a few rows (one per sequence of a batched decode step) does not
     * pay the FMAs of empty token slots. Each sum is added in the same order as in the 4×4 tile.
     */
    private void dotTile4x2(float[] x, int n, float[] y, int r, int r1, int t, float[] lanes) {
        final MemorySegment w = data;
        final long s = cols;
        final long e0 = r * s;
        final long e1 = Math.min(r + 1, r1 - 1) * s;
        final long e2 = Math.min(r + 2, r1 - 1) * s;
        final long e3 = Math.min(r + 3, r1 - 1) * s;
        final int x0 = t * cols;
        final int x1 = Math.min(t + 1, n - 1) * cols;
        final int full = cols - cols % LANES;
        // a<row><token>
        FloatVector a00, a01, a10, a11, a20, a21, a30, a31;
        a00 = a01 = a10 = a11 = a20 = a21 = a30 = a31 = FloatVector.zero(FLOATS);
        for (int c = 0; c < full; c += LANES) {
            final FloatVector w0 = FloatVector.fromMemorySegment(FLOATS, w, (e0 + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector w1 = FloatVector.fromMemorySegment(FLOATS, w, (e1 + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector w2 = FloatVector.fromMemorySegment(FLOATS, w, (e2 + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector w3 = FloatVector.fromMemorySegment(FLOATS, w, (e3 + c) * Float.BYTES, LITTLE_ENDIAN);
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
        }
        // park the accumulators, lanes[(2·row + token)·LANES ...], and add in scalar code (sumLanes
        // pairs the lanes as the 4×4 tile's folds do)
        a00.intoArray(lanes, 0);
        a01.intoArray(lanes, LANES);
        a10.intoArray(lanes, 2 * LANES);
        a11.intoArray(lanes, 3 * LANES);
        a20.intoArray(lanes, 4 * LANES);
        a21.intoArray(lanes, 5 * LANES);
        a30.intoArray(lanes, 6 * LANES);
        a31.intoArray(lanes, 7 * LANES);
        for (int k = 0; k < 2 && t + k < n; k++) {
            final int xo = (t + k) * cols;
            final int at = (t + k) * rows + r;
            for (int i = 0; i < 4 && r + i < r1; i++) {
                final float sum = sumLanes(lanes, (2 * i + k) * LANES);
                y[at + i] = full < cols ? sum + tail(x, xo, (r + i) * s, full) : sum;
            }
        }
    }

    /**
     * Rows r..r+3 × tokens t..t+3: sixteen dot products sharing every load, so each weight vector
     * is read once per four tokens. Slots past r1 or n repeat the last row or token and are not
     * stored; the columns after the last whole vector are added by {@link #tail}. The lane sums are
     * done in scalar code through {@code lanes} (see {@link WeightMatrix#sumLanes}).
     */
    private void dotTile4x4(float[] x, int n, float[] y, int r, int r1, int t, float[] lanes) {
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
            final FloatVector w0 = FloatVector.fromMemorySegment(FLOATS, w, (e0 + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector w1 = FloatVector.fromMemorySegment(FLOATS, w, (e1 + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector w2 = FloatVector.fromMemorySegment(FLOATS, w, (e2 + c) * Float.BYTES, LITTLE_ENDIAN);
            final FloatVector w3 = FloatVector.fromMemorySegment(FLOATS, w, (e3 + c) * Float.BYTES, LITTLE_ENDIAN);
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
        if (LANES == 16) {
            // 16 accumulators of 16 lanes: fold them pairwise into one vector of 16 sums. Each fold
            // adds the two halves (then quarters, ...) of two vectors at once, keeping one's sums
            // in the lanes where the mask is clear and the other's where it is set; lane i ends up
            // with the sum of accumulator 4·row + token = reverse4(i).
            final FloatVector b0 = a00.blend(a01, FOLD_MASK_8).add(a01.blend(a00, FOLD_MASK_8).rearrange(FOLD_8));
            final FloatVector b1 = a02.blend(a03, FOLD_MASK_8).add(a03.blend(a02, FOLD_MASK_8).rearrange(FOLD_8));
            final FloatVector b2 = a10.blend(a11, FOLD_MASK_8).add(a11.blend(a10, FOLD_MASK_8).rearrange(FOLD_8));
            final FloatVector b3 = a12.blend(a13, FOLD_MASK_8).add(a13.blend(a12, FOLD_MASK_8).rearrange(FOLD_8));
            final FloatVector b4 = a20.blend(a21, FOLD_MASK_8).add(a21.blend(a20, FOLD_MASK_8).rearrange(FOLD_8));
            final FloatVector b5 = a22.blend(a23, FOLD_MASK_8).add(a23.blend(a22, FOLD_MASK_8).rearrange(FOLD_8));
            final FloatVector b6 = a30.blend(a31, FOLD_MASK_8).add(a31.blend(a30, FOLD_MASK_8).rearrange(FOLD_8));
            final FloatVector b7 = a32.blend(a33, FOLD_MASK_8).add(a33.blend(a32, FOLD_MASK_8).rearrange(FOLD_8));
            final FloatVector c0 = b0.blend(b1, FOLD_MASK_4).add(b1.blend(b0, FOLD_MASK_4).rearrange(FOLD_4));
            final FloatVector c1 = b2.blend(b3, FOLD_MASK_4).add(b3.blend(b2, FOLD_MASK_4).rearrange(FOLD_4));
            final FloatVector c2 = b4.blend(b5, FOLD_MASK_4).add(b5.blend(b4, FOLD_MASK_4).rearrange(FOLD_4));
            final FloatVector c3 = b6.blend(b7, FOLD_MASK_4).add(b7.blend(b6, FOLD_MASK_4).rearrange(FOLD_4));
            final FloatVector d0 = c0.blend(c1, FOLD_MASK_2).add(c1.blend(c0, FOLD_MASK_2).rearrange(FOLD_2));
            final FloatVector d1 = c2.blend(c3, FOLD_MASK_2).add(c3.blend(c2, FOLD_MASK_2).rearrange(FOLD_2));
            d0.blend(d1, FOLD_MASK_1).add(d1.blend(d0, FOLD_MASK_1).rearrange(FOLD_1)).intoArray(lanes, 0);
            for (int k = 0; k < 4 && t + k < n; k++) {
                final int xo = (t + k) * cols;
                final int at = (t + k) * rows + r;
                for (int i = 0; i < 4 && r + i < r1; i++) {
                    final float sum = lanes[Integer.reverse(4 * i + k) >>> 28];
                    y[at + i] = full < cols ? sum + tail(x, xo, (r + i) * s, full) : sum;
                }
            }
            return;
        }
        // other vector sizes: park the accumulators, lanes[(4·row + token)·LANES ...], and add in
        // scalar code (see sumLanes)
        a00.intoArray(lanes, 0);
        a01.intoArray(lanes, LANES);
        a02.intoArray(lanes, 2 * LANES);
        a03.intoArray(lanes, 3 * LANES);
        a10.intoArray(lanes, 4 * LANES);
        a11.intoArray(lanes, 5 * LANES);
        a12.intoArray(lanes, 6 * LANES);
        a13.intoArray(lanes, 7 * LANES);
        a20.intoArray(lanes, 8 * LANES);
        a21.intoArray(lanes, 9 * LANES);
        a22.intoArray(lanes, 10 * LANES);
        a23.intoArray(lanes, 11 * LANES);
        a30.intoArray(lanes, 12 * LANES);
        a31.intoArray(lanes, 13 * LANES);
        a32.intoArray(lanes, 14 * LANES);
        a33.intoArray(lanes, 15 * LANES);
        for (int k = 0; k < 4 && t + k < n; k++) {
            final int xo = (t + k) * cols;
            final int at = (t + k) * rows + r;
            for (int i = 0; i < 4 && r + i < r1; i++) {
                final float sum = sumLanes(lanes, (4 * i + k) * LANES);
                y[at + i] = full < cols ? sum + tail(x, xo, (r + i) * s, full) : sum;
            }
        }
    }

    /** Σ_{c ∈ [from, cols)} x[xOff + c]·W[e + c] in scalar code: the columns after the last whole vector. */
    private float tail(float[] x, int xOff, long e, int from) {
        final MemorySegment w = data;
        float sum = 0;
        for (int c = from; c < cols; c++) {
            sum = Math.fma(x[xOff + c], element(w, e + c), sum);
        }
        return sum;
    }
}
