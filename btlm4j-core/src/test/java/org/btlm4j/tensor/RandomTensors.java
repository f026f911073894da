package org.btlm4j.tensor;

import static java.nio.ByteOrder.LITTLE_ENDIAN;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import org.btlm4j.checkpoint.DType;
import org.btlm4j.checkpoint.TensorInfo;

/** Builds weight tensors for the tests: random N(0,1) values in off-heap memory at an unaligned offset. */
final class RandomTensors {

    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LITTLE_ENDIAN);

    private RandomTensors() {
    }

    /**
     * A [rows, cols] tensor of the given type whose data starts {@code misalign} bytes into a
     * 64-byte-aligned block, so that no vector load is aligned. The arena must be shared: the
     * pool's workers read the segment.
     */
    static TensorInfo random(Arena arena, String name, DType dtype, int rows, int cols, int misalign, Random rnd) {
        final long count = (long) rows * cols;
        final MemorySegment data = allocate(arena, count * dtype.bytes(), misalign);
        for (long i = 0; i < count; i++) {
            put(data, dtype, i, gaussianNonZero(rnd));
        }
        return new TensorInfo(name, dtype, new long[] {rows, cols}, data, "test");
    }

    /** A [rows, cols] 16-bit tensor holding the given raw bit patterns. */
    static TensorInfo raw16(Arena arena, String name, DType dtype, int rows, int cols, short[] bits, int misalign) {
        final MemorySegment data = allocate(arena, (long) bits.length * 2, misalign);
        for (int i = 0; i < bits.length; i++) {
            data.set(SHORT_LE, 2L * i, bits[i]);
        }
        return new TensorInfo(name, dtype, new long[] {rows, cols}, data, "test");
    }

    static MemorySegment allocate(Arena arena, long bytes, int misalign) {
        return arena.allocate(bytes + 64, 64).asSlice(misalign, bytes);
    }

    static void put(MemorySegment data, DType dtype, long i, float v) {
        switch (dtype) {
            case F32 -> data.set(FLOAT_LE, 4 * i, v);
            case F16 -> data.set(SHORT_LE, 2 * i, Float.floatToFloat16(v));
            case BF16 -> data.set(SHORT_LE, 2 * i, Quantizer.toBf16(v));
            default -> throw new IllegalArgumentException(dtype.toString());
        }
    }


    /** N(0,1), but never 0 (in any of the three formats), so that every term of every sum matters. */
    static float gaussianNonZero(Random rnd) {
        while (true) {
            final float v = (float) rnd.nextGaussian();
            if (Math.abs(v) > 1e-3f) {
                return v;
            }
        }
    }

    static float[] gaussian(Random rnd, int len) {
        final float[] a = new float[len];
        for (int i = 0; i < len; i++) {
            a[i] = gaussianNonZero(rnd);
        }
        return a;
    }
}
