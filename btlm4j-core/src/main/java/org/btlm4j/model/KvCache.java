package org.btlm4j.model;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.btlm4j.BtlmException;

/**
 * Keys and values of every layer for the positions processed so far, stored transposed per head:
 * {@code [layer][head][headDim][position]}. Attention then works along positions: the scores of
 * a query are headDim axpys over contiguous runs of keys, and each output element one long dot
 * product over contiguous values — no horizontal sum per key, and the cache is read once per
 * query. Capacity grows in chunks as positions are added, up to {@code maxPositions}.
 */
public final class KvCache {
    private static final int CHUNK = 256;

    /** How cached keys and values are stored. */
    public enum Type {
        /** float32: exact, 4 bytes per element. */
        F32(4),
        /** float16 (IEEE half): half the memory and half the reading per decoded token. */
        F16(2);

        private final int bytes;

        Type(int bytes) {
            this.bytes = bytes;
        }

        public int bytes() {
            return bytes;
        }
    }

    private final Type type;

    private final int nLayer;
    private final int nHead;
    private final int headDim;
    private final int maxPositions;
    private final float[][] keys; // F32
    private final float[][] values;
    private final short[][] halfKeys; // F16
    private final short[][] halfValues;
    private int capacity;
    private int length;

    public KvCache(BtlmConfig config, int maxPositions) {
        this(config, maxPositions, Type.F32);
    }

    public KvCache(BtlmConfig config, int maxPositions, Type type) {
        this.type = java.util.Objects.requireNonNull(type, "type");
        if (maxPositions <= 0) {
            throw new BtlmException("context length must be positive, got " + maxPositions);
        }
        this.nLayer = config.nLayer();
        this.nHead = config.nHead();
        this.headDim = config.headDim();
        this.maxPositions = maxPositions;
        this.keys = new float[nLayer][];
        this.values = new float[nLayer][];
        this.halfKeys = new short[nLayer][];
        this.halfValues = new short[nLayer][];
        release();
    }

    private void release() {
        Arrays.fill(keys, new float[0]);
        Arrays.fill(values, new float[0]);
        Arrays.fill(halfKeys, new short[0]);
        Arrays.fill(halfValues, new short[0]);
    }

    public Type type() {
        return type;
    }

    /** Positions cached so far (P in spec section 4). */
    public int length() {
        return length;
    }

    /** The most positions this cache may hold. */
    public int maxPositions() {
        return maxPositions;
    }

    /** Positions there is room for now (grows on demand). */
    public int capacity() {
        return capacity;
    }

    /** Bytes currently allocated. */
    public long allocatedBytes() {
        return 2L * nLayer * nHead * (long) capacity * headDim * type.bytes();
    }

    /** Makes room for {@code count} more positions, growing in chunks. */
    void reserve(int count) {
        long needed = (long) length + count;
        if (needed > maxPositions) {
            throw new BtlmException("context is full: " + length + " cached + " + count + " new tokens exceed the "
                    + maxPositions + "-token context");
        }
        if (needed <= capacity) {
            return;
        }
        int newCapacity = (int) Math.min(maxPositions, Math.max(needed, Math.max(CHUNK, (long) capacity * 2)));
        newCapacity = (int) Math.min(maxPositions, ((long) newCapacity + CHUNK - 1) / CHUNK * CHUNK);
        int size = Math.multiplyExact(nHead * headDim, newCapacity);
        for (int l = 0; l < nLayer; l++) {
            if (type == Type.F32) {
                keys[l] = regrow(keys[l], new float[size], newCapacity);
                values[l] = regrow(values[l], new float[size], newCapacity);
            } else {
                halfKeys[l] = regrow(halfKeys[l], new short[size], newCapacity);
                halfValues[l] = regrow(halfValues[l], new short[size], newCapacity);
            }
        }
        capacity = newCapacity;
    }

    private <A> A regrow(A old, A grown, int newCapacity) {
        for (int row = 0; row < nHead * headDim; row++) {
            System.arraycopy(old, row * capacity, grown, row * newCapacity, length);
        }
        return grown;
    }

    /** F32 keys of {@code layer}: dimension d of head h at position j is at {@link #row}(h, d) + j. */
    float[] keys(int layer) {
        return keys[layer];
    }

    /** F32 values of {@code layer}, laid out as the keys. */
    float[] values(int layer) {
        return values[layer];
    }

    /** F16 keys of {@code layer}, laid out as {@link #keys}. */
    short[] halfKeys(int layer) {
        return halfKeys[layer];
    }

    short[] halfValues(int layer) {
        return halfValues[layer];
    }

    /** Start of the run of positions of dimension {@code d} of head {@code h}. */
    int row(int head, int d) {
        return (head * headDim + d) * capacity;
    }

