package org.btlm4j.generate;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.btlm4j.BtlmException;
import org.btlm4j.ContinuationScore;
import org.btlm4j.GenerationParams;
import org.btlm4j.GenerationResult;
import org.btlm4j.ScoreResult;
import org.btlm4j.model.Alibi;
import org.btlm4j.model.Btlm;
import org.btlm4j.model.KvCache;
import org.btlm4j.tokenizer.Gpt2Tokenizer;

/**
 * The generation loop (prefill, sample, decode, stop) and scoring.
 *
 * <p>Prompt cache: the cache of the last call is kept with its tokens, and the next call reuses
 * its longest common prefix (truncating the rest) instead of computing it again, so a shared
 * few-shot block, a conversation's earlier turns or the context of several continuations is
 * processed once. A call takes the kept cache for itself, so one generator may still serve several
 * threads: a call running beside another simply starts from an empty cache.
 */
public final class Generator {
    /** Prompt tokens fed per forward call: bounds activation memory for long prompts. */
    static final int PREFILL_CHUNK = 512;
    /** Rows of logits computed at once when scoring: bounds the [rows, vocab] buffer. */
    static final int SCORE_ROWS = 32;

    private final Btlm model;
    private final Gpt2Tokenizer tokenizer; // may be null: then only token ids are available
    private final int contextLength;
    private final KvCache.Type kvType;
    private final int prefillChunk;
    private final AtomicReference<PromptState> kept = new AtomicReference<>();
    private final AtomicLong forwardedTokens = new AtomicLong();
    private volatile boolean reusePrefix = true;

    public Generator(Btlm model, Gpt2Tokenizer tokenizer, int contextLength, KvCache.Type kvType) {
        this(model, tokenizer, contextLength, kvType, PREFILL_CHUNK);
    }

