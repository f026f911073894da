package org.btlm4j.model;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.btlm4j.BtlmException;
import org.btlm4j.checkpoint.DType;
import org.btlm4j.tensor.BlockVectors;
import org.btlm4j.tensor.Quantizer;

/**
 * Keys and values of every layer for the positions processed so far, stored transposed per head:
 * {@code [layer][head][headDim][position]}. Attention then works along positions: the scores of
 * a query are headDim axpys over contiguous runs of keys, and each output element one long dot
 * product over contiguous values — no horizontal sum per key, and the cache is read once per
 * query. Capacity grows in chunks as positions are added, up to {@code maxPositions}.
 *
 * <p>The quantized types (Q8_0, Q4_0) put their 32-value blocks along positions: a block is 32
 * consecutive positions of one dimension of one head, with one scale. Attention then applies a
 * scale once per 32 keys (one broadcast per block in the score axpy, one multiply per block in the
 * value dot), and reads the blocks as a contiguous run just as the float types are read. (Blocks
 * across the head dimension would need a scale per key per dimension, and BTLM-3B's head
 * dimension, 80, is no multiple of 32.) A block's scale depends on all its 32 values, so the last,
 * incomplete block of every row is kept in float32 (the tail, {@link #tailKeys}) and quantized once
 * its 32nd position is stored: appending costs a float store, and quantizing each value happens
 * once. Attention reads positions below {@link #quantizedLength} from the blocks and the rest
 * from the tail.
 */
public final class KvCache {
    private static final int CHUNK = 256;

    /** How cached keys and values are stored. */
    public enum Type {
        /** float32: exact, 4 bytes per element. */
        F32(128, null),
        /** float16 (IEEE half): half the memory and half the reading per decoded token. */
        F16(64, null),
        /**
         * GGUF Q8_0 blocks of 32 positions (fp16 scale + 32 int8): 1.0625 bytes per element. The
         * last, incomplete block of each row is kept in float32 until it fills.
         */
        Q8_0(34, DType.Q8_0),
        /** GGUF Q4_0 blocks of 32 positions (fp16 scale + 32 nibbles): 0.5625 bytes per element. */
        Q4_0(18, DType.Q4_0);

        private final int bytesPer32;
        private final DType blockType;

        Type(int bytesPer32, DType blockType) {
            this.bytesPer32 = bytesPer32;
            this.blockType = blockType;
        }

        /** Bytes that {@code elements} cached values take (a whole number of blocks for Q8_0/Q4_0). */
        public long bytes(long elements) {
            return (elements + 31) / 32 * bytesPer32;
        }

        /** The GGUF block type of a quantized cache, null for F32 and F16. */
        public DType blockType() {
            return blockType;
        }

        /** The name as options spell it: f32, f16, q8_0, q4_0. */
        public String optionName() {
            return name().toLowerCase(java.util.Locale.ROOT);
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
    private final byte[][] blockKeys; // Q8_0, Q4_0: [row][capacity / 32 blocks]
    private final byte[][] blockValues;
    private final float[][] tailKeys; // Q8_0, Q4_0: [row][32], position j at j % 32
    private final float[][] tailValues;
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
        this.blockKeys = new byte[nLayer][];
        this.blockValues = new byte[nLayer][];
        this.tailKeys = new float[nLayer][];
        this.tailValues = new float[nLayer][];
        release();
    }

    private void release() {
        Arrays.fill(keys, new float[0]);
        Arrays.fill(values, new float[0]);
        Arrays.fill(halfKeys, new short[0]);
        Arrays.fill(halfValues, new short[0]);
        Arrays.fill(blockKeys, new byte[0]);
        Arrays.fill(blockValues, new byte[0]);
        Arrays.fill(tailKeys, new float[0]);
        Arrays.fill(tailValues, new float[0]);
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
        long rows = 2L * nLayer * nHead * headDim;
        long tail = type.blockType() == null || capacity == 0 ? 0 : rows * 32 * Float.BYTES;
        return rows * type.bytes(capacity) + tail;
    }

    /** Bytes a cache of {@code positions} positions takes (quantized types: plus their float tails). */
    public static long bytesFor(BtlmConfig config, Type type, int positions) {
        long rows = 2L * config.nLayer() * config.nEmbd();
        long rounded = ((long) positions + CHUNK - 1) / CHUNK * CHUNK;
        return rows * type.bytes(rounded) + (type.blockType() == null ? 0 : rows * 32 * Float.BYTES);
    }

