package org.btlm4j.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class VectorMathTest {

    /** float32 unit roundoff, 2^-24. */
    private static final double U = 0x1p-24;
    private static final int OFF = 3; // every slice starts off a vector boundary

    private static float[] random(Random rnd, int len, double scale) {
        final float[] a = new float[OFF + len + 2];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) (RandomTensors.gaussianNonZero(rnd) * scale);
        }
        return a;
    }

    private static void assertWithin(double expected, double actual, double tolerance, String what) {
        if (!(Math.abs(actual - expected) <= tolerance)) {
            fail(what + ": got " + actual + ", expected " + expected + " ± " + tolerance);
        }
    }

    /** Elements outside [OFF, OFF + len) must be untouched. */
    private static void assertOutsideUnchanged(float[] before, float[] after, int len, String what) {
        assertArrayEquals(Arrays.copyOf(before, OFF), Arrays.copyOf(after, OFF), what + " wrote before its slice");
        assertArrayEquals(Arrays.copyOfRange(before, OFF + len, before.length),
                Arrays.copyOfRange(after, OFF + len, after.length), what + " wrote after its slice");
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 7, 15, 16, 17, 63, 64, 65, 80, 170, 2560, 6826})
    void dotAxpyAddScale(int len) {
        final Random rnd = new Random(len);
        final float[] a = random(rnd, len, 1);
        final float[] b = random(rnd, len, 1);
        double mag = 0;
        for (int i = 0; i < len; i++) {
            mag += Math.abs((double) a[OFF + i] * b[OFF + i]);
        }
        // a float32 sum of len products: error ≲ √len·u·Σ|terms| for random signs; 8× margin
        assertWithin(ReferenceKernels.dot(a, OFF, b, OFF, len), VectorMath.dot(a, OFF, b, OFF, len),
                8 * Math.sqrt(len + 1) * U * mag + Float.MIN_NORMAL, "dot len " + len);

        final float alpha = 0.37f;
        final float[] y = b.clone();
        final float[] ref = b.clone();
        VectorMath.axpy(alpha, a, OFF, y, OFF, len);
        ReferenceKernels.axpy(alpha, a, OFF, ref, OFF, len);
        for (int i = 0; i < len; i++) {
            // one fused multiply-add per element: correctly rounded, error ≤ u·|result| (½ ulp)
            assertWithin(ref[OFF + i], y[OFF + i], U * Math.abs(ref[OFF + i]) + Float.MIN_NORMAL, "axpy");
        }
        assertOutsideUnchanged(b, y, len, "axpy");

        final float[] sum = b.clone();
        VectorMath.addInPlace(sum, OFF, a, OFF, len);
        final float[] sumRef = b.clone();
        ReferenceKernels.addInPlace(sumRef, OFF, a, OFF, len);
        // a float addition is correctly rounded, like the double sum rounded to float
        assertArrayEquals(sumRef, sum, "addInPlace");

        final float[] scaled = b.clone();
        VectorMath.scale(scaled, OFF, len, 1.7f);
        final float[] scaledRef = b.clone();
        ReferenceKernels.scale(scaledRef, OFF, len, 1.7f);
        assertArrayEquals(scaledRef, scaled, "scale"); // one correctly rounded product each
    }

    @Test
    void addBiasAddsToEveryRow() {
        final Random rnd = new Random(5);
        final int n = 3;
        final int width = 170;
        final float[] y = RandomTensors.gaussian(rnd, n * width + 1);
        final float[] bias = RandomTensors.gaussian(rnd, width);
        final float[] ref = y.clone();
        VectorMath.addBias(y, n, width, bias);
        ReferenceKernels.addBias(ref, n, width, bias);
        assertArrayEquals(ref, y); // correctly rounded additions
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 16, 17, 80, 170, 2560, 6826})
    void layerNorm(int len) {
        final Random rnd = new Random(len);
        final float[] weight = Arrays.copyOfRange(random(rnd, len, 1), OFF, OFF + len);
        final float[] bias = Arrays.copyOfRange(random(rnd, len, 1), OFF, OFF + len);
        // a centred row, and one whose mean (300) dwarfs its spread, where one-pass formulas fail
        for (double shift : new double[] {0, 300}) {
            final float[] x = random(rnd, len, 2);
            for (int i = 0; i < len; i++) {
                x[OFF + i] += (float) shift;
            }
            final float[] out = new float[x.length];
            final float[] ref = new float[x.length];
            VectorMath.layerNorm(x, OFF, len, weight, bias, 1e-5f, out, OFF);
            ReferenceKernels.layerNorm(x, OFF, len, weight, bias, 1e-5f, ref, OFF);
            for (int i = 0; i < len; i++) {
                // out = z·w + b with z = (x − mean)·inv: mean, variance and z each carry errors of a
                // few u relative (√len·u for the sums, shown accurate by the corrected two-pass
                // scheme even with the shift: the error is relative to the spread, not to |mean|),
                // plus u·|x|/σ from representing x − mean; then z·w + b adds ulps of |z·w| + |b|.
                final double z = Math.abs(ref[OFF + i] - bias[i]);
                final double tolerance = (16 * Math.sqrt(len) * U + shift / 2 * U) * (z + Math.abs(weight[i]))
                        + 2 * U * Math.abs(bias[i]) + Float.MIN_NORMAL;
                assertWithin(ref[OFF + i], out[OFF + i], tolerance, "layerNorm len " + len + " shift " + shift + " [" + i + "]");
            }
            // in place gives the same result
            final float[] inPlace = x.clone();
            VectorMath.layerNorm(inPlace, OFF, len, weight, bias, 1e-5f, inPlace, OFF);
            assertArrayEquals(Arrays.copyOfRange(out, OFF, OFF + len), Arrays.copyOfRange(inPlace, OFF, OFF + len));
            assertOutsideUnchanged(x, inPlace, len, "layerNorm");
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 7, 16, 17, 80, 170, 2048, 6826})
    void softmax(int len) {
        final Random rnd = new Random(len);
        final float[] x = random(rnd, len, 4);
        x[OFF + len / 2] = 60; // exp(60) overflows float unless the max is subtracted
        final float[] out = x.clone();
        final float[] ref = x.clone();
        VectorMath.softmaxInPlace(out, OFF, len);
        ReferenceKernels.softmaxInPlace(ref, OFF, len);
        double total = 0;
        for (int i = 0; i < len; i++) {
            // exp within ~1 ulp, x − max exact or within ½ ulp of |x − max| (≤ 80 here, so an
            // absolute error ≤ 80·u in the exponent, i.e. a relative one in the result), the sum of
            // len positive terms within √len·u relative, one division: all relative to the result
            final double tolerance = (8 + 80 + 8 * Math.sqrt(len)) * U * ref[OFF + i] + Float.MIN_NORMAL;
            assertWithin(ref[OFF + i], out[OFF + i], tolerance, "softmax len " + len + " [" + i + "]");
            total += out[OFF + i];
        }
        assertEquals(1.0, total, 1e-5);
        assertOutsideUnchanged(x, out, len, "softmax");
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 16, 17, 170, 6826})
    void activations(int len) {
        final Random rnd = new Random(len);
        final float[] x = random(rnd, len, 4);
        // include the far tails: exp(−x) overflows to ∞ for x < −88, tanh saturates
        x[OFF] = -100f;
        if (len > 1) {
            x[OFF + len - 1] = 100f;
        }

        final float[] silu = x.clone();
        VectorMath.silu(silu, OFF, len);
        final float[] gelu = x.clone();
        VectorMath.geluTanh(gelu, OFF, len);
        final float[] up = random(rnd, len, 1);
        final float[] swiglu = new float[x.length];
        VectorMath.swiglu(up, OFF, x, OFF, swiglu, OFF, len);
        for (int i = 0; i < len; i++) {
            final double v = x[OFF + i];
            // silu = x/(1 + e^−x): exp ~1 ulp, then an addition and a division; a few u relative.
            // Below x ≈ −88 the float result underflows to −0 while the true value is < 1e-36.
            final double s = ReferenceKernels.silu(v);
            assertWithin(s, silu[OFF + i], 6 * U * Math.abs(s) + 1e-36, "silu(" + v + ")");
            // gelu_new in float32 as HF evaluates it: 1 + tanh(·) cancels for x ≪ 0, where tanh's
            // ~1 ulp (of 1) error becomes an absolute error ~u·|x|/2; elsewhere a few u relative
            final double g = ReferenceKernels.geluTanh(v);
            assertWithin(g, gelu[OFF + i], 8 * U * (Math.abs(g) + Math.abs(v)), "geluTanh(" + v + ")");
            final double w = up[OFF + i] * s;
            assertWithin(w, swiglu[OFF + i], 8 * U * Math.abs(w) + 1e-36, "swiglu");
        }
        assertOutsideUnchanged(x, silu, len, "silu");
        assertOutsideUnchanged(x, gelu, len, "geluTanh");

        // the whole-array overload and out == up aliasing
        final float[] up2 = Arrays.copyOfRange(up, OFF, OFF + len);
        final float[] gate2 = Arrays.copyOfRange(x, OFF, OFF + len);
        VectorMath.swiglu(up2, gate2, up2, len);
        assertArrayEquals(Arrays.copyOfRange(swiglu, OFF, OFF + len), up2);
    }

    @Test
    void checksBounds() {
        final float[] a = new float[10];
        assertThrows(IndexOutOfBoundsException.class, () -> VectorMath.dot(a, 5, a, 0, 6));
        assertThrows(IndexOutOfBoundsException.class, () -> VectorMath.scale(a, -1, 2, 1f));
        assertThrows(IndexOutOfBoundsException.class, () -> VectorMath.addBias(a, 2, 6, new float[6]));
        assertThrows(IndexOutOfBoundsException.class,
                () -> VectorMath.layerNorm(a, 0, 10, new float[9], new float[10], 1e-5f, a, 0));
    }
}
