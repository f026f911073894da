package org.btlm4j.tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;

/**
 * What the GGUF block formats (Q8_0, Q4_0: blocks of {@link Quantized#QK} weights with one
 * scale) share: products y = x·W and row conversion, built on each format's
 * {@link #dequantizeBlocks}. The y = x·Wᵀ kernels, where the formats differ, stay in the formats.
 */
abstract sealed class BlockQuantizedMatrix extends WeightMatrix permits Q8_0Matrix, Q4_0Matrix {
    static final int QK = Quantized.QK;

    /**
     * The token count (two) for which x·Wᵀ converts each row's blocks inside the products instead
     * of dequantizing four rows into a buffer for the prefill tiles. Measured at [6826, 2560] with
     * 2 threads (BatchRowsBench, machine shared): n = 2 1.2–2.1× faster than the tiles for Q4_0,
     * 1.1–1.6× for Q8_0; n = 3 (a pair plus a pass with a repeated token) was not faster than the
     * tiles, and a four-token kernel (x of four tokens no longer fits in L1) was 0–15 % slower than
     * the tiles from n = 4 on.
     */
    static final int FEW_TOKENS = 2;

    /** Whole blocks per row (a partial last block is not counted). */
    final int fullBlocks;

    BlockQuantizedMatrix(String name, int rows, int cols, MemorySegment data) {
        super(name, rows, cols, data);
        this.fullBlocks = cols / QK;
    }

    /** Dequantizes blocks [b0, b1) of row {@code r} into {@code dst} from {@code off}, QK floats per block. */
    abstract void dequantizeBlocks(int r, int b0, int b1, float[] dst, int off);

    @Override
    void convertRow(int r, float[] dst, int dstOffset) {
        dequantizeBlocks(r, 0, fullBlocks, dst, dstOffset);
        if (fullBlocks * QK < cols) {
            final float[] last = new float[QK];
            dequantizeBlocks(r, fullBlocks, fullBlocks + 1, last, 0);
            System.arraycopy(last, 0, dst, dstOffset + fullBlocks * QK, cols - fullBlocks * QK);
        }
    }

    // ---- y = x·W (speed secondary: rows are dequantized into a buffer and added with axpy) ----

    @Override
    void multiplyRows(float[] x, int r0, int r1, float[] out, int o) {
        Arrays.fill(out, o, o + cols, 0f);
        final int blocks = (cols + QK - 1) / QK;
        final float[] buf = new float[blocks * QK];
        for (int r = r0; r < r1; r++) {
            dequantizeBlocks(r, 0, blocks, buf, 0);
            VectorMath.axpy(x[r], buf, 0, out, o, cols);
        }
    }

    /** A few tokens: each row is dequantized once and added to every token's output. */
    @Override
    void multiplyRowsBatch(float[] x, int n, int r0, int r1, float[] out, int o) {
        Arrays.fill(out, o, o + n * cols, 0f);
        final int blocks = (cols + QK - 1) / QK;
        final float[] buf = new float[blocks * QK];
        for (int r = r0; r < r1; r++) {
            dequantizeBlocks(r, 0, blocks, buf, 0);
            for (int t = 0; t < n; t++) {
                VectorMath.axpy(x[t * rows + r], buf, 0, out, o + t * cols, cols);
            }
        }
    }

    @Override
    void multiplyColumns(float[] x, int n, float[] y, int c0, int c1) {
        final float[] buf = new float[Quantized.COLUMN_CHUNK + 2 * QK];
        for (int a = c0; a < c1; a += Quantized.COLUMN_CHUNK) {
            final int e = Math.min(c1, a + Quantized.COLUMN_CHUNK);
            final int b0 = a / QK;
            final int b1 = (e + QK - 1) / QK;
            for (int t = 0; t < n; t++) {
                Arrays.fill(y, t * cols + a, t * cols + e, 0f);
            }
            for (int r = 0; r < rows; r++) {
                dequantizeBlocks(r, b0, b1, buf, 0);
                for (int t = 0; t < n; t++) {
                    VectorMath.axpy(x[t * rows + r], buf, a - b0 * QK, y, t * cols + a, e - a);
                }
            }
        }
    }

    /** One weight, scalar: the reference the kernels are tested against, and the partial last block. */
    abstract float element(int r, int c);

