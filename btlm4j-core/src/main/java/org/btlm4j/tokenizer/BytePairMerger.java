package org.btlm4j.tokenizer;

/**
 * Applies BPE merges to one pre-token. The rule (HF tokenizers' {@code Word::merge_all}) is:
 * repeatedly merge the adjacent pair with the lowest rank, the leftmost one on a tie, until no
 * adjacent pair has a rule. Two implementations of that one rule:
 * <ul>
 *   <li>short words (the vast majority) rescan a compact array, which beats any clever structure
 *       at lengths of a few symbols;</li>
 *   <li>long words use a doubly linked list plus a min-heap of candidate merges keyed on
 *       (rank, position), O(n log n), so a 5000-byte run of one character stays cheap.</li>
 * </ul>
 */
final class BytePairMerger {
    /** Above this many symbols the heap version wins; below, the rescan's tiny constant does. */
    static final int HEAP_THRESHOLD = 48;
    private static final int NO_RANK = Integer.MAX_VALUE;

    private BytePairMerger() {
    }

    /** Merges {@code sym[0..n)} in place and returns the new length. */
    static int merge(MergeTable merges, int[] sym, int n) {
        return n > HEAP_THRESHOLD ? mergeWithHeap(merges, sym, n) : mergeByRescan(merges, sym, n);
    }

    static int mergeByRescan(MergeTable merges, int[] sym, int n) {
        if (n < 2) {
            return n;
        }
        // rank[i] / result[i] describe the pair (sym[i], sym[i+1]).
        int[] rank = new int[n - 1];
        int[] result = new int[n - 1];
        for (int i = 0; i < n - 1; i++) {
            setPair(merges, sym, rank, result, i);
        }
        while (n > 1) {
            int best = -1;
            int bestRank = NO_RANK;
            for (int i = 0; i < n - 1; i++) {
                if (rank[i] < bestRank) { // strict: the leftmost pair wins a tie
                    bestRank = rank[i];
                    best = i;
                }
            }
            if (best < 0) {
                break;
            }
            sym[best] = result[best];
            int tail = n - best - 2; // symbols after the removed one
            System.arraycopy(sym, best + 2, sym, best + 1, tail);
            if (tail > 1) { // pairs after the removed symbol's right-hand pair move left by one
                System.arraycopy(rank, best + 2, rank, best + 1, tail - 1);
                System.arraycopy(result, best + 2, result, best + 1, tail - 1);
            }
            n--;
            if (best > 0) {
                setPair(merges, sym, rank, result, best - 1);
            }
            if (best < n - 1) {
                setPair(merges, sym, rank, result, best);
            }
        }
        return n;
    }

    private static void setPair(MergeTable merges, int[] sym, int[] rank, int[] result, int i) {
        long e = merges.lookup(sym[i], sym[i + 1]);
        if (e == MergeTable.NONE) {
            rank[i] = NO_RANK;
        } else {
            rank[i] = MergeTable.rank(e);
            result[i] = MergeTable.merged(e);
        }
    }

    static int mergeWithHeap(MergeTable merges, int[] sym, int n) {
        if (n < 2) {
            return n;
        }
        // Symbols stay at their original index; a merged-away symbol is marked -1. The left
        // symbol's original index is the pair's position, which gives the leftmost-first tie
        // break for free because the heap orders on (rank << 32 | position).
        int[] next = new int[n];
        int[] prev = new int[n];
        for (int i = 0; i < n; i++) {
            next[i] = i + 1; // n means "no next"
            prev[i] = i - 1;
        }
        LongHeap heap = new LongHeap(n * 2);
        for (int i = 0; i < n - 1; i++) {
            long e = merges.lookup(sym[i], sym[i + 1]);
            if (e != MergeTable.NONE) {
                heap.push(((long) MergeTable.rank(e) << 32) | i);
            }
        }
        while (!heap.isEmpty()) {
            long top = heap.pop();
            int pos = (int) top;
            int rank = (int) (top >>> 32);
            if (sym[pos] < 0 || next[pos] >= n) {
                continue; // stale: the left symbol was merged away or is now last
            }
            int right = next[pos];
            long e = merges.lookup(sym[pos], sym[right]);
            if (e == MergeTable.NONE || MergeTable.rank(e) != rank) {
                continue; // stale: one side changed since this candidate was queued
            }
            sym[pos] = MergeTable.merged(e);
            sym[right] = -1;
            next[pos] = next[right];
            if (next[pos] < n) {
                prev[next[pos]] = pos;
            }
            if (prev[pos] >= 0) {
                long l = merges.lookup(sym[prev[pos]], sym[pos]);
                if (l != MergeTable.NONE) {
                    heap.push(((long) MergeTable.rank(l) << 32) | prev[pos]);
                }
            }
            if (next[pos] < n) {
                long r = merges.lookup(sym[pos], sym[next[pos]]);
                if (r != MergeTable.NONE) {
                    heap.push(((long) MergeTable.rank(r) << 32) | pos);
                }
            }
        }
        int out = 0;
        for (int i = 0; i < n; i = next[i]) {
            sym[out++] = sym[i];
        }
        return out;
    }

    /** Minimal binary min-heap of longs; java.util.PriorityQueue would box every entry. */
    private static final class LongHeap {
        private long[] a;
        private int size;

        LongHeap(int capacity) {
            a = new long[Math.max(4, capacity)];
        }

        boolean isEmpty() {
            return size == 0;
        }

        void push(long v) {
            if (size == a.length) {
                a = java.util.Arrays.copyOf(a, size * 2);
            }
            int i = size++;
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (a[parent] <= v) {
                    break;
                }
                a[i] = a[parent];
                i = parent;
            }
            a[i] = v;
        }

        long pop() {
            long top = a[0];
            long last = a[--size];
            int i = 0;
            int half = size >>> 1;
            while (i < half) {
                int child = 2 * i + 1;
                if (child + 1 < size && a[child + 1] < a[child]) {
                    child++;
                }
                if (a[child] >= last) {
                    break;
                }
                a[i] = a[child];
                i = child;
            }
            a[i] = last;
            return top;
        }
    }
}
