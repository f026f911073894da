package org.btlm4j.tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * What the GGUF block formats (Q8_0, Q4_0: blocks of {@link Quantized#QK} weights with one
 * scale) share: products y = x·W and row conversion, built on each format's
 * {@link #dequantizeBlocks}. The y = x·Wᵀ kernels, where the formats differ, stay in the formats.
 */
abstract sealed class BlockQuantizedMatrix extends WeightMatrix permits Q8_0Matrix, Q4_0Matrix {
    static final int QK = Quantized.QK;

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
}