    /** With another prompt chunk size: tests use a small one to cross chunk boundaries. */
    Generator(Btlm model, Gpt2Tokenizer tokenizer, int contextLength, KvCache.Type kvType, int prefillChunk) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.contextLength = contextLength;
        this.kvType = kvType;
        this.prefillChunk = prefillChunk;
    }

    public KvCache.Type kvType() {
        return kvType;
    }

    /** A new, empty cache of this generator's context length and type. */
    public KvCache newCache() {
        return new KvCache(model.config(), contextLength, kvType);
    }

    public int vocabSize() {
        return model.config().vocabSize();
    }

    public int contextLength() {
        return contextLength;
    }

    /** Tokens run through the forward pass by this generator so far (reused prefixes not counted). */
    public long forwardedTokens() {
        return forwardedTokens.get();
    }

    /** Turns the reuse of the last call's prefix on (default) or off; off also drops the kept cache. */
    public void setPromptReuse(boolean on) {
        reusePrefix = on;
        if (!on) {
            kept.set(null);
        }
    }

    /** The kept prompt state (the last call's cache and tokens), or null; it stays kept. */
    public PromptState keptState() {
        return kept.get();
    }

    /** Makes {@code state} the kept one, e.g. read back from a prompt cache file. */
    public void keep(PromptState state) {
        if (state.cache().maxPositions() != contextLength || state.cache().type() != kvType) {
            throw new BtlmException("the prompt state's cache (" + state.cache().maxPositions() + " positions, "
                    + state.cache().type() + ") does not fit this model's (" + contextLength + ", " + kvType + ")");
        }
        kept.set(state);
    }

    /** The kept state to work in (when reuse is on), or a fresh one. */
    private PromptState acquire() {
        PromptState s = reusePrefix ? kept.getAndSet(null) : null;
        return s != null ? s : new PromptState(newCache());
    }

    private void release(PromptState s) {
        if (reusePrefix) {
            kept.set(s);
        }
    }

    /**
     * Keeps at most {@code limit} leading positions of {@code s} that hold the same tokens as
     * {@code ids} and were computed with the ALiBi scaling this call uses ({@code keyLength}: its
     * total key length), and drops the rest; returns how many were kept.
     */
    private int reuse(PromptState s, int[] ids, int limit, int keyLength) {
        float c = Alibi.scale(model.config().alibiScaling(), keyLength);
        return s.keepCommonPrefix(ids, limit, c);
    }

    /** One forward call through {@code s}, recording its tokens and scaling. */
    private float[] forward(PromptState s, int[] tokens, int from, int count, int scaleKeyLength) {
        int p = s.cache().length();
        float[] hidden = model.forward(tokens, from, count, s.cache(), scaleKeyLength);
        s.record(p, tokens, from, count, Alibi.scale(model.config().alibiScaling(), scaleKeyLength));
        forwardedTokens.addAndGet(count);
        return hidden;
    }

    /** Generates after {@code prompt}; {@code listener} (may be null) sees the text as it becomes final. */
    public GenerationResult generate(int[] prompt, GenerationParams params, TokenListener listener) {
        if (prompt.length == 0) {
            throw new BtlmException("the prompt is empty: give at least one token");
        }
        if (prompt.length > contextLength) {
            throw new BtlmException("the prompt has " + prompt.length + " tokens, more than the context of "
                    + contextLength + " tokens");
        }
        int vocab = model.config().vocabSize();
        Decoding decoding = new Decoding(prompt, params, tokenizer, vocab, model.config().eosTokenId(),
                contextLength);
        if (decoding.done()) {
            return decoding.result();
        }
        PromptState state = acquire();
        try {
            // The last prompt token is always run: its logits give the first new token.
            int reused = reuse(state, prompt, prompt.length - 1, prompt.length);
            // room for the whole run at once: a regrowth holds the old and the new cache for a moment
            state.cache().preallocate((int) Math.min(contextLength, (long) prompt.length + params.maxNewTokens()));
            float[] logits = new float[vocab];
            prefill(prompt, reused, state, logits);
            while (!decoding.next(logits, listener)) {
                int length = decoding.length();
                float[] hidden = forward(state, decoding.contextUnsafe(), length - 1, 1, length);
                model.logits(hidden, 0, 1, logits);
            }
            return decoding.result();
        } finally {
            release(state);
        }
    }

    /**
     * Feeds {@code tokens[from..]} in chunks after the {@code from} positions already cached, all
     * with the ALiBi scaling of the whole prompt (one HF call), and puts the logits of the last
     * token in {@code logits}.
     */
    private void prefill(int[] tokens, int from, PromptState state, float[] logits) {
        int total = tokens.length;
        float[] hidden = null;
        int n = 0;
        for (int at = from; at < tokens.length; at += prefillChunk) {
            n = Math.min(prefillChunk, tokens.length - at);
            hidden = forward(state, tokens, at, n, total);
        }
        model.logits(hidden, n - 1, 1, logits);
    }

    /**
     * Runs {@code tokens} into the kept cache (reusing its common prefix) without producing
     * anything: the prompt cache is then ready for a later call, or to be saved.
     */
    public void prime(int[] tokens) {
        if (tokens.length == 0 || tokens.length > contextLength) {
            throw new BtlmException("a prompt of 1 to " + contextLength + " tokens is needed, got " + tokens.length);
        }
        PromptState state = acquire();
        try {
            int reused = reuse(state, tokens, tokens.length, tokens.length);
            for (int at = reused; at < tokens.length; at += prefillChunk) {
                forward(state, tokens, at, Math.min(prefillChunk, tokens.length - at), tokens.length);
            }
        } finally {
            // Kept even when reuse is off: the caller asked for this state.
            kept.set(state);
        }
    }

    /**
     * log p(ids[t] | ids[0..t-1]) for every t ≥ 1, as from one forward call over all of {@code ids}.
     */
    public ScoreResult score(int[] ids) {
        if (ids.length == 0) {
            throw new BtlmException("nothing to score: the input has no tokens");
        }
        double[] lp = new double[ids.length];
        lp[0] = Double.NaN;
        if (ids.length > 1) {
            System.arraycopy(scoreContinuation(ids, 1).tokenLogprobs(), 0, lp, 1, ids.length - 1);
        } else {
            checkLength(ids);
        }
        return new ScoreResult(ids, lp);
    }

    /**
     * log p(ids[t] | ids[0..t-1]) for t from {@code from} on (a continuation after a context of
     * {@code from} tokens), and whether each of those tokens is the most likely one.
     */
    public ContinuationScore scoreContinuation(int[] ids, int from) {
        double[] lp = new double[Math.max(0, ids.length - from)];
        boolean[] greedy = {true};
        forEachLogits(ids, from, (t, logits, off, vocab) -> {
            lp[t - from] = LogProbs.logProb(logits, off, vocab, ids[t]);
            greedy[0] &= Sampler.argmax(logits, off, vocab) == ids[t];
        });
        return new ContinuationScore(lp, greedy[0]);
    }

    /** Receives the logits that predict token {@code t}: {@code logits[off, off + vocab)}, valid during the call. */
    @FunctionalInterface
    public interface LogitsSink {
        void accept(int t, float[] logits, int off, int vocab);
    }

    /**
     * The logits predicting ids[t] for t = from, from + 1, … (in order), as from one forward call
     * over all of {@code ids}. Only those logits are computed; the kept cache's common prefix with
     * the context is reused (all but the context's last token, whose logits predict ids[from]).
     */
    public void forEachLogits(int[] ids, int from, LogitsSink sink) {
        checkLength(ids);
        if (from < 1 || from >= ids.length) {
            throw new BtlmException("the continuation must start after at least one context token and hold at "
                    + "least one token: start " + from + " of " + ids.length);
        }
        PromptState state = acquire();
        try {
            int reused = reuse(state, ids, from - 1, ids.length);
            state.cache().preallocate(ids.length);
            int vocab = model.config().vocabSize();
            float[] logits = new float[SCORE_ROWS * vocab];
            for (int at = reused; at < ids.length; at += prefillChunk) {
                int n = Math.min(prefillChunk, ids.length - at);
                float[] hidden = forward(state, ids, at, n, ids.length);
                // logits of position t predict token t+1: rows for t in [from-1, ids.length-2]
                int first = Math.max(0, from - 1 - at);
                int last = Math.min(n, ids.length - 1 - at);
                for (int r = first; r < last; r += SCORE_ROWS) {
                    int rows = Math.min(SCORE_ROWS, last - r);
                    model.logits(hidden, r, rows, logits);
                    for (int k = 0; k < rows; k++) {
                        sink.accept(at + r + k + 1, logits, k * vocab, vocab);
                    }
                }
            }
        } finally {
            release(state);
        }
    }

    private void checkLength(int[] ids) {
        if (ids.length == 0) {
            throw new BtlmException("nothing to score: the input has no tokens");
        }
        if (ids.length > contextLength) {
            throw new BtlmException("the input has " + ids.length + " tokens, more than the context of "
                    + contextLength + " tokens");
        }
    }
}
