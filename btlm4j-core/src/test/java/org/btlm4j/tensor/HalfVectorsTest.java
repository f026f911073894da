package org.btlm4j.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class HalfVectorsTest {
    @ParameterizedTest
    @ValueSource(ints = {1, 7, 16, 31, 80, 170, 6826})
    void halfKernelsMatchTheirReferences(int len) {
        Random r = new Random(len);
        float[] a = new float[len + 5];
        short[] b = new short[len + 9];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = Float.floatToFloat16((float) r.nextGaussian());
        }
        double magnitude = 0;
        for (int i = 0; i < len; i++) {
            magnitude += Math.abs(a[i + 3] * Float.float16ToFloat(b[i + 2]));
        }
        // float32 accumulation over len terms: a few ulps of the sum of magnitudes.
        assertEquals(HalfVectors.dotReference(a, 3, b, 2, len), HalfVectors.dot(a, 3, b, 2, len),
                1e-6 * magnitude + 1e-7);

        float[] y = new float[len + 4];
        float[] yRef = new float[len + 4];
        for (int i = 0; i < y.length; i++) {
            y[i] = yRef[i] = (float) r.nextGaussian();
        }
        HalfVectors.axpy(0.75f, b, 4, y, 1, len);
        HalfVectors.axpyReference(0.75f, b, 4, yRef, 1, len);
        for (int i = 0; i < y.length; i++) {
            // one fused multiply-add per element against a double reference rounded once
            assertEquals(yRef[i], y[i], 1e-6 * (1 + Math.abs(yRef[i])), "element " + i);
        }
    }
}
