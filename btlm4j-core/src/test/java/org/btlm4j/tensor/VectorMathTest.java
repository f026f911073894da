package org.btlm4j.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Arrays;
import java.util.Random;

import jdk.incubator.vector.FloatVector;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class VectorMathTest {

    /** float32 unit roundoff, 2^-24. */
    private static final double U = 0x1p-24;
    private static final int OFF = 3; // every slice starts off a vector boundary
    private static final int LANES = FloatVector.SPECIES_PREFERRED.length();

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
                // out = z·w + b with z = (x − mean)·inv. The float32 sums behind mean and variance
                // are off by ~√len·u relative to the spread (the corrected two-pass scheme keeps
                // that true with a large mean too); rounding the mean itself to float costs
                // u·|mean|, which is (shift/σ)·u in units of z (σ = 2); z·w + b then adds ulps of
                // |z·w| and |b|. Measured errors stay below a fifth of this bound.
                final double zw = Math.abs(ref[OFF + i] - bias[i]); // |z·w|
                final double tolerance = (8 * Math.sqrt(len) * U + shift / 2 * U) * (zw + Math.abs(weight[i]))
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
            // silu = x/(1 + e^−x): exp within 1.3 ulp, then an addition and a division: a few u.
            // Below x ≈ −88 the float result underflows to −0 while the true value is < 1e-36.
            final double s = ReferenceKernels.silu(v);
            assertWithin(s, silu[OFF + i], 6 * U * Math.abs(s) + 1e-36, "silu(" + v + ")");
            // gelu_new = x/(1 + e^(−2y)): a few u relative; the u·|x| term covers the rounding of
            // y = √(2/π)(x + 0.044715x³) itself, amplified where the result is tiny (x ≪ 0)
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
    void expIsAccurateEverywhere() {
        // every 1001st float from −104 to 89 (≈ 2 million arguments), both signs
        final float[] xs = new float[LANES];
        final float[] out = new float[LANES];
        double worst = 0;
        for (int sign = 0; sign < 2; sign++) {
            final int start = Float.floatToRawIntBits(sign == 0 ? 0f : -0f);
            final float limit = sign == 0 ? 89f : 104f;
            for (int bits = start; Math.abs(Float.intBitsToFloat(bits)) <= limit; bits += 1001 * LANES) {
                for (int i = 0; i < LANES; i++) {
                    xs[i] = Float.intBitsToFloat(bits + 1001 * i);
                }
                VectorMath.exp(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, xs, 0)).intoArray(out, 0);
                for (int i = 0; i < LANES; i++) {
                    final double ref = Math.exp(xs[i]);
                    if (ref >= Float.MIN_NORMAL && ref <= Float.MAX_VALUE) {
                        worst = Math.max(worst, Math.abs(out[i] - ref) / ref);
                    } else if (ref < Float.MIN_NORMAL) {
                        // below the normal range: an absolute error of about an ulp of MIN_NORMAL
                        assertWithin(ref, out[i], 2 * U * Float.MIN_NORMAL, "exp(" + xs[i] + ")");
                    } else {
                        assertEquals(Float.POSITIVE_INFINITY, out[i], "exp(" + xs[i] + ") overflows");
                    }
                }
            }
        }
        // the brief allows 1e-6 relative; the polynomial and its rounding give about 1.3 ulp
        assertTrue(worst < 2e-7, "worst relative error of exp " + worst);

        final float[] special = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 88.72f, 88.73f, 1000f, -200f, 0f};
        final float[] expected = {Float.NaN, Float.POSITIVE_INFINITY, 0f, (float) Math.exp(88.72f),
                Float.POSITIVE_INFINITY, Float.POSITIVE_INFINITY, 0f, 1f};
        for (int k = 0; k < special.length; k++) {
            Arrays.fill(xs, special[k]);
            VectorMath.exp(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, xs, 0)).intoArray(out, 0);
            assertEquals(expected[k], out[0], "exp(" + special[k] + ")");
        }
    }

    @Test
    void laneSumsUseOneFixedOrder() {
        // Sums must not depend on whether the code is compiled (reduceLanes(ADD) adds in a different
        // order in compiled code): both helpers add pairwise, halves first, which this recomputes.
        final Random rnd = new Random(9);
        final float[] v = new float[LANES];
        for (int trial = 0; trial < 1000; trial++) {
            for (int i = 0; i < LANES; i++) {
                v[i] = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(12) - 6)); // mixed magnitudes
            }
            final float[] fold = v.clone();
            for (int half = LANES / 2; half > 0; half /= 2) {
                for (int i = 0; i < half; i++) {
                    fold[i] += fold[i + half];
                }
            }
            assertEquals(fold[0], VectorMath.sum(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, v, 0)));
            assertEquals(fold[0], WeightMatrix.sumLanes(v.clone(), 0));
        }
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
