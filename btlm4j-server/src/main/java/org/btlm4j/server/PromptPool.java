package org.btlm4j.server;

import java.util.ArrayList;
import java.util.List;
import org.btlm4j.generate.PromptState;

/**
 * The KV caches of sequences that finished, kept with their tokens so that a later sequence sharing
 * a long prefix with one of them (a conversation's earlier turns, a few-shot block, the context of
 * several continuations) computes only the rest of its prompt. Bounded by a number of entries and
 * a byte budget, the least recently kept going first. A sequence takes an entry for itself (it
 * leaves the pool) and gives its own cache back when it finishes.
 */
final class PromptPool {
    private final int maxEntries;
    private final long maxBytes;
    private final int minPrefix;
    private final List<PromptState> entries = new ArrayList<>(); // least recently kept first
    private long bytes;

    /** {@code maxEntries} 0: nothing is kept. Only prefixes of at least {@code minPrefix} tokens are reused. */
    PromptPool(int maxEntries, long maxBytes, int minPrefix) {
        this.maxEntries = maxEntries;
        this.maxBytes = maxBytes;
        this.minPrefix = minPrefix;
    }

    /**
     * Takes out the entry holding the longest prefix (at least the minimum, at most {@code limit}
     * positions) of {@code prompt} computed with ALiBi scaling {@code c}, cut to that prefix; null
     * when none shares enough.
     */
    synchronized PromptState take(int[] prompt, int limit, float c) {
        int best = -1;
        int bestLength = minPrefix - 1;
        for (int i = entries.size() - 1; i >= 0; i--) {
            int n = entries.get(i).commonPrefix(prompt, limit, c);
            if (n > bestLength) {
                best = i;
                bestLength = n;
            }
        }
        if (best < 0) {
            return null;
        }
        PromptState s = entries.remove(best);
        bytes -= s.cache().allocatedBytes();
        s.keepCommonPrefix(prompt, limit, c);
        return s;
    }

    /** Keeps {@code s} (or frees it, when too short to be worth it or too big for the budget), evicting the oldest beyond the bounds. */
    synchronized void put(PromptState s) {
        long size = s.cache().allocatedBytes();
        if (maxEntries == 0 || s.cache().length() < minPrefix || size > maxBytes) {
            s.cache().clear();
            return;
        }
        entries.add(s);
        bytes += size;
        while (entries.size() > maxEntries || bytes > maxBytes) {
            PromptState old = entries.removeFirst();
            bytes -= old.cache().allocatedBytes();
            old.cache().clear();
        }
    }

    /** Frees every entry. */
    synchronized void clear() {
        for (PromptState s : entries) {
            s.cache().clear();
        }
        entries.clear();
        bytes = 0;
    }

    synchronized int entries() {
        return entries.size();
    }

    /** Bytes held by the kept caches. */
    synchronized long bytes() {
        return bytes;
    }
}
