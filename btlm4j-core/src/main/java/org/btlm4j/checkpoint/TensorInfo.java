package org.btlm4j.checkpoint;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * One named tensor of a checkpoint: its element type, its shape (row-major, contiguous) and a
 * view of exactly its bytes in the (usually memory-mapped) file. Little-endian, as every supported
 * format stores it. Block-quantized types pad the last dimension to whole blocks
 * ({@link DType#byteSize}).
 *
 * @param source the file it came from, for error messages
 */
public record TensorInfo(String name, DType dtype, long[] shape, MemorySegment data, String source) {

    public TensorInfo {
        shape = shape.clone();
        elementCountOf(shape, name, source);
        long bytes = dtype.byteSize(shape);
        if (bytes < 0 || bytes != data.byteSize()) {
            throw new CheckpointException(source + ": tensor " + name + " has shape " + Arrays.toString(shape)
                    + " of " + dtype + " but " + data.byteSize() + " bytes of data");
        }
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** Size of dimension {@code i}. */
    public long dim(int i) {
        return shape[i];
    }

    public long elementCount() {
        return elementCountOf(shape, name, source);
    }

    /** Shape as written in messages: {@code [2560, 7680]}. */
    public String shapeString() {
        return Arrays.toString(shape);
    }

    private static long elementCountOf(long[] shape, String name, String source) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new CheckpointException(source + ": tensor " + name + " has a negative dimension in "
                        + Arrays.toString(shape));
            }
            try {
                n = Math.multiplyExact(n, d);
            } catch (ArithmeticException e) {
                throw new CheckpointException(source + ": tensor " + name + " has shape " + Arrays.toString(shape)
                        + " whose size overflows");
            }
        }
        return n;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && t.name.equals(name) && t.dtype == dtype && Arrays.equals(t.shape, shape)
                && t.data.equals(data);
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + " " + dtype + shapeString();
    }
}
