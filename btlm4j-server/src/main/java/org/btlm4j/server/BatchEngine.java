package org.btlm4j.server;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import org.btlm4j.BtlmModel;
import org.btlm4j.FinishReason;
import org.btlm4j.GenerationParams;
import org.btlm4j.GenerationResult;
import org.btlm4j.generate.Decoding;
import org.btlm4j.generate.LogProbs;
import org.btlm4j.generate.PromptState;
import org.btlm4j.model.Alibi;
import org.btlm4j.model.Btlm;
import org.btlm4j.model.KvCache;

/**
 * Continuous batching: one thread runs the model for every active sequence at once. Each step is
 * ONE {@link Btlm#forwardBatch} over the last token of every decoding sequence plus a bounded
 * chunk of the prompts being read (shared in turn among them), so the weights are read once per
 * step however many clients there are. New sequences join between steps, finished, cancelled and
 * timed-out ones leave and free their KV cache at once. At most {@code parallel} sequences are
 * active; up to {@code queueLength} more wait; beyond that {@link #submit} answers 429.
 *
 * <p>A sequence that finishes normally leaves its cache, with the tokens it holds, in a small
 * {@link PromptPool}; a new sequence takes the entry sharing the longest prefix with its prompt
 * (positions computed with the same ALiBi scaling only, see {@link PromptState}) and reads only
 * the rest. Its last prompt token always runs: its logits give the first new token.
 */
final class BatchEngine implements AutoCloseable {
    /** Rows of logits computed at once: bounds the [rows, vocab] buffer. */
    private static final int LOGIT_ROWS = 32;
    /** Shortest shared prefix worth taking a kept cache for. */
    static final int MIN_REUSED_PREFIX = 16;

    /** What one sequence (one choice) is to do. {@code logprobs} −1: none. */
    record Spec(int[] prompt, GenerationParams params, int logprobs, boolean promptLogprobs) {
    }

    /** A token's log-probability and the most likely alternatives at its position. */
    record TokenLogprob(int token, double logprob, int[] topIds, double[] topLogprobs) {
    }

    /** What a request hears about its sequences. */
    sealed interface Event permits PromptRead, Text, Done, Failed {
        int choice();
    }

    /** The prompt of choice {@code choice} was read; its log-probabilities from the second token on, if asked. */
    record PromptRead(int choice, List<TokenLogprob> promptLogprobs) implements Event {
    }

    /** New final text of choice {@code choice}, with the log-probabilities of its new tokens. */
    record Text(int choice, String text, List<TokenLogprob> logprobs) implements Event {
    }

    /** Choice {@code choice} ended. {@code promptLogprobs}: from the second prompt token on. */
    record Done(int choice, GenerationResult result, List<TokenLogprob> promptLogprobs, long promptNanos,
            long totalNanos) implements Event {
    }

    record Failed(int choice, ApiException error) implements Event {
    }

    /** One request's sequences: their events, and the way to cancel them. */
    static final class Ticket {
        final BlockingQueue<Event> events = new LinkedBlockingQueue<>();
        final long deadline;
        volatile boolean cancelled;

        Ticket(long deadline) {
            this.deadline = deadline;
        }

        /** Ends every sequence of the request at the next step and frees their caches. */
        void cancel() {
            cancelled = true;
        }
    }

    private static final class Job {
        final Ticket ticket;
        final int choice;
        final Spec spec;
        final Decoding decoding;
        final List<TokenLogprob> promptLogprobs = new ArrayList<>();
        final long started = System.nanoTime();
        long promptDone;
        boolean promptReported;
        PromptState state;
        KvCache cache;
        int fed;

        Job(Ticket ticket, int choice, Spec spec, Decoding decoding) {
            this.ticket = ticket;
            this.choice = choice;
            this.spec = spec;
            this.decoding = decoding;
        }

        boolean reading() {
            return fed < spec.prompt().length;
        }
    }

    private final BtlmModel model;
    private final Btlm forward;
    private final int vocab;
    private final int parallel;
    private final int queueLength;
    private final int prefillChunk;
    private final Metrics metrics;
    private final PromptPool pool;
    private final Object lock = new Object();
    private final ArrayDeque<Job> waiting = new ArrayDeque<>();
    private final List<Job> active = new ArrayList<>(); // the engine thread's alone
    private final Thread thread;
    private volatile int activeCount;
    private volatile long kvBytes;
    private volatile long kvPositions;
    private boolean closing;
    private volatile boolean graceOver;
    private int turn; // which reading sequence gets the prompt budget first