    /**
     * Makes room for {@code positions} positions at once (at most the context), so that a run
     * whose length is known up front never regrows: a regrowth copies the cache, and the old and
     * the new copy are both in memory for a moment.
     */
    public void preallocate(int positions) {
        int target = Math.min(maxPositions, Math.max(0, positions));
        if (target > capacity) {
            reserve(target - length);
        }
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
        if (capacity == 0) {
            newCapacity = (int) Math.max(needed, Math.min(maxPositions, CHUNK)); // the first allocation: as asked
        }
        newCapacity = (int) Math.min(maxPositions, ((long) newCapacity + CHUNK - 1) / CHUNK * CHUNK);
        newCapacity = (newCapacity + 31) / 32 * 32; // whole blocks per row
        int rows = nHead * headDim;
        int size = Math.multiplyExact(rows, newCapacity);
        for (int l = 0; l < nLayer; l++) {
            switch (type) {
                case F32 -> {
                    keys[l] = regrow(keys[l], new float[size], capacity, newCapacity, length);
                    values[l] = regrow(values[l], new float[size], capacity, newCapacity, length);
                }
                case F16 -> {
                    halfKeys[l] = regrow(halfKeys[l], new short[size], capacity, newCapacity, length);
                    halfValues[l] = regrow(halfValues[l], new short[size], capacity, newCapacity, length);
                }
                case Q8_0, Q4_0 -> {
                    int oldRow = rowBytes(capacity);
                    int newRow = rowBytes(newCapacity);
                    int bytes = Math.multiplyExact(rows, newRow);
                    blockKeys[l] = regrow(blockKeys[l], new byte[bytes], oldRow, newRow, oldRow);
                    blockValues[l] = regrow(blockValues[l], new byte[bytes], oldRow, newRow, oldRow);
                    if (tailKeys[l].length == 0) {
                        tailKeys[l] = new float[rows * 32];
                        tailValues[l] = new float[rows * 32];
                    }
                }
            }
        }
        capacity = newCapacity;
    }

    private <A> A regrow(A old, A grown, int oldRow, int newRow, int used) {
        for (int row = 0; row < nHead * headDim; row++) {
            System.arraycopy(old, row * oldRow, grown, row * newRow, used);
        }
        return grown;
    }

