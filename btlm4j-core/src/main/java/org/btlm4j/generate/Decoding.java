package org.btlm4j.generate;

import java.util.Arrays;
import org.btlm4j.FinishReason;
import org.btlm4j.GenerationParams;
import org.btlm4j.GenerationResult;
import org.btlm4j.tokenizer.Gpt2Tokenizer;
import org.btlm4j.tokenizer.StreamingDecoder;

/**
 * The state of one generation between forward passes: the context so far, the sampler, the stop
 * strings and the text decoded and shown. Whoever runs the model (the {@link Generator} one
 * sequence at a time, a server many at once) hands it the logits of the last position after each
 * step; it picks the next token, decides whether generation is over and says which text became final.
 */
public final class Decoding {
    private final int[] prompt;
    private final GenerationParams params;
    private final int vocab;
    private final int eos;
    private final int contextLength;
    private final Sampler sampler;
    private final StopMatcher stops;
    private final StreamingDecoder decoder; // null without a tokenizer
    private final StringBuilder text = new StringBuilder();
    private final int[] context;
    private int length;
    private int emitted;
    private int generated;
    private FinishReason reason = FinishReason.LENGTH;
    private boolean done;

    /**
     * @param tokenizer     may be null: then no text is produced, only token ids
     * @param contextLength generation ends (LENGTH) when the context holds this many tokens
     */
    public Decoding(int[] prompt, GenerationParams params, Gpt2Tokenizer tokenizer, int vocab, int eos,
            int contextLength) {
        this.prompt = prompt.clone();
        this.params = params;
        this.vocab = vocab;
        this.eos = eos;
        this.contextLength = contextLength;
        this.sampler = new Sampler(params);
        this.stops = new StopMatcher(params.stop());
        this.decoder = tokenizer == null ? null : tokenizer.newStreamingDecoder();
        this.context = Arrays.copyOf(prompt, prompt.length + params.maxNewTokens());
        this.length = prompt.length;
        this.done = params.maxNewTokens() == 0;
    }

    /**
     * Picks the next token from {@code logits[0..vocab)} (modified in place by the repetition
     * penalty), tells {@code listener} (may be null) the text that became final, and returns true
     * when generation is over. Otherwise the new token, {@link #lastToken()}, is to be run next.
     */
    public boolean next(float[] logits, TokenListener listener) {
        if (done) {
            throw new IllegalStateException("generation is over");
        }
        int token = sampler.sample(logits, vocab, context, length);
        if (token == eos && !params.ignoreEos()) {
            reason = FinishReason.EOS;
            done = true;
            if (decoder != null) {
                text.append(decoder.flush());
                int stopAt = stops.find(text);
                if (stopAt >= 0) {
                    text.setLength(stopAt);
                    reason = FinishReason.STOP;
                }
                if (listener != null && emitted < text.length()) {
                    listener.onToken(eos, text.substring(emitted));
                }
                emitted = text.length();
            }
            return true;
        }
        context[length++] = token;
        generated++;
        if (decoder != null) {
            text.append(decoder.accept(token));
        }
        int stopAt = stops.find(text);
        if (stopAt >= 0) {
            text.setLength(stopAt);
            reason = FinishReason.STOP;
            emit(listener, token, text.length());
            done = true;
            return true;
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
        emit(listener, token, last ? text.length() : text.length() - stops.heldBack(text));
        done = last;
        return last;
    }

    private void emit(TokenListener listener, int token, int to) {
        if (listener != null) {
            listener.onToken(token, to > emitted ? text.substring(emitted, to) : "");
        }
        emitted = Math.max(emitted, to);
    }

    /** Stops early (a time limit, a cancelled request): the result keeps what was generated. */
    public void stop(FinishReason why) {
        if (!done) {
            done = true;
            reason = why;
            if (decoder != null) {
                text.append(decoder.flush());
            }
        }
    }

    public boolean done() {
        return done;
    }

    /** The token chosen last; the next forward step runs it. */
    public int lastToken() {
        return context[length - 1];
    }

    /** Tokens in the context: the prompt and those generated. */
    public int length() {
        return length;
    }

    /** Tokens generated so far. */
    public int generated() {
        return generated;
    }

    /** The prompt and the generated tokens; only the first {@link #length()} entries are valid. */
    public int[] contextUnsafe() {
        return context;
    }

    public GenerationResult result() {
        return new GenerationResult(prompt, Arrays.copyOfRange(context, prompt.length, length), text.toString(),
                reason);
    }
}
