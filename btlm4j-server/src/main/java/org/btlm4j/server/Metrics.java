package org.btlm4j.server;

import java.util.Locale;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/** The server's counters, written as Prometheus text by {@code GET /metrics}. */
final class Metrics {
    private static final int WINDOW_SECONDS = 10;

    final AtomicLong requests = new AtomicLong();
    final AtomicLong rejected = new AtomicLong(); // 4xx answers (429 included)
    final AtomicLong busy = new AtomicLong();     // 429 answers
    final AtomicLong promptTokens = new AtomicLong();
    final AtomicLong promptTokensComputed = new AtomicLong(); // read through the model, not taken from a kept cache
    final AtomicLong promptCacheHits = new AtomicLong();
    final AtomicLong generatedTokens = new AtomicLong();
    final AtomicLong cancelled = new AtomicLong();
    final AtomicLong steps = new AtomicLong();
    final AtomicInteger inFlight = new AtomicInteger(); // completion handlers running: none may be left behind
    // generated tokens per second of the last WINDOW_SECONDS seconds, as a ring of per-second counts
    private final AtomicLongArray perSecond = new AtomicLongArray(WINDOW_SECONDS);
    private final AtomicLongArray secondOf = new AtomicLongArray(WINDOW_SECONDS);

    void generated(long tokens) {
        generatedTokens.addAndGet(tokens);
        long second = System.nanoTime() / 1_000_000_000L;
        int slot = (int) (second % WINDOW_SECONDS);
        if (secondOf.getAndSet(slot, second) != second) {
            perSecond.set(slot, 0);
        }
        perSecond.addAndGet(slot, tokens);
    }

    /** Generated tokens per second over the last full seconds of the window. */
    double tokensPerSecond() {
        long now = System.nanoTime() / 1_000_000_000L;
        long sum = 0;
        for (int i = 0; i < WINDOW_SECONDS; i++) {
            long s = secondOf.get(i);
            if (s < now && s >= now - (WINDOW_SECONDS - 1)) {
                sum += perSecond.get(i);
            }
        }
        return sum / (double) (WINDOW_SECONDS - 1);
    }

    String prometheus(BatchEngine engine) {
        StringBuilder b = new StringBuilder();
        counter(b, "btlm_requests_total", "HTTP requests received", requests.get());
        counter(b, "btlm_requests_rejected_total", "requests answered with a 4xx error", rejected.get());
        counter(b, "btlm_requests_busy_total", "requests refused with 429 because the queue was full", busy.get());
        counter(b, "btlm_prompt_tokens_total", "prompt tokens read", promptTokens.get());
        counter(b, "btlm_prompt_tokens_computed_total", "prompt tokens run through the model (the rest came from "
                + "kept caches)", promptTokensComputed.get());
        counter(b, "btlm_prompt_cache_hits_total", "sequences that started from a kept cache", promptCacheHits.get());
        counter(b, "btlm_generated_tokens_total", "tokens generated", generatedTokens.get());
        counter(b, "btlm_sequences_cancelled_total", "sequences ended by a client disconnect", cancelled.get());
        counter(b, "btlm_decode_steps_total", "batched forward steps", steps.get());
        gauge(b, "btlm_generated_tokens_per_second", "tokens generated per second over the last "
                + (WINDOW_SECONDS - 1) + " seconds", tokensPerSecond());
        gauge(b, "btlm_requests_in_flight", "completion requests being answered", inFlight.get());
        gauge(b, "btlm_queue_depth", "sequences waiting for a place", engine == null ? 0 : engine.waiting());
        gauge(b, "btlm_active_sequences", "sequences being decoded", engine == null ? 0 : engine.active());
        gauge(b, "btlm_kv_cache_bytes", "bytes held by the KV caches of active sequences",
                engine == null ? 0 : engine.kvBytes());
        gauge(b, "btlm_kv_cache_positions", "positions held in the KV caches of active sequences",
                engine == null ? 0 : engine.kvPositions());
        gauge(b, "btlm_prompt_cache_entries", "KV caches of finished sequences kept for prefix reuse",
                engine == null ? 0 : engine.poolEntries());
        gauge(b, "btlm_prompt_cache_bytes", "bytes held by the kept KV caches",
                engine == null ? 0 : engine.poolBytes());
        return b.toString();
    }

    private static void counter(StringBuilder b, String name, String help, long value) {
        b.append("# HELP ").append(name).append(' ').append(help).append('\n');
        b.append("# TYPE ").append(name).append(" counter\n");
        b.append(name).append(' ').append(value).append('\n');
    }

    private static void gauge(StringBuilder b, String name, String help, double value) {
        b.append("# HELP ").append(name).append(' ').append(help).append('\n');
        b.append("# TYPE ").append(name).append(" gauge\n");
        b.append(name).append(' ').append(String.format(Locale.ROOT, "%.3f", value)).append('\n');
    }
}