    private int rowBytes(int positions) {
        return (int) type.bytes(positions);
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

    /** Q8_0/Q4_0 keys of {@code layer}: the blocks of dimension d of head h start at {@link #blockRow}(h, d). */
    byte[] blockKeys(int layer) {
        return blockKeys[layer];
    }

    byte[] blockValues(int layer) {
        return blockValues[layer];
    }

    /** The float tail of keys of {@code layer}: position j of row (h, d) at {@link #tailRow}(h, d) + j % 32. */
    float[] tailKeys(int layer) {
        return tailKeys[layer];
    }

    float[] tailValues(int layer) {
        return tailValues[layer];
    }

    /** Start of the run of positions of dimension {@code d} of head {@code h}. */
    int row(int head, int d) {
        return (head * headDim + d) * capacity;
    }

    /** Start of the blocks of dimension {@code d} of head {@code h} (quantized types). */
    int blockRow(int head, int d) {
        return (head * headDim + d) * rowBytes(capacity);
    }

    /** Start of the float tail of dimension {@code d} of head {@code h} (quantized types). */
    int tailRow(int head, int d) {
        return (head * headDim + d) * 32;
    }

    /**
     * Of the first {@code stored} positions of a layer (all written by {@link #store}), how many
     * are read from the blocks: the whole blocks. The rest are in the tail.
     */
    static int quantizedLength(int stored) {
        return stored & ~31;
    }

    /**
     * Writes the key and value of one head at {@code position} (headDim elements each). Positions
     * of a layer and head are written in increasing order: a quantized cache quantizes a block when
     * its last position arrives.
     */
    void store(int layer, int head, int position, float[] k, int kOff, float[] v, int vOff) {
        int base = head * headDim * capacity + position;
        switch (type) {
            case F32 -> {
                float[] kl = keys[layer];
                float[] vl = values[layer];
                for (int d = 0; d < headDim; d++) {
                    kl[base + d * capacity] = k[kOff + d];
                    vl[base + d * capacity] = v[vOff + d];
                }
            }
            case F16 -> {
                short[] kl = halfKeys[layer];
                short[] vl = halfValues[layer];
                for (int d = 0; d < headDim; d++) {
                    kl[base + d * capacity] = Float.floatToFloat16(k[kOff + d]);
                    vl[base + d * capacity] = Float.floatToFloat16(v[vOff + d]);
                }
            }
            case Q8_0, Q4_0 -> {
                for (int d = 0; d < headDim; d++) {
                    putBlockValue(layer, head * headDim + d, position, k[kOff + d], v[vOff + d]);
                }
            }
        }
    }

    /** One key and value of a quantized cache into the tail of its row; a full tail is quantized. */
    private void putBlockValue(int layer, int row, int position, float k, float v) {
        int t = row * 32;
        tailKeys[layer][t + (position & 31)] = k;
        tailValues[layer][t + (position & 31)] = v;
        if ((position & 31) == 31) {
            long at = (long) row * rowBytes(capacity) + (long) (position >>> 5) * type.blockType().blockBytes();
            Quantizer.quantizeRow(type.blockType(), tailKeys[layer], t, 32, MemorySegment.ofArray(blockKeys[layer]), at);
            Quantizer.quantizeRow(type.blockType(), tailValues[layer], t, 32, MemorySegment.ofArray(blockValues[layer]), at);
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
        int block = newLength >>> 5;
        if (type.blockType() != null && (newLength & 31) != 0 && quantizedLength(length) > block * 32) {
            // the new last block was already quantized: its kept positions go back to the tail
            float[] one = new float[32];
            for (int l = 0; l < nLayer; l++) {
                for (int row = 0; row < nHead * headDim; row++) {
                    int at = row * rowBytes(capacity) + block * (int) type.blockType().blockBytes();
                    dequantizeBlock(blockKeys[l], at, one);
                    System.arraycopy(one, 0, tailKeys[l], row * 32, 32);
                    dequantizeBlock(blockValues[l], at, one);
                    System.arraycopy(one, 0, tailValues[l], row * 32, 32);
                }
            }
        }
        length = newLength;
    }

    private void dequantizeBlock(byte[] blocks, int at, float[] out) {
        Arrays.fill(out, 0f);
        BlockVectors.axpy(type.blockType(), 1f, blocks, at, out, 0, 32);
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
        return 2L * nLayer * nHead * headDim * rowBytesOf(type, length);
    }

    /**
     * Bytes of one row of {@code n} positions of {@code type}, as serialized: F32 floats, F16
     * halves; Q8_0/Q4_0 their whole blocks, then the float32 values of the unfinished block.
     */
    public static long rowBytesOf(Type type, int n) {
        return switch (type) {
            case F32 -> 4L * n;
            case F16 -> 2L * n;
            case Q8_0, Q4_0 -> (long) (n >>> 5) * type.blockType().blockBytes() + 4L * (n & 31);
        };
    }

    /**
     * Writes the cached positions, layer by layer (keys, then values), each row of positions as
     * this cache's type stores it (little-endian; see {@link #rowBytesOf}). A new type adds its
     * case here and in {@link #readPositions}.
     */
    public void writePositions(java.nio.channels.WritableByteChannel out) throws java.io.IOException {
        java.nio.ByteBuffer row = java.nio.ByteBuffer.allocate((int) rowBytesOf(type, length))
                .order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int full = quantizedLength(length);
        for (int l = 0; l < nLayer; l++) {
            for (int kv = 0; kv < 2; kv++) {
                for (int r = 0; r < nHead * headDim; r++) {
                    row.clear();
                    switch (type) {
                        case F32 -> row.asFloatBuffer().put(kv == 0 ? keys[l] : values[l], r * capacity, length);
                        case F16 -> row.asShortBuffer().put(kv == 0 ? halfKeys[l] : halfValues[l], r * capacity, length);
                        case Q8_0, Q4_0 -> {
                            int blockBytes = (int) rowBytesOf(type, full);
                            row.put(kv == 0 ? blockKeys[l] : blockValues[l], r * rowBytes(capacity), blockBytes);
                            row.asFloatBuffer().put(kv == 0 ? tailKeys[l] : tailValues[l], r * 32, length - full);
                        }
                    }
                    row.position(0).limit(row.capacity());
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
        java.nio.ByteBuffer row = java.nio.ByteBuffer.allocate((int) rowBytesOf(type, count))
                .order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int full = quantizedLength(count);
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
                        case Q8_0, Q4_0 -> {
                            int blockBytes = (int) rowBytesOf(type, full);
                            row.get(kv == 0 ? blockKeys[l] : blockValues[l], r * rowBytes(capacity), blockBytes);
                            row.asFloatBuffer().get(kv == 0 ? tailKeys[l] : tailValues[l], r * 32, count - full);
                        }
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
                    switch (type) {
                        case F32 -> {
                            keys[l][row * capacity + j] = k;
                            values[l][row * capacity + j] = v;
                        }
                        case F16 -> {
                            halfKeys[l][row * capacity + j] = Float.floatToFloat16(k);
                            halfValues[l][row * capacity + j] = Float.floatToFloat16(v);
                        }
                        case Q8_0, Q4_0 -> putBlockValue(l, row, j, k, v);
                    }
                }
            }
        }
        length = positions;
    }
}