    BatchEngine(BtlmModel model, ServerOptions options, Metrics metrics) {
        this.model = model;
        this.forward = model.forwardPass();
        this.vocab = model.config().vocabSize();
        this.parallel = options.parallel();
        this.queueLength = options.queueLength();
        this.prefillChunk = options.prefillChunk();
        this.metrics = metrics;
        this.pool = new PromptPool(options.promptCacheEntries(), options.promptCacheBytes(), MIN_REUSED_PREFIX);
        this.thread = Thread.ofPlatform().name("btlm-batch").daemon(true).unstarted(this::loop);
        thread.start();
    }

    int waiting() {
        synchronized (lock) {
            return waiting.size();
        }
    }

    int active() {
        return activeCount;
    }

    long kvBytes() {
        return kvBytes;
    }

    long kvPositions() {
        return kvPositions;
    }

    /** Kept caches of finished sequences, waiting for a prompt that shares their prefix. */
    int poolEntries() {
        return pool.entries();
    }

    /** Bytes held by the kept caches. */
    long poolBytes() {
        return pool.bytes();
    }

    /** Queues the sequences of one request; 429 when there is no room for all of them. */
    Ticket submit(List<Spec> specs, long deadlineNanos) {
        Ticket ticket = new Ticket(deadlineNanos);
        synchronized (lock) {
            if (closing) {
                throw new ApiException(503, "server_error", null, "shutting_down", "the server is shutting down");
            }
            int room = (parallel - activeCount) + (queueLength - waiting.size());
            if (specs.size() > room) {
                throw new ApiException(429, "server_busy", null, "server_busy", "the server is busy: "
                        + activeCount + " sequences are running and " + waiting.size()
                        + " waiting; try again shortly");
            }
            for (int i = 0; i < specs.size(); i++) {
                Spec s = specs.get(i);
                waiting.add(new Job(ticket, i, s, new Decoding(s.prompt(), s.params(),
                        model.hasTokenizer() ? model.tokenizer() : null, vocab, model.config().eosTokenId(),
                        model.contextLength())));
            }
            lock.notifyAll();
        }
        return ticket;
    }

