package org.btlm4j.generate;

import java.util.Arrays;
import org.btlm4j.BtlmException;
import org.btlm4j.FinishReason;
import org.btlm4j.GenerationParams;
import org.btlm4j.GenerationResult;
import org.btlm4j.ScoreResult;
import org.btlm4j.model.Btlm;
import org.btlm4j.model.KvCache;
import org.btlm4j.tokenizer.Gpt2Tokenizer;
import org.btlm4j.tokenizer.StreamingDecoder;

/**
 * The generation loop (prefill, sample, decode, stop) and scoring. Each call uses its own
 * {@link KvCache}, so one generator may serve several threads.
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
        int eos = model.config().eosTokenId();
        if (params.maxNewTokens() == 0) {
            return new GenerationResult(prompt, new int[0], "", FinishReason.LENGTH);
        }
        KvCache cache = newCache();
        cache.preallocate((int) Math.min(Integer.MAX_VALUE, (long) prompt.length + params.maxNewTokens())); // no regrowth
        int[] context = Arrays.copyOf(prompt, prompt.length + params.maxNewTokens());
        int length = prompt.length;
        float[] hidden = prefill(prompt, cache);
        float[] logits = new float[vocab];
        // the last chunk's hidden states: the prompt's last token is its row (length − 1) mod chunk
        model.logits(hidden, (prompt.length - 1) % prefillChunk, 1, logits);

        Sampler sampler = new Sampler(params);
        StopMatcher stops = new StopMatcher(params.stop());
        StreamingDecoder decoder = tokenizer == null ? null : tokenizer.newStreamingDecoder();
        StringBuilder text = new StringBuilder();
        int emitted = 0;
        int generated = 0;
        FinishReason reason = FinishReason.LENGTH;
        while (true) {
            int next = sampler.sample(logits, vocab, context, length);
            if (next == eos && !params.ignoreEos()) {
                reason = FinishReason.EOS;
                break;
            }
            context[length++] = next;
            generated++;
            if (decoder != null) {
                text.append(decoder.accept(next));
            }
            int stopAt = stops.find(text);
            if (stopAt >= 0) {
                text.setLength(stopAt);
                reason = FinishReason.STOP;
                emitted = emit(listener, next, text, emitted, text.length());
                break;
            }
            boolean last = generated == params.maxNewTokens() || length == contextLength;
            if (last && decoder != null) {
                text.append(decoder.flush());
                stopAt = stops.find(text);
                if (stopAt >= 0) {
                    text.setLength(stopAt);
                    reason = FinishReason.STOP;
                }
            }
            int safe = last ? text.length() : text.length() - stops.heldBack(text);
            emitted = emit(listener, next, text, emitted, safe);
            if (last) {
                break;
            }
            hidden = model.forward(context, length - 1, 1, cache, length);
            model.logits(hidden, 0, 1, logits);
        }
        if (reason == FinishReason.EOS && decoder != null) {
            text.append(decoder.flush());
            int stopAt = stops.find(text);
            if (stopAt >= 0) {
                text.setLength(stopAt);
                reason = FinishReason.STOP;
            }
            if (listener != null && emitted < text.length()) {
                listener.onToken(eos, text.substring(emitted));
            }
        }
        return new GenerationResult(prompt, Arrays.copyOfRange(context, prompt.length, length), text.toString(),
                reason);
    }

    private static int emit(TokenListener listener, int token, CharSequence text, int from, int to) {
        if (listener != null) {
            listener.onToken(token, to > from ? text.subSequence(from, to).toString() : "");
        }
        return Math.max(from, to);
    }

    /**
     * Feeds a prompt in chunks, all with the ALiBi scaling of the whole prompt (one HF call), and
     * returns the hidden states of the last chunk (not re-based to the prompt: that would take
     * [prompt, n_embd] floats for one row).
     */
    private float[] prefill(int[] tokens, KvCache cache) {
        int total = cache.length() + tokens.length;
        float[] hidden = null;
        for (int from = 0; from < tokens.length; from += prefillChunk) {
            int n = Math.min(prefillChunk, tokens.length - from);
            hidden = model.forward(tokens, from, n, cache, total);
        }
        return hidden;
    }

    /** Receives the logits that predict token {@code t}: {@code logits[off, off + vocab)}, valid during the call. */
    @FunctionalInterface
    public interface LogitsSink {
        void accept(int t, float[] logits, int off, int vocab);
    }

    /**
     * The next-token logits at every position of {@code ids} but the last, as from one forward
     * call over all of them, in order: {@code sink} sees those predicting ids[t] for t = 1, 2, ….
     */
    public void forEachLogits(int[] ids, LogitsSink sink) {
        if (ids.length == 0) {
            throw new BtlmException("nothing to score: the input has no tokens");
        }
        if (ids.length > contextLength) {
            throw new BtlmException("the input has " + ids.length + " tokens, more than the context of "
                    + contextLength + " tokens");
        }
        int vocab = model.config().vocabSize();
        KvCache cache = newCache();
        cache.preallocate(ids.length);
        float[] logits = new float[SCORE_ROWS * vocab];
        for (int from = 0; from < ids.length; from += prefillChunk) {
            int n = Math.min(prefillChunk, ids.length - from);
            float[] hidden = model.forward(ids, from, n, cache, ids.length);
            for (int r = 0; r < n; r += SCORE_ROWS) {
                int rows = Math.min(SCORE_ROWS, n - r);
                model.logits(hidden, r, rows, logits);
                for (int k = 0; k < rows; k++) {
                    int t = from + r + k; // logits of position t predict token t+1
                    if (t + 1 < ids.length) {
                        sink.accept(t + 1, logits, k * vocab, vocab);
                    }
                }
            }
        }
    }

    /**
     * log p(ids[t] | ids[0..t-1]) for every t ≥ 1, as from one forward call over all of {@code ids}.
     */
    public ScoreResult score(int[] ids) {
        if (ids.length == 0) {
            throw new BtlmException("nothing to score: the input has no tokens");
        }
        if (ids.length > contextLength) {
            throw new BtlmException("the input has " + ids.length + " tokens, more than the context of "
                    + contextLength + " tokens");
        }
        double[] lp = new double[ids.length];
        lp[0] = Double.NaN;
        forEachLogits(ids, (t, logits, off, vocab) -> lp[t] = LogProbs.logProb(logits, off, vocab, ids[t]));
                return new ScoreResult(ids, lp);
    }
}
