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