    /**
     * Stops taking requests; waits up to {@code graceMillis} for the running and waiting sequences
     * to finish, then ends the rest (they finish with what they have, reason {@code length}).
     */
    void shutdown(long graceMillis) {
        synchronized (lock) {
            closing = true;
            lock.notifyAll();
        }
        try {
            thread.join(Math.max(1, graceMillis));
            if (thread.isAlive()) {
                synchronized (lock) {
                    graceOver = true;
                    lock.notifyAll();
                }
                thread.join(10_000);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        shutdown(0);
    }

    private void loop() {
        while (true) {
            synchronized (lock) {
                while (active.isEmpty() && waiting.isEmpty() && !closing) {
                    try {
                        lock.wait();
                    } catch (InterruptedException e) {
                        return;
                    }
                }
                if (closing && active.isEmpty() && waiting.isEmpty()) {
                    pool.clear();
                    return;
                }
                while (active.size() < parallel && !waiting.isEmpty()) {
                    Job j = waiting.poll();
                    if (j.ticket.cancelled) {
                        continue;
                    }
                    admit(j);
                    active.add(j);
                }
                // those still waiting past their time limit give up (admitted ones end in step())
                long now = System.nanoTime();
                waiting.removeIf(j -> {
                    if (j.ticket.cancelled) {
                        return true;
                    }
                    if (graceOver) {
                        j.ticket.events.add(new Failed(j.choice, new ApiException(503, "server_error", null,
                                "shutting_down", "the server is shutting down")));
                        return true;
                    }
                    if (now - j.ticket.deadline > 0) {
                        j.ticket.events.add(new Failed(j.choice, new ApiException(429, "server_busy", null,
                                "server_busy", "the request waited past its time limit for a place; try again")));
                        return true;
                    }
                    return false;
                });
                activeCount = active.size();
            }
            try {
                step();
            } catch (RuntimeException e) {
                // not a client's fault (requests are validated before they get here): end them all
                for (Job j : active) {
                    j.ticket.events.add(new Failed(j.choice, new ApiException(500, "server_error", null, null,
                            "generation failed: " + e.getMessage())));
                }
                finishAll();
            }
            long bytes = 0;
            long positions = 0;
            for (Job j : active) {
                bytes += j.cache.allocatedBytes();
                positions += j.cache.length();
            }
            kvBytes = bytes;
            kvPositions = positions;
        }
    }

    /** Gives {@code j} a cache: a kept one sharing a prefix with its prompt, or a new one. */
    private void admit(Job j) {
        int[] prompt = j.spec.prompt();
        // prompt log-probabilities need the logits of every position: those run from the start
        if (!j.spec.promptLogprobs() && !j.decoding.done()) {
            j.state = pool.take(prompt, prompt.length - 1, Alibi.scale(model.config().alibiScaling(), prompt.length));
        }
        if (j.state == null) {
            j.state = new PromptState(new KvCache(model.config(), model.contextLength(), model.kvType()));
        }
        j.cache = j.state.cache();
        j.fed = j.cache.length();
        metrics.promptTokens.addAndGet(j.fed);
        if (j.fed > 0) {
            metrics.promptCacheHits.incrementAndGet();
        }
    }

    private void finishAll() {
        for (Job j : active) {
            j.cache.clear();
        }
        active.clear();
        synchronized (lock) {
            activeCount = 0;
        }
    }

    private void step() {
        long now = System.nanoTime();
        // leave: cancelled (their client went away), timed out, and prompt-only requests
        for (int i = active.size() - 1; i >= 0; i--) {
            Job j = active.get(i);
            if (j.ticket.cancelled) {
                metrics.cancelled.incrementAndGet();
                j.decoding.stop(FinishReason.LENGTH);
                leave(j, false);
            } else if (now - j.ticket.deadline > 0 || graceOver) {
                j.decoding.stop(FinishReason.LENGTH);
                leave(j, false);
            } else if (j.decoding.done() && !(j.spec.promptLogprobs() && j.reading())) {
                leave(j, false); // max_tokens 0 without prompt log-probabilities: nothing to run
            }
        }
        if (active.isEmpty()) {
            return;
        }
        // who runs what this step: every decoding sequence one token, the readers a shared budget
        List<Job> rowsOf = new ArrayList<>();
        List<Integer> counts = new ArrayList<>();
        int total = 0;
        for (Job j : active) {
            if (!j.reading()) {
                rowsOf.add(j);
                counts.add(1);
                total++;
            }
        }
        List<Job> readers = new ArrayList<>();
        for (Job j : active) {
            if (j.reading()) {
                readers.add(j);
            }
        }
        int budget = prefillChunk;
        for (int r = 0; r < readers.size() && budget > 0; r++) {
            Job j = readers.get((turn + r) % readers.size());
            int n = Math.min(budget, j.spec.prompt().length - j.fed);
            rowsOf.add(j);
            counts.add(n);
            total += n;
            budget -= n;
        }
        turn++;
        int b = rowsOf.size();
        int[] tokens = new int[total];
        int[] count = new int[b];
        int[] scale = new int[b];
        KvCache[] caches = new KvCache[b];
        int[] at = new int[b];
        for (int s = 0, row = 0; s < b; s++) {
            Job j = rowsOf.get(s);
            count[s] = counts.get(s);
            caches[s] = j.cache;
            at[s] = j.cache.length();
            if (j.reading()) {
                System.arraycopy(j.spec.prompt(), j.fed, tokens, row, count[s]);
                scale[s] = j.spec.prompt().length; // the whole prompt's, as one call would
            } else {
                tokens[row] = j.decoding.lastToken();
                scale[s] = j.decoding.length();
            }
            row += count[s];
        }
        float[] hidden = forward.forwardBatch(tokens, count, caches, scale);
        metrics.steps.incrementAndGet();
        for (int s = 0, row = 0; s < b; row += count[s], s++) {
            rowsOf.get(s).state.record(at[s], tokens, row, count[s], Alibi.scale(model.config().alibiScaling(),
                    scale[s]));
        }

        // the rows whose logits are needed, in order: -1 = sample the next token, else the prompt
        // position whose token the row predicts
        List<Job> needJob = new ArrayList<>();
        List<Integer> needRow = new ArrayList<>();
        List<Integer> needWhat = new ArrayList<>();
        for (int s = 0, row = 0; s < b; row += count[s], s++) {
            Job j = rowsOf.get(s);
            if (!j.reading()) {
                needJob.add(j);
                needRow.add(row);
                needWhat.add(-1);
                continue;
            }
            int end = j.fed + count[s];
            boolean last = end == j.spec.prompt().length;
            if (j.spec.promptLogprobs()) {
                for (int k = 0; k < count[s] - (last ? 1 : 0); k++) {
                    needJob.add(j);
                    needRow.add(row + k);
                    needWhat.add(j.fed + k + 1);
                }
            }
            if (last && !j.decoding.done()) {
                needJob.add(j);
                needRow.add(row + count[s] - 1);
                needWhat.add(-1);
            }
            j.fed = end;
            metrics.promptTokens.addAndGet(count[s]);
            metrics.promptTokensComputed.addAndGet(count[s]);
            if (last) {
                j.promptDone = System.nanoTime();
            }
        }
        int e = forward.config().nEmbd();
        float[] rows = new float[LOGIT_ROWS * e];
        float[] logits = new float[LOGIT_ROWS * vocab];
        float[] scratch = new float[vocab];
        long generated = 0;
        for (int from = 0; from < needJob.size(); from += LOGIT_ROWS) {
            int n = Math.min(LOGIT_ROWS, needJob.size() - from);
            for (int k = 0; k < n; k++) {
                System.arraycopy(hidden, needRow.get(from + k) * e, rows, k * e, e);
            }
            forward.logits(rows, 0, n, logits);
            for (int k = 0; k < n; k++) {
                Job j = needJob.get(from + k);
                int what = needWhat.get(from + k);
                if (what >= 0) {
                    j.promptLogprobs.add(tokenLogprob(logits, k * vocab, j.spec.prompt()[what], j.spec.logprobs()));
                } else {
                    generated += sample(j, logits, k * vocab, scratch);
                }
            }
        }
        metrics.generated(generated);
        for (int i = active.size() - 1; i >= 0; i--) {
            Job j = active.get(i);
            if (j.decoding.done() && !j.reading()) {
                leave(j, true);
            }
        }
    }

    /** Picks the next token of {@code j} from the logits at {@code off}; returns 1 if one was generated. */
    private int sample(Job j, float[] logits, int off, float[] scratch) {
        reportPrompt(j);
        double[] topLp = null;
        int[] topIds = null;
        double lse = 0;
        if (j.spec.logprobs() >= 0) {
            lse = LogProbs.logSumExp(logits, off, vocab);
            topLp = new double[j.spec.logprobs()];
            topIds = LogProbs.top(logits, off, vocab, j.spec.logprobs(), topLp);
        }
        System.arraycopy(logits, off, scratch, 0, vocab);
        int before = j.decoding.generated();
        StringBuilder text = new StringBuilder();
        j.decoding.next(scratch, (id, piece) -> text.append(piece));
        boolean tokenAdded = j.decoding.generated() > before;
        List<TokenLogprob> lps = List.of();
        if (tokenAdded && topIds != null) {
            int token = j.decoding.lastToken();
            lps = List.of(new TokenLogprob(token, logits[off + token] - lse, topIds, topLp));
        }
        if (!text.isEmpty() || !lps.isEmpty()) {
            j.ticket.events.add(new Text(j.choice, text.toString(), lps));
        }
        return tokenAdded ? 1 : 0;
    }

    /** log p({@code token}) under the logits at {@code off}, with the {@code top} most likely tokens. */
    private TokenLogprob tokenLogprob(float[] logits, int off, int token, int top) {
        double[] topLp = new double[Math.max(0, top)];
        int[] topIds = top > 0 ? LogProbs.top(logits, off, vocab, top, topLp) : new int[0];
        return new TokenLogprob(token, LogProbs.logProb(logits, off, vocab, token), topIds, topLp);
    }

    private static void reportPrompt(Job j) {
        if (!j.promptReported) {
            j.promptReported = true;
            j.ticket.events.add(new PromptRead(j.choice, List.copyOf(j.promptLogprobs)));
        }
    }

    /** Ends {@code j}; {@code keep}: it finished normally, and its cache goes to the pool. */
    private void leave(Job j, boolean keep) {
        reportPrompt(j);
        long now = System.nanoTime();
        j.ticket.events.add(new Done(j.choice, j.decoding.result(), List.copyOf(j.promptLogprobs),
                (j.promptDone == 0 ? now : j.promptDone) - j.started, now - j.started));
        if (keep) {
            pool.put(j.state);
        } else {
            j.cache.clear();
        }
        active.remove(j);
        synchronized (lock) {
            activeCount = active.size();
            lock.notifyAll();
        }
    }
}
