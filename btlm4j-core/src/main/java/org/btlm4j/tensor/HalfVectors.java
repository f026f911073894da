package org.btlm4j.tensor;

import static jdk.incubator.vector.VectorOperators.AND;
import static jdk.incubator.vector.VectorOperators.EQ;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.OR;
import static jdk.incubator.vector.VectorOperators.S2I;

import java.util.Objects;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Kernels over float16 values held in {@code short[]} (the half-precision KV cache): the two
 * products attention needs, converting with the exact half → float rule of {@link F16Matrix}.
 */
public final class HalfVectors {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Short> H = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    private static final int L = F.length();
    private static final float TWO_112 = 0x1.0p112f;

    private HalfVectors() {
    }

    /** float → float16 bits, rounding to nearest even. */
    public static short toHalf(float v) {
        return Float.floatToFloat16(v);
    }

    /**
     * y[yOff + i] += alpha · half(x[xOff + i]) for i &lt; len.
     *
     * <p>A plain loop: C2 vectorizes {@code Float.float16ToFloat} over arrays with the CPU's
     * half-precision conversion (F16C), which measured twice as fast (0.06 vs 0.13 ns per element,
     * one thread) as the exponent-shifting conversion the Vector API needs (still used by
     * {@link #dot}, whose float sum C2 does not vectorize: a plain loop measured 0.82 ns).
     */
    public static void axpy(float alpha, short[] x, int xOff, float[] y, int yOff, int len) {
        Objects.checkFromIndexSize(xOff, len, x.length);
        Objects.checkFromIndexSize(yOff, len, y.length);
        for (int i = 0; i < len; i++) {
            y[yOff + i] += alpha * Float.float16ToFloat(x[xOff + i]);
        }
    }

    /** Σ a[aOff + i] · half(b[bOff + i]) for i &lt; len. */
    public static float dot(float[] a, int aOff, short[] b, int bOff, int len) {
        Objects.checkFromIndexSize(aOff, len, a.length);
        Objects.checkFromIndexSize(bOff, len, b.length);
        FloatVector s0 = FloatVector.zero(F);
        FloatVector s1 = s0;
        int i = 0;
        for (; i + 2 * L <= len; i += 2 * L) {
            IntVector h0 = ShortVector.fromArray(H, b, bOff + i).convertShape(S2I, I, 0).reinterpretAsInts();
            IntVector h1 = ShortVector.fromArray(H, b, bOff + i + L).convertShape(S2I, I, 0).reinterpretAsInts();
            FloatVector v0 = h0.lanewise(LSHL, 13).lanewise(AND, 0x8FFF_E000)
                    .lanewise(OR, 0x7F80_0000, h0.lanewise(AND, 0x7C00).compare(EQ, 0x7C00))
                    .reinterpretAsFloats().mul(TWO_112);
            FloatVector v1 = h1.lanewise(LSHL, 13).lanewise(AND, 0x8FFF_E000)
                    .lanewise(OR, 0x7F80_0000, h1.lanewise(AND, 0x7C00).compare(EQ, 0x7C00))
                    .reinterpretAsFloats().mul(TWO_112);
            s0 = FloatVector.fromArray(F, a, aOff + i).fma(v0, s0);
            s1 = FloatVector.fromArray(F, a, aOff + i + L).fma(v1, s1);
        }
        float sum = VectorMath.sum(s0.add(s1)); // fixed lane order: the same bits compiled or not
        for (; i < len; i++) {
            sum += a[aOff + i] * Float.float16ToFloat(b[bOff + i]);
        }
        return sum;
    }

    /** Scalar references for the tests. */
    static float dotReference(float[] a, int aOff, short[] b, int bOff, int len) {
        double s = 0;
        for (int i = 0; i < len; i++) {
            s += (double) a[aOff + i] * Float.float16ToFloat(b[bOff + i]);
        }
        return (float) s;
    }

    static void axpyReference(float alpha, short[] x, int xOff, float[] y, int yOff, int len) {
        for (int i = 0; i < len; i++) {
            y[yOff + i] = (float) (y[yOff + i] + (double) alpha * Float.float16ToFloat(x[xOff + i]));
        }
    }

}
