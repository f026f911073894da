package org.btlm4j.generate;

import java.util.Arrays;
import org.btlm4j.BtlmException;
import org.btlm4j.model.KvCache;

/**
 * A processed prompt: a KV cache with the token of each of its positions and the ALiBi scaling c
 * that position was computed with. Beyond the training length dynamic scaling makes c depend on
 * the length of the call, and a cached position is only reusable by a call that would compute it
 * with the same c.
 */
public final class PromptState {
    private final KvCache cache;
    /** Grown with the cache (like it, in chunks): a huge context costs nothing until used. */
    private int[] tokens = new int[0];
    private float[] scales = new float[0];

    /** A state around {@code cache}, which must be empty. */
    public PromptState(KvCache cache) {
        this.cache = cache;
    }

    /** A state read back from disk: {@code cache} already holds {@code tokens.length} positions. */
    public static PromptState restored(KvCache cache, int[] tokens, float[] scales) {
        if (tokens.length != cache.length() || scales.length != tokens.length) {
            throw new BtlmException("a prompt state needs one token and one scaling per cached position: "
                    + tokens.length + " tokens, " + scales.length + " scalings, " + cache.length() + " positions");
        }
        PromptState s = new PromptState(cache);
        s.tokens = tokens.clone();
        s.scales = scales.clone();
        return s;
    }

    public KvCache cache() {
        return cache;
    }

    /** The tokens of the cached positions. */
    public int[] tokens() {
        return Arrays.copyOf(tokens, cache.length());
    }

    /** The ALiBi scaling each cached position was computed with. */
    public float[] scales() {
        return Arrays.copyOf(scales, cache.length());
    }

    /** Leading positions (at most {@code limit}) holding {@code ids}' tokens, computed with scaling {@code c}. */
    public int commonPrefix(int[] ids, int limit, float c) {
        int n = Math.min(Math.min(limit, ids.length), cache.length());
        int i = 0;
        while (i < n && tokens[i] == ids[i] && scales[i] == c) {
            i++;
        }
        return i;
    }

    /**
     * Keeps the {@link #commonPrefix} of at most {@code limit} positions (those holding {@code ids}'
     * tokens computed with scaling {@code c}), drops the cached positions after it, and returns how
     * many were kept: a call may then run {@code ids} from there.
     */
    public int keepCommonPrefix(int[] ids, int limit, float c) {
        int n = commonPrefix(ids, limit, c);
        cache.truncate(n);
        return n;
    }

    /** Notes the tokens and scaling of {@code count} positions just added at {@code position}. */
    public void record(int position, int[] ids, int from, int count, float c) {
        if (position + count > tokens.length) {
            int n = Math.max(position + count, Math.min(cache.maxPositions(), Math.max(256, tokens.length * 2)));
            tokens = Arrays.copyOf(tokens, n);
            scales = Arrays.copyOf(scales, n);
        }
        System.arraycopy(ids, from, tokens, position, count);
        Arrays.fill(scales, position, position + count, c);
    }
}
