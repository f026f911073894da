package org.btlm4j.tensor;

import java.util.Objects;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float32 vector kernels of the forward pass besides the matrix products. All work on
 * {@code (array, offset, length)} slices, compute in float32, and handle any length (the last
 * partial vector is done with a lane mask). Outputs may be the same slice as an input where the
 * operation is element-wise.
 *
 * <p>Results are reproducible bit for bit: they do not depend on whether C2 has compiled the code
 * yet. That rules out two Vector API conveniences whose results differ between compiled code and
 * the interpreter's per-lane fallback: {@code reduceLanes(ADD)} (it adds the lanes in another
 * order) and the {@code EXP}/{@code TANH} operators (SVML when compiled, {@code Math} otherwise).
 * Lane sums use a fixed pairwise order ({@link #sum(FloatVector)}) and exp is computed here from
 * additions and multiplications ({@link #exp(FloatVector)}, within 1.3 ulp).
 */
public final class VectorMath {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    /** √(2/π), the constant of the tanh approximation of GELU ("gelu_new"). */
    private static final float GELU_C = (float) Math.sqrt(2.0 / Math.PI);
    private static final float GELU_K = 0.044715f;
    /**
     * The shuffles of {@link #sum(FloatVector)}: step k swaps lanes i and i ^ (L/2^k). Built once,
     * never modified.
     */
    private static final VectorShuffle<Float>[] FOLDS = folds();

    private VectorMath() {
    }

    /** Σ a[aOff + i]·b[bOff + i] for i &lt; len, with four accumulators to hide FMA latency. */
    public static float dot(float[] a, int aOff, float[] b, int bOff, int len) {
        Objects.checkFromIndexSize(aOff, len, a.length);
        Objects.checkFromIndexSize(bOff, len, b.length);
        FloatVector s0 = FloatVector.zero(F);
        FloatVector s1 = s0;
        FloatVector s2 = s0;
        FloatVector s3 = s0;
        int i = 0;
        for (; i + 4 * L <= len; i += 4 * L) {
            s0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), s0);
            s1 = FloatVector.fromArray(F, a, aOff + i + L).fma(FloatVector.fromArray(F, b, bOff + i + L), s1);
            s2 = FloatVector.fromArray(F, a, aOff + i + 2 * L).fma(FloatVector.fromArray(F, b, bOff + i + 2 * L), s2);
            s3 = FloatVector.fromArray(F, a, aOff + i + 3 * L).fma(FloatVector.fromArray(F, b, bOff + i + 3 * L), s3);
        }
        for (; i + L <= len; i += L) {
            s0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), s0);
        }
        if (i < len) {
            final VectorMask<Float> m = F.indexInRange(i, len);
            s1 = FloatVector.fromArray(F, a, aOff + i, m).fma(FloatVector.fromArray(F, b, bOff + i, m), s1);
        }
        return sum(s0.add(s1).add(s2.add(s3)));
    }

    /** y += alpha·x over len elements. */
    public static void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int len) {
        Objects.checkFromIndexSize(xOff, len, x.length);
        Objects.checkFromIndexSize(yOff, len, y.length);
        final FloatVector av = FloatVector.broadcast(F, alpha);
        int i = 0;
        for (; i + L <= len; i += L) {
            FloatVector.fromArray(F, x, xOff + i).fma(av, FloatVector.fromArray(F, y, yOff + i)).intoArray(y, yOff + i);
        }
        if (i < len) {
            final VectorMask<Float> m = F.indexInRange(i, len);
            FloatVector.fromArray(F, x, xOff + i, m).fma(av, FloatVector.fromArray(F, y, yOff + i, m))
                    .intoArray(y, yOff + i, m);
        }
    }

    /** y += x over len elements. */
    public static void addInPlace(float[] y, int yOff, float[] x, int xOff, int len) {
        Objects.checkFromIndexSize(xOff, len, x.length);
        Objects.checkFromIndexSize(yOff, len, y.length);
        int i = 0;
        for (; i + L <= len; i += L) {
            FloatVector.fromArray(F, y, yOff + i).add(FloatVector.fromArray(F, x, xOff + i)).intoArray(y, yOff + i);
        }
        if (i < len) {
            final VectorMask<Float> m = F.indexInRange(i, len);
            FloatVector.fromArray(F, y, yOff + i, m).add(FloatVector.fromArray(F, x, xOff + i, m))
                    .intoArray(y, yOff + i, m);
        }
    }

    /** x *= s over len elements. */
    public static void scale(float[] x, int off, int len, float s) {
        Objects.checkFromIndexSize(off, len, x.length);
        final FloatVector sv = FloatVector.broadcast(F, s);
        int i = 0;
        for (; i + L <= len; i += L) {
            FloatVector.fromArray(F, x, off + i).mul(sv).intoArray(x, off + i);
        }
        if (i < len) {
            final VectorMask<Float> m = F.indexInRange(i, len);
            FloatVector.fromArray(F, x, off + i, m).mul(sv).intoArray(x, off + i, m);
        }
    }

    /** For each of the n rows of y (row-major, {@code width} wide, from offset 0): row += bias[0, width). */
    public static void addBias(float[] y, int n, int width, float[] bias) {
        Objects.checkFromIndexSize(0, width, bias.length);
        Objects.checkFromIndexSize(0, Math.multiplyExact(n, width), y.length);
        for (int t = 0; t < n; t++) {
            addInPlace(y, t * width, bias, 0, width);
        }
    }

    /**
     * out = (x − mean) / √(var + eps) · weight + bias over one row of len elements, with the
     * population variance. {@code out} may be {@code x} at the same offset; weight and bias are read
     * from index 0.
     *
     * <p>Two passes rather than Σx² − mean², which cancels badly when the mean is large against the
     * spread; and the second pass also sums the deviations d = x − m₀ from the first estimate m₀,
     * whose float32 sum can be off by much more than an ulp when |mean| ≫ spread. Then
     * mean = m₀ + Σd/len and var = Σd²/len − (Σd/len)² (the corrected two-pass algorithm), both
     * from small, accurately summed terms.
     */
    public static void layerNorm(float[] x, int off, int len, float[] weight, float[] bias, float eps,
                                 float[] out, int outOff) {
        Objects.checkFromIndexSize(off, len, x.length);
        Objects.checkFromIndexSize(outOff, len, out.length);
        Objects.checkFromIndexSize(0, len, weight.length);
        Objects.checkFromIndexSize(0, len, bias.length);
        if (len == 0) {
            return;
        }
        final float m0 = sumOf(x, off, len) / len;
        final FloatVector m0v = FloatVector.broadcast(F, m0);
        FloatVector d0 = FloatVector.zero(F); // Σd
        FloatVector d1 = d0;
        FloatVector q0 = d0; // Σd²
        FloatVector q1 = d0;
        int i = 0;
        for (; i + 2 * L <= len; i += 2 * L) {
            final FloatVector a = FloatVector.fromArray(F, x, off + i).sub(m0v);
            final FloatVector b = FloatVector.fromArray(F, x, off + i + L).sub(m0v);
            d0 = d0.add(a);
            d1 = d1.add(b);
            q0 = a.fma(a, q0);
            q1 = b.fma(b, q1);
        }
        for (; i + L <= len; i += L) {
            final FloatVector a = FloatVector.fromArray(F, x, off + i).sub(m0v);
            d0 = d0.add(a);
            q0 = a.fma(a, q0);
        }
        if (i < len) {
            final VectorMask<Float> m = F.indexInRange(i, len);
            // masked-off lanes load 0, and 0 − m₀ must not count: subtract only in the live lanes
            final FloatVector a = FloatVector.fromArray(F, x, off + i, m).sub(m0v, m);
            d1 = d1.add(a);
            q1 = a.fma(a, q1);
        }
        final float meanDev = sum(d0.add(d1)) / len;
        final float mean = m0 + meanDev;
        final float variance = Math.max(0f, sum(q0.add(q1)) / len - meanDev * meanDev);
        final FloatVector mv = FloatVector.broadcast(F, mean);
        final FloatVector inv = FloatVector.broadcast(F, (float) (1.0 / Math.sqrt((double) variance + eps)));
        i = 0;
        for (; i + L <= len; i += L) {
            FloatVector.fromArray(F, x, off + i).sub(mv).mul(inv)
                    .fma(FloatVector.fromArray(F, weight, i), FloatVector.fromArray(F, bias, i))
                    .intoArray(out, outOff + i);
        }
        if (i < len) {
            final VectorMask<Float> m = F.indexInRange(i, len);
            FloatVector.fromArray(F, x, off + i, m).sub(mv).mul(inv)
                    .fma(FloatVector.fromArray(F, weight, i, m), FloatVector.fromArray(F, bias, i, m))
                    .intoArray(out, outOff + i, m);
        }
    }

    /**
     * In place: x = exp(x − max x) / Σ exp(x − max x) over len elements (subtracting the max keeps
     * exp finite).
     */
    public static void softmaxInPlace(float[] x, int off, int len) {
        Objects.checkFromIndexSize(off, len, x.length);
        if (len == 0) {
            return;
        }
        FloatVector mx = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        int i = 0;
        for (; i + L <= len; i += L) {
            mx = mx.max(FloatVector.fromArray(F, x, off + i));
        }
        float max = mx.reduceLanes(VectorOperators.MAX);
        for (; i < len; i++) {
            max = Math.max(max, x[off + i]);
        }
        final FloatVector mv = FloatVector.broadcast(F, max);
        FloatVector s = FloatVector.zero(F);
        i = 0;
        for (; i + L <= len; i += L) {
            final FloatVector e = exp(FloatVector.fromArray(F, x, off + i).sub(mv));
            e.intoArray(x, off + i);
            s = s.add(e);
        }
        if (i < len) {
            final VectorMask<Float> m = F.indexInRange(i, len);
            // masked-off lanes hold exp(0 − max); they are neither stored nor added
            final FloatVector e = exp(FloatVector.fromArray(F, x, off + i, m).sub(mv));
            e.intoArray(x, off + i, m);
            s = s.add(e, m);
        }
        scale(x, off, len, 1f / sum(s));
    }

    /** In place: x = x·sigmoid(x) = x / (1 + exp(−x)) (SiLU, a.k.a. swish). */
    public static void silu(float[] x, int off, int len) {
        Objects.checkFromIndexSize(off, len, x.length);
        int i = 0;
        for (; i + L <= len; i += L) {
            silu(FloatVector.fromArray(F, x, off + i)).intoArray(x, off + i);
        }
        if (i < len) {
            final VectorMask<Float> m = F.indexInRange(i, len);
            silu(FloatVector.fromArray(F, x, off + i, m)).intoArray(x, off + i, m);
        }
    }

    /**
     * In place: GPT-2's "gelu_new", 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
     */
    public static void geluTanh(float[] x, int off, int len) {
        Objects.checkFromIndexSize(off, len, x.length);
        int i = 0;
        for (; i + L <= len; i += L) {
            geluTanh(FloatVector.fromArray(F, x, off + i)).intoArray(x, off + i);
        }
        if (i < len) {
            final VectorMask<Float> m = F.indexInRange(i, len);
            geluTanh(FloatVector.fromArray(F, x, off + i, m)).intoArray(x, off + i, m);
        }
    }

    /** out = up ⊙ silu(gate) over [0, len) of each array; out may be up or gate. */
    public static void swiglu(float[] up, float[] gate, float[] out, int len) {
        swiglu(up, 0, gate, 0, out, 0, len);
    }

    /** out = up ⊙ silu(gate) (BTLM's SwiGLU: c_fc output times SiLU of the c_fc2 output). */
    public static void swiglu(float[] up, int upOff, float[] gate, int gateOff, float[] out, int outOff, int len) {
        Objects.checkFromIndexSize(upOff, len, up.length);
        Objects.checkFromIndexSize(gateOff, len, gate.length);
        Objects.checkFromIndexSize(outOff, len, out.length);
        int i = 0;
        for (; i + L <= len; i += L) {
            silu(FloatVector.fromArray(F, gate, gateOff + i)).mul(FloatVector.fromArray(F, up, upOff + i))
                    .intoArray(out, outOff + i);
        }
        if (i < len) {
            final VectorMask<Float> m = F.indexInRange(i, len);
            silu(FloatVector.fromArray(F, gate, gateOff + i, m)).mul(FloatVector.fromArray(F, up, upOff + i, m))
                    .intoArray(out, outOff + i, m);
        }
    }

    private static float sumOf(float[] x, int off, int len) {
        FloatVector s0 = FloatVector.zero(F);
        FloatVector s1 = s0;
        int i = 0;
        for (; i + 2 * L <= len; i += 2 * L) {
            s0 = s0.add(FloatVector.fromArray(F, x, off + i));
            s1 = s1.add(FloatVector.fromArray(F, x, off + i + L));
        }
        for (; i + L <= len; i += L) {
            s0 = s0.add(FloatVector.fromArray(F, x, off + i));
        }
        if (i < len) {
            s1 = s1.add(FloatVector.fromArray(F, x, off + i, F.indexInRange(i, len)));
        }
        return sum(s0.add(s1));
    }

    /**
     * The sum of the lanes of v, added pairwise in a fixed order (halves, then quarters, ...), so
     * that compiled and interpreted code agree to the bit; see the class comment.
     */
    static float sum(FloatVector v) {
        FloatVector s = v;
        for (VectorShuffle<Float> fold : FOLDS) {
            s = s.add(s.rearrange(fold));
        }
        return s.lane(0);
    }

    @SuppressWarnings("unchecked")
    private static VectorShuffle<Float>[] folds() {
        final int steps = Integer.numberOfTrailingZeros(L);
        final VectorShuffle<Float>[] folds = (VectorShuffle<Float>[]) new VectorShuffle<?>[steps];
        for (int k = 0; k < folds.length; k++) {
            final int half = L >> (k + 1);
            folds[k] = VectorShuffle.fromOp(F, i -> i ^ half);
        }
        return folds;
    }

    /**
     * e^x for every lane, from basic operations only (reproducible, see the class comment): within
     * 1.3 ulp (7.7e-8 relative, the worst over a sweep of 23 million arguments) wherever the result
     * is a normal float; smaller results are as accurate in absolute terms, down to 0 below
     * x ≈ −103.3; overflow gives +∞ and NaN stays NaN.
     *
     * <p>x = n·ln 2 + r with n = round(x/ln 2) and |r| ≤ ln 2 / 2 (ln 2 split in two constants so
     * that r is exact to float precision), e^r by its Taylor series to r⁷ (truncation error below
     * 5e-9), then the scaling by 2^n done as two multiplications by 2^⌊n/2⌋ and 2^(n−⌊n/2⌋), which
     * are both normal floats for every n in [-150, 129] and so round only once, at the end.
     */
    static FloatVector exp(FloatVector x) {
        // beyond these bounds e^x is 0 or ∞ in float anyway; clamping keeps n in range (NaN stays NaN)
        final FloatVector xc = x.max(-104f).min(89f);
        // round x/ln 2 to an integer: adding 1.5·2^23 pushes the fraction out of the mantissa
        final FloatVector big = xc.fma(1.44269504f, 12582912f);
        final FloatVector n = big.sub(12582912f);
        final FloatVector r = n.fma(FloatVector.broadcast(F, 2.12194440e-4f), // x − n·ln 2, in two parts
                n.fma(FloatVector.broadcast(F, -0.693359375f), xc));
        FloatVector p = r.fma(1f / 5040, 1f / 720);
        p = p.fma(r, FloatVector.broadcast(F, 1f / 120));
        p = p.fma(r, FloatVector.broadcast(F, 1f / 24));
        p = p.fma(r, FloatVector.broadcast(F, 1f / 6));
        p = p.fma(r, FloatVector.broadcast(F, 0.5f));
        p = p.fma(r, FloatVector.broadcast(F, 1f));
        p = p.fma(r, FloatVector.broadcast(F, 1f));
        final IntVector k = big.reinterpretAsInts().sub(0x4B40_0000); // n as an int
        final IntVector k1 = k.lanewise(VectorOperators.ASHR, 1);
        final FloatVector s1 = k1.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        final FloatVector s2 = k.sub(k1).add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return p.mul(s1).mul(s2);
    }

    /** x / (1 + exp(−x)); for x ≪ 0 exp overflows to ∞ and the quotient is −0, the right limit. */
    private static FloatVector silu(FloatVector v) {
        return v.div(exp(v.neg()).add(1f));
    }

    /**
     * gelu_new(x) = 0.5·x·(1 + tanh(y)) with y = √(2/π)·(x + 0.044715·x³), evaluated as the equal
     * x / (1 + e^(−2y)): 0.5·(1 + tanh y) is the logistic function of 2y, and this form has no
     * cancellation where tanh y is near −1.
     */
    private static FloatVector geluTanh(FloatVector v) {
        final FloatVector y = v.mul(v).mul(GELU_K).fma(v, v).mul(GELU_C); // √(2/π)·(x + k·x³)
        return v.div(exp(y.mul(-2f)).add(1f));
    }
}
