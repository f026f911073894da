package org.btlm4j.model;

import java.util.Arrays;
import org.btlm4j.BtlmException;

/**
 * Keys and values of every layer for the positions processed so far. Laid out per head,
 * {@code [layer][head][position][headDim]}, so that attention for one head reads one contiguous
 * run of memory. Capacity grows in chunks as positions are added, up to {@code maxPositions}.
 */
public final class KvCache {
    private static final int CHUNK = 256;

    private final int nLayer;
    private final int nHead;
    private final int headDim;
    private final int maxPositions;
    private final float[][] keys;
    private final float[][] values;
    private int capacity;
    private int length;

    public KvCache(BtlmConfig config, int maxPositions) {
        if (maxPositions <= 0) {
            throw new BtlmException("context length must be positive, got " + maxPositions);
        }
        this.nLayer = config.nLayer();
        this.nHead = config.nHead();
        this.headDim = config.headDim();
        this.maxPositions = maxPositions;
        this.keys = new float[nLayer][];
        this.values = new float[nLayer][];
        this.capacity = 0;
        for (int l = 0; l < nLayer; l++) {
            keys[l] = new float[0];
            values[l] = new float[0];
        }
    }

    /** Positions cached so far (P in spec section 4). */
    public int length() {
        return length;
    }

    /** The most positions this cache may hold. */
    public int maxPositions() {
        return maxPositions;
    }

    /** Bytes currently allocated. */
    public long allocatedBytes() {
        return 2L * nLayer * nHead * (long) capacity * headDim * Float.BYTES;
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
        for (int l = 0; l < nLayer; l++) {
            keys[l] = regrow(keys[l], newCapacity);
            values[l] = regrow(values[l], newCapacity);
        }
        capacity = newCapacity;
    }

    private float[] regrow(float[] old, int newCapacity) {
        float[] grown = new float[Math.multiplyExact(Math.multiplyExact(nHead, newCapacity), headDim)];
        for (int h = 0; h < nHead; h++) {
            System.arraycopy(old, h * capacity * headDim, grown, h * newCapacity * headDim, length * headDim);
        }
        return grown;
    }

    /** Keys of {@code layer}; head h, position j starts at {@link #offset}(h, j). */
    float[] keys(int layer) {
        return keys[layer];
    }

    float[] values(int layer) {
        return values[layer];
    }

    int offset(int head, int position) {
        return (head * capacity + position) * headDim;
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

    /** Empties the cache and releases its memory. */
    public void clear() {
        length = 0;
        capacity = 0;
        Arrays.fill(keys, new float[0]);
        Arrays.fill(values, new float[0]);
    }
}
