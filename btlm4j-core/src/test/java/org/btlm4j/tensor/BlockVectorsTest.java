package org.btlm4j.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.btlm4j.checkpoint.DType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class BlockVectorsTest {

    /** Random values quantized with the GGUF quantizer into a byte[] starting at {@code off}. */
    private static byte[] blocks(DType type, Random r, int off, int len) {
        int padded = (len + 31) / 32 * 32;
        float[] v = new float[padded];
        for (int i = 0; i < len; i++) {
            v[i] = (float) r.nextGaussian() * (1 + i % 7); // blocks of different scales
        }
        byte[] b = new byte[off + BlockVectors.bytes(type, padded) + 3];
        Quantizer.quantizeRow(type, v, 0, padded, MemorySegment.ofArray(b), off);
        return b;
    }

    @ParameterizedTest
    @CsvSource({"Q8_0, 1", "Q8_0, 33", "Q8_0, 32", "Q8_0, 80", "Q8_0, 6826", "Q8_0, 8192",
            "Q4_0, 1", "Q4_0, 17", "Q4_0, 33", "Q4_0, 64", "Q4_0, 80", "Q4_0, 6826"})
    void blockKernelsMatchTheirReferences(DType type, int len) {
        Random r = new Random(len * 31L + type.ordinal());
        byte[] x = blocks(type, r, 5, len);
        float[] a = new float[len + 6];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) r.nextGaussian();
        }
        double magnitude = 0;
        for (int i = 0; i < len; i++) {
            magnitude += Math.abs(a[i + 3] * BlockVectors.value(type, x, 5, i));
        }
        // float32 accumulation (one scale multiply per block) over len terms: a few ulps of the sum of magnitudes.
        assertEquals(BlockVectors.dotReference(type, a, 3, x, 5, len), BlockVectors.dot(type, a, 3, x, 5, len),
                1e-6 * magnitude + 1e-7);

        float[] y = new float[len + 4];
        float[] yRef = new float[len + 4];
        for (int i = 0; i < y.length; i++) {
            y[i] = yRef[i] = (float) r.nextGaussian();
        }
        BlockVectors.axpy(type, -0.75f, x, 5, y, 1, len);
        BlockVectors.axpyReference(type, -0.75f, x, 5, yRef, 1, len);
        for (int i = 0; i < y.length; i++) {
            // alpha·d rounded once, then one fused multiply-add per element, against a double reference
            assertEquals(yRef[i], y[i], 1e-6 * (1 + Math.abs(yRef[i]) + Math.abs(0.75 * (i >= 1 && i <= len
                    ? BlockVectors.value(type, x, 5, i - 1) : 0))), "element " + i);
        }
    }

    @ParameterizedTest
    @CsvSource({"Q8_0, 1", "Q8_0, 31", "Q8_0, 32", "Q8_0, 33", "Q8_0, 80", "Q8_0, 6826", "Q8_0, 8192",
            "Q4_0, 1", "Q4_0, 17", "Q4_0, 32", "Q4_0, 33", "Q4_0, 64", "Q4_0, 80", "Q4_0, 6826", "Q4_0, 8000"})
    void fourRowKernelsMatchTheirReferencesRowByRow(DType type, int len) {
        Random r = new Random(len * 17L + type.ordinal());
        int stride = BlockVectors.bytes(type, len) + 7; // rows apart by more than their blocks, unaligned
        int xOff = 3;
        byte[] x = new byte[xOff + 3 * stride + BlockVectors.bytes(type, len) + 2];
        for (int g = 0; g < BlockVectors.GROUP; g++) {
            byte[] row = blocks(type, r, 0, len);
            System.arraycopy(row, 0, x, xOff + g * stride, BlockVectors.bytes(type, len));
        }
        float[] a = new float[len + 5];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) r.nextGaussian();
        }
        float[] out = new float[6];
        BlockVectors.dot4(type, a, 2, x, xOff, stride, len, out, 1);
        for (int g = 0; g < BlockVectors.GROUP; g++) {
            double magnitude = 0;
            for (int i = 0; i < len; i++) {
                magnitude += Math.abs(a[i + 2] * BlockVectors.value(type, x, xOff + g * stride, i));
            }
            assertEquals(BlockVectors.dotReference(type, a, 2, x, xOff + g * stride, len), out[1 + g],
                    1e-6 * magnitude + 1e-7, "row " + g);
        }
        assertEquals(0f, out[0]);
        assertEquals(0f, out[5]);

        float[] alpha = {0.3f, -1.25f, 0.5f, 2f, -0.75f, 9f};
        float[] y = new float[len + 4];
        float[] yRef = new float[len + 4];
        for (int i = 0; i < y.length; i++) {
            y[i] = yRef[i] = (float) r.nextGaussian();
        }
        BlockVectors.axpy4(type, alpha, 1, x, xOff, stride, y, 3, len);
        for (int g = 0; g < BlockVectors.GROUP; g++) {
            BlockVectors.axpyReference(type, alpha[1 + g], x, xOff + g * stride, yRef, 3, len);
        }
        for (int i = 0; i < y.length; i++) {
            double magnitude = 1 + Math.abs(yRef[i]);
            for (int g = 0; g < BlockVectors.GROUP && i >= 3 && i < 3 + len; g++) {
                magnitude += Math.abs(alpha[1 + g] * BlockVectors.value(type, x, xOff + g * stride, i - 3));
            }
            // each alpha·d rounded once, four fused multiply-adds per element, against double
            assertEquals(yRef[i], y[i], 2e-6 * magnitude, "element " + i);
        }
    }

    @ParameterizedTest
    @CsvSource({"Q8_0", "Q4_0"})
    void fourRowKernelsRefuseRowsOutsideTheArray(DType type) {
        byte[] x = new byte[4 * BlockVectors.bytes(type, 64)];
        float[] a = new float[64];
        float[] out = new float[4];
        int stride = BlockVectors.bytes(type, 64);
        BlockVectors.dot4(type, a, 0, x, 0, stride, 64, out, 0); // exactly fits
        org.junit.jupiter.api.Assertions.assertThrows(IndexOutOfBoundsException.class,
                () -> BlockVectors.dot4(type, a, 0, x, 1, stride, 64, out, 0));
        org.junit.jupiter.api.Assertions.assertThrows(IndexOutOfBoundsException.class,
                () -> BlockVectors.axpy4(type, new float[4], 0, x, 0, stride + 1, a, 0, 64));
    }

    @ParameterizedTest
    @CsvSource({"Q8_0", "Q4_0"})
    void valuesAreTheQuantizersBlocksDequantized(DType type) {
        // independent of the kernels: the block layout as GGUF defines it, read byte by byte
        Random r = new Random(3);
        byte[] x = blocks(type, r, 0, 64);
        for (int i = 0; i < 64; i++) {
            int o = i / 32 * (int) type.blockBytes();
            float d = Float.float16ToFloat((short) ((x[o] & 0xFF) | (x[o + 1] & 0xFF) << 8));
            int j = i % 32;
            float expected = type == DType.Q8_0 ? d * x[o + 2 + j]
                    : d * ((j < 16 ? x[o + 2 + j] & 0xF : (x[o + 2 + j - 16] & 0xFF) >> 4) - 8);
            assertEquals(expected, BlockVectors.value(type, x, 0, i), 0f, "value " + i);
        }
    }
}
