package org.btlm4j.tokenizer;

import java.util.Arrays;

/**
 * The BPE merge rules as an open-addressing hash map from the pair (leftId, rightId) to
 * (rank, mergedId). Keys are packed into one long so that a lookup in the merge loop touches
 * two primitive arrays and allocates nothing.
 */
final class MergeTable {
    /** Returned by {@link #lookup} when the pair has no merge rule. */
    static final long NONE = -1L;
    private static final long EMPTY = -1L; // ids are non-negative, so a real key is never -1

    private final long[] keys;
    private final long[] values;
    private final int mask;
    private int size;

    MergeTable(int expected) {
        int capacity = Integer.highestOneBit(Math.max(4, expected) * 2 - 1) << 1; // load factor <= 0.5
        keys = new long[capacity];
        values = new long[capacity];
        Arrays.fill(keys, EMPTY);
        mask = capacity - 1;
    }

    private static long key(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    private static int hash(long key) {
        long h = key * 0x9E3779B97F4A7C15L; // Fibonacci hashing spreads the small consecutive ids
        return (int) (h ^ (h >>> 29) ^ (h >>> 32));
    }

    /**
     * Adds or replaces a rule. Replacing matches HF, whose merge map is built by collecting
     * (pair -> rank) in file order, so a duplicated pair keeps its last rank.
     */
    void put(int left, int right, int rank, int merged) {
        if (size * 2 >= keys.length) {
            throw new IllegalStateException("merge table over capacity");
        }
        long k = key(left, right);
        int slot = hash(k) & mask;
        while (keys[slot] != EMPTY && keys[slot] != k) {
            slot = (slot + 1) & mask;
        }
        if (keys[slot] == EMPTY) {
            size++;
        }
        keys[slot] = k;
        values[slot] = ((long) rank << 32) | (merged & 0xFFFFFFFFL);
    }

    /** (rank << 32 | mergedId) for the pair, or {@link #NONE}. */
    long lookup(int left, int right) {
        long k = key(left, right);
        int slot = hash(k) & mask;
        while (true) {
            long found = keys[slot];
            if (found == k) {
                return values[slot];
            }
            if (found == EMPTY) {
                return NONE;
            }
            slot = (slot + 1) & mask;
        }
    }

    static int rank(long entry) {
        return (int) (entry >>> 32);
    }

    static int merged(long entry) {
        return (int) entry;
    }

    /**
     * The rules as {left, right} id pairs in rank order (duplicated pairs, which keep their last
     * rank, leave no gap: ranks are compacted).
     */
    int[][] pairsByRank() {
        long[] order = new long[size];
        int n = 0;
        for (int slot = 0; slot < keys.length; slot++) {
            if (keys[slot] != EMPTY) {
                order[n++] = ((long) rank(values[slot]) << 32) | slot;
            }
        }
        Arrays.sort(order, 0, n);
        int[][] pairs = new int[n][];
        for (int i = 0; i < n; i++) {
            long k = keys[(int) order[i]];
            pairs[i] = new int[] {(int) (k >>> 32), (int) k};
        }
        return pairs;
    }
}