    /** y = x·Wᵀ for rows [r0, r1) one weight at a time, where the Vector API is not usable. */
    final void multiplyTransposedScalar(float[] x, int n, float[] y, int r0, int r1) {
        for (int t = 0; t < n; t++) {
            for (int r = r0; r < r1; r++) {
                float s = 0;
                for (int c = 0; c < cols; c++) {
                    s = Math.fma(x[t * cols + c], element(r, c), s);
                }
                y[t * rows + r] = s;
            }
        }
    }

    /** Floats of dequantized rows the prefill keeps at once: 256 KiB, a quarter of a 1 MiB L2. */
    static final int PREFILL_BLOCK_FLOATS = 64 * 1024;

    /**
     * y = x·Wᵀ for n ≥ 2 tokens and rows [r0, r1) (prefill and batched decode).
     *
     * <p>Rows are dequantized once (d·q is exact in float) into buf, a block of groups of four
     * that fits in L2 ({@link #PREFILL_BLOCK_FLOATS}), and multiplied by all n tokens in 4×4 float
     * tiles: for each four tokens, every group of the block, so the tokens' rows are read from
     * L3 once per block instead of once per four rows. Converting inside the tile (4×4 or 2×8)
     * measured 1.2–1.5× slower; splitting the columns into L1-sized chunks was slower still (the
     * 16 horizontal sums per tile and chunk dominate); for Q4_0, converting the nibbles inside
     * 2×8 tiles (once per eight tokens) measured slower too.
     */
    final void multiplyTransposedPrefill(float[] x, int n, float[] y, int r0, int r1) {
        final int full = fullBlocks * QK;
        final int groups = Math.max(1, Math.min((r1 - r0 + 3) / 4, PREFILL_BLOCK_FLOATS / (4 * Math.max(full, QK))));
        final float[] buf = new float[groups * 4 * full];
        final float[] sums = new float[8];
        for (int rb = r0; rb < r1; rb += 4 * groups) {
            final int rbEnd = Math.min(r1, rb + 4 * groups);
            for (int r = rb; r < rbEnd; r += 4) {
                for (int i = 0; i < 4; i++) {
                    dequantizeBlocks(Math.min(r + i, r1 - 1), 0, fullBlocks, buf, (r - rb + i) * full);
                }
            }
            for (int t = 0; t < n; t += 4) {
                for (int r = rb; r < rbEnd; r += 4) {
                    final int bufOff = (r - rb) * full;
                    if (n - t <= 2) {
                        Quantized.floatTile4x2(x, n, cols, full, t, buf, bufOff, sums);
                        for (int k = 0; k < 2 && t + k < n; k++) {
                            final int at = (t + k) * rows + r;
                            for (int i = 0; i < 4 && r + i < r1; i++) {
                                y[at + i] = full < cols ? sums[2 * i + k] + tail(x, (t + k) * cols, r + i)
                                        : sums[2 * i + k];
                            }
                        }
                    } else {
                        floatTile4x4(x, n, y, r, r1, t, buf, bufOff);
                    }
                }
            }
        }
    }

    /**
     * Rows r..r+3 × tokens t..t+3 (prefill) from buf at bufOff, where the caller has dequantized the four
     * rows' whole blocks (d·q, exact) once for all tokens; slots past r1 or n repeat the last row
     * or token and are not stored.
     */
    private void floatTile4x4(float[] x, int n, float[] y, int r, int r1, int t, float[] buf, int bufOff) {
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
            final FloatVector w0 = FloatVector.fromArray(FLOATS, buf, bufOff + c);
            final FloatVector w1 = FloatVector.fromArray(FLOATS, buf, bufOff + full + c);
            final FloatVector w2 = FloatVector.fromArray(FLOATS, buf, bufOff + 2 * full + c);
            final FloatVector w3 = FloatVector.fromArray(FLOATS, buf, bufOff + 3 * full + c);
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

    /** Σ_{c ∈ [32·fullBlocks, cols)} x[xo + c]·W[r][c]: the partial last block, scalar. */
    final float tail(float[] x, int xo, int r) {
        float s = 0;
        for (int c = fullBlocks * QK; c < cols; c++) {
            s = Math.fma(x[xo + c], element(r, c), s);
        }
        return s;
    }
}
