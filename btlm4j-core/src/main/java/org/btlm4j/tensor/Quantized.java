package org.btlm4j.tensor;

import static java.nio.ByteOrder.LITTLE_ENDIAN;

import java.lang.foreign.ValueLayout;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/** Constants shared by {@link Q8_0Matrix}, {@link Q4_0Matrix} and {@link Quantizer}. */
final class Quantized {

    /** Weights per block (ggml's QK8_0 and QK4_0). */
    static final int QK = 32;

    static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LITTLE_ENDIAN);
    static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;

    /**
     * Whether the vector kernels apply: they load LANES bytes at a time (a 64- or 128-bit byte
     * vector for 8 or 16 float lanes), and a block of 32 must split into whole vectors. With
     * 4-lane floats (128-bit SSE only) the kernels fall back to scalar code.
     */
    static final boolean VECTOR = WeightMatrix.LANES >= 8 && WeightMatrix.LANES <= 16;
    /** LANES bytes: one load fills one float vector after widening. */
    static final VectorSpecies<Byte> BYTES = VECTOR
            ? VectorSpecies.of(byte.class, VectorShape.forBitSize(WeightMatrix.LANES * 8))
            : ByteVector.SPECIES_64;

    /** Columns per chunk of the x·W prefill path, which dequantizes rows piecewise into a buffer. */
    static final int COLUMN_CHUNK = 512;

    private Quantized() {
    }
}