    /** Writes the key and value of one head at {@code position} (headDim elements each). */
    void store(int layer, int head, int position, float[] k, int kOff, float[] v, int vOff) {
        int base = head * headDim * capacity + position;
        if (type == Type.F32) {
            float[] kl = keys[layer];
            float[] vl = values[layer];
            for (int d = 0; d < headDim; d++) {
                kl[base + d * capacity] = k[kOff + d];
                vl[base + d * capacity] = v[vOff + d];
            }
        } else {
            short[] kl = halfKeys[layer];
            short[] vl = halfValues[layer];
            for (int d = 0; d < headDim; d++) {
                kl[base + d * capacity] = Float.floatToFloat16(k[kOff + d]);
                vl[base + d * capacity] = Float.floatToFloat16(v[vOff + d]);
            }
        }
    }

    /** Marks {@code count} more positions as filled (after every layer wrote them). */
    void advance(int count) {
        length += count;
    }

    /** Forgets everything after the first {@code newLength} positions (to reuse a shared prefix). */
    public void truncate(int newLength) {
        if (newLength < 0 || newLength > length) {
            throw new IllegalArgumentException("cannot truncate a cache of " + length + " positions to " + newLength);
        }
        length = newLength;
    }

    /** Layers, heads and head size: the shape a saved cache must have to be restored here. */
    public int layers() {
        return nLayer;
    }

    public int heads() {
        return nHead;
    }

    public int headDim() {
        return headDim;
    }

    /** Bytes {@link #writePositions} writes: every layer's keys and values of the cached positions. */
    public long serializedBytes() {
        return 2L * nLayer * nHead * headDim * rowBytes(type, length);
    }

    /** Bytes of one row of {@code n} positions of {@code type}, as serialized. */
    public static long rowBytesOf(Type type, int n) {
        return rowBytes(type, n);
    }

    private static long rowBytes(Type type, int n) {
        return switch (type) {
            case F32, F16 -> (long) type.bytes() * n;
        };
    }

    /**
     * Writes the cached positions, layer by layer (keys, then values), each row of positions as
     * this cache's type stores it (little-endian): F32 floats, F16 halves. A new type adds its
     * case here and in {@link #readPositions}.
     */
    public void writePositions(java.nio.channels.WritableByteChannel out) throws java.io.IOException {
        java.nio.ByteBuffer row = java.nio.ByteBuffer.allocate((int) rowBytes(type, length))
                .order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int l = 0; l < nLayer; l++) {
            for (int kv = 0; kv < 2; kv++) {
                for (int r = 0; r < nHead * headDim; r++) {
                    row.clear();
                    switch (type) {
                        case F32 -> row.asFloatBuffer().put(kv == 0 ? keys[l] : values[l], r * capacity, length);
                        case F16 -> row.asShortBuffer().put(kv == 0 ? halfKeys[l] : halfValues[l], r * capacity, length);
                    }
                    row.limit(row.capacity());
                    while (row.hasRemaining()) {
                        out.write(row);
                    }
                }
            }
        }
    }

    /** Fills an empty cache with {@code count} positions written by {@link #writePositions}. */
    public void readPositions(java.nio.channels.ReadableByteChannel in, int count) throws java.io.IOException {
        if (length != 0) {
            throw new IllegalStateException("positions are read into an empty cache");
        }
        reserve(count);
        java.nio.ByteBuffer row = java.nio.ByteBuffer.allocate((int) rowBytes(type, count))
                .order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int l = 0; l < nLayer; l++) {
            for (int kv = 0; kv < 2; kv++) {
                for (int r = 0; r < nHead * headDim; r++) {
                    row.clear();
                    while (row.hasRemaining()) {
                        if (in.read(row) < 0) {
                            throw new java.io.EOFException("the KV data ends early");
                        }
                    }
                    row.flip();
                    switch (type) {
                        case F32 -> row.asFloatBuffer().get(kv == 0 ? keys[l] : values[l], r * capacity, count);
                        case F16 -> row.asShortBuffer().get(kv == 0 ? halfKeys[l] : halfValues[l], r * capacity, count);
                    }
                }
            }
        }
        length = count;
    }

    /** Empties the cache and releases its memory. */
    public void clear() {
        length = 0;
        capacity = 0;
        release();
    }

    /**
     * Fills {@code positions} positions with random keys and values of unit scale, as if a prompt
     * of that length had been processed: for benchmarks of decoding deep into the context, where
     * only the amount of cache read matters, not its values.
     */
    public void fillRandomForBenchmark(int positions, long seed) {
        clear();
        reserve(maxPositions); // all of it now, so that no growth is timed later
        if (positions > maxPositions) {
            throw new BtlmException(positions + " positions exceed the cache's " + maxPositions);
        }
        SplittableRandom r = new SplittableRandom(seed);
        for (int l = 0; l < nLayer; l++) {
            for (int row = 0; row < nHead * headDim; row++) {
                for (int j = 0; j < positions; j++) {
                    float k = (float) r.nextDouble(-1, 1);
                    float v = (float) r.nextDouble(-1, 1);
                    if (type == Type.F32) {
                        keys[l][row * capacity + j] = k;
                        values[l][row * capacity + j] = v;
                    } else {
                        halfKeys[l][row * capacity + j] = Float.floatToFloat16(k);
                        halfValues[l][row * capacity + j] = Float.floatToFloat16(v);
                    }
                }
            }
        }
        length = positions;
    }
}
