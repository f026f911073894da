package org.btlm4j.checkpoint;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Counts the NaN and infinite values of a tensor from their bit patterns (all exponent bits set),
 * eight bytes at a time. A checkpoint holding them still loads, but its outputs will be NaN, so
 * the loader warns about them by name.
 */
public final class NonFinite {

    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong F64 = U64;

    private NonFinite() {
    }

    /**
     * NaN and ±Inf values in {@code t}; for the block-quantized types, the weights of every block
     * whose scale is not finite. Integer tensors have none.
     */
    public static long count(TensorInfo t) {
        MemorySegment d = t.data();
        return switch (t.dtype()) {
            case F32 -> lanes(d, 0x7f8000007f800000L, 32);
            case BF16 -> lanes(d, 0x7f807f807f807f80L, 16);
            case F16 -> lanes(d, 0x7c007c007c007c00L, 16);
            case F64 -> {
                long n = 0;
                for (long i = 0; i < d.byteSize() / 8; i++) {
                    n += isNonFinite(d.getAtIndex(F64, i), 0x7ff0000000000000L) ? 1 : 0;
                }
                yield n;
            }
            case Q8_0, Q4_0 -> {
                long n = 0;
                int blockBytes = t.dtype().blockBytes();
                for (long at = 0; at + blockBytes <= d.byteSize(); at += blockBytes) {
                    n += isNonFinite(d.get(U16, at), 0x7c00) ? t.dtype().blockSize() : 0;
                }
                yield n;
            }
            case I64, I32, I16, I8, U8, BOOL -> 0;
        };
    }

    private static boolean isNonFinite(long bits, long exponent) {
        return (bits & exponent) == exponent;
    }

    /**
     * Values of {@code width} bits whose exponent bits ({@code exponents}, repeated per lane) are all
     * set. Per lane, {@code ~x & exponents} is zero exactly for such a value; adding the lane's
     * all-ones-below-the-top-bit constant sets the lane's top bit unless the lane was zero, and
     * cannot carry into the next lane because the exponent never includes the top (sign) bit.
     */
    private static long lanes(MemorySegment d, long exponents, int width) {
        long low = width == 16 ? 0x7fff7fff7fff7fffL : 0x7fffffff7fffffffL;
        long top = ~low;
        long n = 0;
        long words = d.byteSize() / 8;
        for (long i = 0; i < words; i++) {
            long flags = ((~d.getAtIndex(U64, i) & exponents) + low) & top;
            if (flags != top) {
                n += Long.bitCount(~flags & top);
            }
        }
        for (long at = words * 8; at < d.byteSize(); at += width / 8) { // the 2-, 4- or 6-byte tail
            long bits = width == 16 ? d.get(U16, at) : d.get(U32, at);
            n += isNonFinite(bits, exponents & (width == 16 ? 0xffff : 0xffffffffL)) ? 1 : 0;
        }
        return n;
    }
}
