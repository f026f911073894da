package org.btlm4j.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Queue;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import org.btlm4j.BtlmModel;
import org.junit.jupiter.api.Test;

/**
 * The server under load and faults, on loopback with the demo model: 64 concurrent clients that
 * stream greedy completions (some reading slowly), hang up mid-stream, send oversized, malformed and
 * mutated bodies, and prompts over the context, while a monitor asks {@code /health} all along.
 *
 * <p>Checked: {@code /health} answers 200 throughout; no answer is a 5xx; every bad request gets a
 * 4xx JSON error; every well-behaved stream ends with {@code [DONE]} and its text equals what the
 * same request got alone before the load; afterwards no sequence, KV cache, queued sequence or
 * request handler is left, and live threads and heap after GC are back near their level before the
 * load; a graceful stop ends the streams still running with a finish reason and {@code [DONE]}, and
 * leaves no server thread behind.
 *
 * <p>It runs {@value #DEFAULT_SECONDS} s of load in the normal build; {@code -Dbtlm.soak.seconds=N}
 * (or {@code BTLM_SOAK_SECONDS=N}) runs N seconds. The figures are printed as one line
 * starting with {@code soak:}.
 */
class SoakTest {
    static final int DEFAULT_SECONDS = 15;
    static final int CLIENTS = 64;
    static final int PARALLEL = 16;
    static final int QUEUE = 64;
    static final int MAX_BODY = 64 << 10;
    static final int MAX_TOKENS_LIMIT = 64;
    static final int CONTEXT = 512; // models/btlm-demo's n_positions
    /** Slack for JVM housekeeping threads (compiler, GC, common pool) that may come and go. */
    static final int THREAD_TOLERANCE = 8;
    /** Slack for class metadata, JIT and pooled buffers after the load; a leaked KV cache of one full sequence is 3 MiB. */
    static final long HEAP_TOLERANCE = 48L << 20;

    static int seconds() {
        String p = System.getProperty("btlm.soak.seconds");
        if (p == null || p.isBlank()) {
            p = System.getenv("BTLM_SOAK_SECONDS");
        }
        return p == null || p.isBlank() ? DEFAULT_SECONDS : Integer.parseInt(p.trim());
    }

    /** A greedy streaming request a well-behaved client sends, and what it got alone. */
    record Case(String prompt, int maxTokens) {
        String body() {
            return OpenAiServer.json(Map.of("prompt", prompt, "max_tokens", maxTokens, "temperature", 0,
                    "stream", true));
        }
    }

    /** What went wrong, kept to be reported all at once. */
    final Queue<String> failures = new ConcurrentLinkedQueue<>();
    final Queue<Long> latencies = new ConcurrentLinkedQueue<>();
    final AtomicLong requests = new AtomicLong();
    final AtomicLong goodStreams = new AtomicLong();
    final AtomicLong slowStreams = new AtomicLong();
    final AtomicLong hangUps = new AtomicLong();
    final AtomicLong badRequests = new AtomicLong();
    final AtomicLong busy = new AtomicLong();
    final AtomicLong healthChecks = new AtomicLong();

    void fail(String what) {
        if (failures.size() < 50) {
            failures.add(what);
        }
    }

    @Test
    void sixtyFourClientsWithFaultsLeaveTheServerAnsweringAndNothingBehind() throws Exception {
        int seconds = seconds();
        ServerFixture.demo(); // the shared test client's threads are not the server's
        Set<String> threadsBeforeServer = threadNames();
        int threadCountBeforeServer = threadsBeforeServer.size();
        ServerOptions options = new ServerOptions("127.0.0.1", 0, "btlm", null, PARALLEL, QUEUE, 0, MAX_TOKENS_LIMIT,
                MAX_BODY, Duration.ofSeconds(120), 128, null);
        OpenAiServer server = OpenAiServer.start(options, () -> BtlmModel.load(ServerFixture.demo(),
                new BtlmModel.Options(2, 0)));
        server.awaitReady();
        String base = "http://127.0.0.1:" + server.port();
        boolean stopped = false;
        try (HttpClient http = HttpClient.newBuilder().executor(Executors.newVirtualThreadPerTaskExecutor()).build()) {
            // what each well-behaved request gets alone, one at a time (this also warms the server up)
            List<Case> cases = new ArrayList<>();
            Map<Case, String> alone = new java.util.HashMap<>();
            for (int i = 0; i < BatchingTest.PROMPTS.length; i++) {
                Case c = new Case(BatchingTest.PROMPTS[i], 6 + i % 11);
                cases.add(c);
                String text = streamedText(http, base, c, 0);
                assertTrue(text != null, "alone: " + failures);
                alone.put(c, text);
            }
            assertEquals(List.of(), List.copyOf(failures));
            Metricsnap before = Metricsnap.of(http, base);
            long heapBefore = heapAfterGc();
            int threadsBefore = ManagementFactory.getThreadMXBean().getThreadCount();

            // the load: CLIENTS clients until the deadline, and a monitor asking /health
            long start = System.nanoTime();
            long deadline = start + Duration.ofSeconds(seconds).toNanos();
            try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
                List<Future<?>> running = new ArrayList<>();
                running.add(pool.submit(() -> health(http, base, deadline)));
                for (int k = 0; k < CLIENTS; k++) {
                    SplittableRandom r = new SplittableRandom(1000 + k);
                    running.add(pool.submit(() -> client(http, base, r, cases, alone, deadline)));
                }
                for (Future<?> f : running) {
                    f.get();
                }
            }
            double loadSeconds = (System.nanoTime() - start) / 1e9;

            // afterwards: nothing running, nothing held
            Metricsnap after = Metricsnap.quiet(http, base);
            long heapAfter = heapAfterGc();
            int threadsAfter = ManagementFactory.getThreadMXBean().getThreadCount();
            long tokens = after.generated - before.generated;
            List<Long> sorted = new ArrayList<>(latencies);
            Collections.sort(sorted);
            System.out.printf(Locale.ROOT, "soak: %d s, %d clients, %d requests (%d streams alone-equal, %d of them "
                    + "slow readers, %d hang-ups, %d bad requests, %d busy 429, %d health checks), %d tokens, "
                    + "%.1f tokens/s, stream latency p50 %.0f ms p99 %.0f ms, heap after GC %.1f → %.1f MiB, "
                    + "threads %d → %d, KV bytes after %d, active after %d, kept caches %d (%d bytes)%n", seconds, CLIENTS, requests.get(),
                    goodStreams.get(), slowStreams.get(), hangUps.get(), badRequests.get(), busy.get(),
                    healthChecks.get(), tokens, tokens / loadSeconds, percentile(sorted, 0.50) / 1e6,
                    percentile(sorted, 0.99) / 1e6, heapBefore / 1048576.0, heapAfter / 1048576.0, threadsBefore,
                    threadsAfter, after.kvBytes, after.active, after.poolEntries, after.poolBytes);
            assertEquals(List.of(), List.copyOf(failures), "failures under load");
            assertTrue(goodStreams.get() >= CLIENTS / 4, goodStreams.get() + " well-behaved streams completed");
            assertTrue(hangUps.get() > 0 && badRequests.get() > 0, "every kind of fault was sent");
            assertEquals(0, after.active, "sequences left active");
            assertEquals(0, after.kvBytes, "KV cache bytes left");
            // finished sequences' caches kept for prefix reuse: bounded, and held apart from the active ones
            assertTrue(after.poolEntries <= options.promptCacheEntries(), after.poolEntries + " kept caches");
            assertTrue(after.poolBytes <= options.promptCacheBytes(), after.poolBytes + " bytes in kept caches");
            assertEquals(0, after.queued, "sequences left queued");
            assertEquals(0, after.inFlight, "request handlers left running");
            assertTrue(after.cancelled > before.cancelled, "hang-ups cancelled their sequences");
            assertTrue(threadsAfter <= threadsBefore + THREAD_TOLERANCE, threadsBefore + " → " + threadsAfter
                    + " threads");
            // the kept caches may have grown (by at most their bound) between the two measures
            assertTrue(heapAfter - after.poolBytes <= heapBefore - before.poolBytes + HEAP_TOLERANCE, heapBefore + " → " + heapAfter + " heap bytes");

            // graceful stop with streams running: each ends cleanly, with a finish reason and [DONE]
            stopped = true;
            gracefulStopEndsRunningStreams(http, base, server);
        } finally {
            if (!stopped) {
                server.stop(0);
            }
        }
        Set<String> left = threadNames();
        left.removeAll(threadsBeforeServer);
        // the JDK's own, started on first use: virtual-thread schedulers and pollers, compilers
        left.removeIf(n -> n.startsWith("ForkJoinPool") || n.startsWith("C1 ") || n.startsWith("C2 ")
                || n.startsWith("Common-Cleaner") || n.equals("MasterPoller") || n.endsWith("-Poller")
                || n.equals("VirtualThread-unblocker") || n.startsWith("HttpClient-"));
        assertTrue(left.isEmpty(), "threads left after stop: " + left);
        assertTrue(threadNames().size() <= threadCountBeforeServer + THREAD_TOLERANCE, "threads after stop");
    }

    /** One client: a random mix of good streams, slow readers, hang-ups and bad requests until the deadline. */
    void client(HttpClient http, String base, SplittableRandom r, List<Case> cases, Map<Case, String> alone,
            long deadline) {
        while (System.nanoTime() < deadline && failures.isEmpty()) {
            requests.incrementAndGet();
            int kind = r.nextInt(100);
            String name = kind < 45 ? "stream" : kind < 60 ? "hang-up" : kind < 70 ? "oversized body"
                    : kind < 85 ? "malformed body" : "over the context";
            try {
                if (kind < 45) {
                    Case c = cases.get(r.nextInt(cases.size()));
                    boolean slow = r.nextInt(5) == 0;
                    long t0 = System.nanoTime();
                    String text = streamedText(http, base, c, slow ? 5 + r.nextInt(30) : 0);
                    if (text != null) {
                        latencies.add(System.nanoTime() - t0);
                        goodStreams.incrementAndGet();
                        if (slow) {
                            slowStreams.incrementAndGet();
                        }
                        if (!text.equals(alone.get(c))) {
                            fail("greedy text under load differs for " + c + ": " + text + " vs alone "
                                    + alone.get(c));
                        }
                    }
                } else if (kind < 60) {
                    hangUp(http, base, cases.get(r.nextInt(cases.size())), r);
                } else if (kind < 70) {
                    oversized(http, base, r);
                } else if (kind < 85) {
                    malformed(http, base, r);
                } else {
                    overContext(http, base, r);
                }
            } catch (IOException e) {
                fail(name + ": the request failed without an answer: " + e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } catch (RuntimeException | AssertionError e) {
                fail(name + ": " + e);
            }
        }
    }

    void health(HttpClient http, String base, long deadline) {
        while (System.nanoTime() < deadline) {
            try {
                HttpResponse<String> h = http.send(HttpRequest.newBuilder(URI.create(base + "/health"))
                        .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
                healthChecks.incrementAndGet();
                if (h.statusCode() != 200) {
                    fail("/health answered " + h.statusCode() + " " + h.body());
                }
                Thread.sleep(100);
            } catch (IOException e) {
                fail("/health did not answer: " + e);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    /**
     * Streams {@code c} and returns its text, or null where the server was busy (429, a valid
     * answer under load). With {@code pauseMs} &gt; 0, reads line by line with a pause after each.
     */
    String streamedText(HttpClient http, String base, Case c, int pauseMs)
            throws IOException, InterruptedException {
        HttpResponse<InputStream> res = http.send(post(base + "/v1/completions", c.body()),
                HttpResponse.BodyHandlers.ofInputStream());
        if (res.statusCode() != 200) {
            String body = new String(res.body().readAllBytes(), StandardCharsets.UTF_8);
            expectError(res.statusCode(), body, "streaming " + c);
            if (res.statusCode() == 429) {
                busy.incrementAndGet();
                return null;
            }
            fail("a well-behaved stream got " + res.statusCode() + ": " + body);
            return null;
        }
        StringBuilder sse = new StringBuilder();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(res.body(), StandardCharsets.UTF_8))) {
            for (String line; (line = in.readLine()) != null; ) {
                sse.append(line).append('\n');
                if (pauseMs > 0 && line.startsWith("data: ")) {
                    Thread.sleep(pauseMs);
                }
            }
        }
        StringBuilder text = new StringBuilder();
        String finish = null;
        try {
            for (JsonNode e : ServerFixture.events(sse.toString())) {
                if (e.has("error")) {
                    fail("error inside a well-behaved stream: " + e);
                    return null;
                }
                JsonNode choice = e.get("choices").get(0);
                text.append(choice.get("text").asText());
                if (!choice.get("finish_reason").isNull()) {
                    finish = choice.get("finish_reason").asText();
                }
            }
        } catch (AssertionError e) {
            fail(c + ": " + e.getMessage());
            return null;
        }
        if (finish == null) {
            fail(c + ": the stream has no finish_reason: " + sse);
            return null;
        }
        return text.toString();
    }

    /** Starts a stream, reads a random part of it, and goes away. */
    void hangUp(HttpClient http, String base, Case c, SplittableRandom r) throws IOException, InterruptedException {
        String body = OpenAiServer.json(Map.of("prompt", c.prompt(), "max_tokens", MAX_TOKENS_LIMIT, "temperature", 0,
                "stream", true, "ignore_eos", true));
        HttpResponse<InputStream> res = http.send(post(base + "/v1/completions", body),
                HttpResponse.BodyHandlers.ofInputStream());
        try (InputStream in = res.body()) {
            if (res.statusCode() != 200) {
                expectError(res.statusCode(), new String(in.readAllBytes(), StandardCharsets.UTF_8), "hang-up stream");
                if (res.statusCode() == 429) {
                    busy.incrementAndGet();
                }
                return;
            }
            in.readNBytes(1 + r.nextInt(600)); // the first chunks (or less)
        }
        hangUps.incrementAndGet();
    }

    /** A body over the limit, with or without a Content-Length: 413. */
    void oversized(HttpClient http, String base, SplittableRandom r) throws IOException, InterruptedException {
        byte[] body = ("{\"prompt\":\"" + "a".repeat(MAX_BODY + r.nextInt(4 * MAX_BODY)) + "\"}")
                .getBytes(StandardCharsets.UTF_8);
        HttpRequest.BodyPublisher publisher = r.nextBoolean() ? HttpRequest.BodyPublishers.ofByteArray(body)
                : HttpRequest.BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(body)); // chunked
        String path = r.nextBoolean() ? "/v1/completions" : "/tokenize";
        HttpResponse<String> res = http.send(HttpRequest.newBuilder(URI.create(base + path))
                .header("Content-Type", "application/json").POST(publisher).build(),
                HttpResponse.BodyHandlers.ofString());
        badRequests.incrementAndGet();
        if (res.statusCode() != 413) {
            fail(path + ": an oversized body (" + body.length + " bytes) got " + res.statusCode() + " " + res.body());
        }
        expectError(res.statusCode(), res.body(), "oversized body");
    }

    static final String[] MALFORMED = {"{\"prompt\": \"x\"", "", "[1,2]", "{\"prompt\": 5}", "null",
        "{\"prompt\": \"x\", \"max_tokens\": \"ten\"}", "{\"prompt\": [1, -2]}", "{\"prompt\": [1, 99999999]}",
        "{\"prompt\": \"x\", \"n\": 65}", "{\"messages\": [{\"role\": \"user\"}], \"stream\": 1}",
        "{\"prompt\":" + "[".repeat(1000) + "]".repeat(1000) + "}", "{\"prompt\": \"x\", \"max_tokens\": 65}"};

    /** A body that is certainly wrong (4xx), or a mutated valid one (an answer or a 4xx, never 5xx). */
    void malformed(HttpClient http, String base, SplittableRandom r) throws IOException, InterruptedException {
        boolean certain = r.nextBoolean();
        byte[] body = certain ? MALFORMED[r.nextInt(MALFORMED.length)].getBytes(StandardCharsets.UTF_8)
                : RequestsFuzzTest.mutant(r);
        String path = certain ? (r.nextBoolean() ? "/v1/completions" : "/v1/chat/completions")
                : new String[] {"/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"}[r.nextInt(4)];
        HttpResponse<String> res = http.send(HttpRequest.newBuilder(URI.create(base + path))
                .POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(), HttpResponse.BodyHandlers.ofString());
        String what = path + " " + new String(body, StandardCharsets.UTF_8);
        if (res.statusCode() == 200 && !certain) {
            return;
        }
        badRequests.incrementAndGet();
        if (res.statusCode() == 429) {
            busy.incrementAndGet();
        }
        expectError(res.statusCode(), res.body(), what);
    }

    /** A prompt longer than the context, or one whose max_tokens would run past it: 400. */
    void overContext(HttpClient http, String base, SplittableRandom r) throws IOException, InterruptedException {
        boolean longPrompt = r.nextBoolean();
        int[] ids = r.ints(longPrompt ? CONTEXT + 1 + r.nextInt(2000) : CONTEXT - 10, 100, 5000).toArray();
        String body = OpenAiServer.json(Map.of("prompt", ids, "max_tokens", longPrompt ? 4 : MAX_TOKENS_LIMIT,
                "stream", r.nextBoolean()));
        HttpResponse<String> res = http.send(post(base + "/v1/completions", body), HttpResponse.BodyHandlers.ofString());
        badRequests.incrementAndGet();
        JsonNode e = expectError(res.statusCode(), res.body(), "over the context");
        if (e != null && (res.statusCode() != 400 || !"context_length_exceeded".equals(e.path("code").asText()))) {
            fail("over the context: " + res.statusCode() + " " + res.body());
        }
    }

    /** A 4xx with OpenAI's error object; records a failure otherwise. */
    JsonNode expectError(int status, String body, String what) {
        if (status < 400 || status >= 500) {
            fail(what + " → " + status + " " + abbreviate(body));
            return null;
        }
        try {
            JsonNode e = ServerFixture.JSON.readTree(body).get("error");
            if (e == null || !e.path("message").isTextual() || e.path("message").asText().isEmpty()) {
                fail(what + " → " + status + " without an error message: " + abbreviate(body));
                return null;
            }
            return e;
        } catch (IOException ex) {
            fail(what + " → " + status + " not JSON: " + abbreviate(body));
            return null;
        }
    }

    static String abbreviate(String s) {
        return s.length() > 300 ? s.substring(0, 300) + "…" : s;
    }

    static HttpRequest post(String url, String body) {
        return HttpRequest.newBuilder(URI.create(url)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
    }

    /**
     * {@code PARALLEL} streams running and 4 more queued when the server stops with 200 ms of grace:
     * the running ones end with a finish reason and {@code [DONE]}, the queued ones get a 503 JSON
     * error, and the listener closes.
     */
    void gracefulStopEndsRunningStreams(HttpClient http, String base, OpenAiServer server) throws Exception {
        List<InputStream> running = new ArrayList<>();
        List<String> firsts = new ArrayList<>();
        for (int i = 0; i < PARALLEL; i++) {
            HttpResponse<InputStream> res = http.send(longStream(base, i), HttpResponse.BodyHandlers.ofInputStream());
            assertEquals(200, res.statusCode());
            running.add(res.body());
            firsts.add(new String(res.body().readNBytes(6), StandardCharsets.UTF_8)); // "data: ": it is running
        }
        List<java.util.concurrent.CompletableFuture<HttpResponse<String>>> queued = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            queued.add(http.sendAsync(longStream(base, i), HttpResponse.BodyHandlers.ofString()));
        }
        for (int i = 0; i < 200 && Metricsnap.of(http, base).queued < 4; i++) {
            Thread.sleep(20);
        }
        assertEquals(4, Metricsnap.of(http, base).queued, "queued before the stop");
        Thread stopping = Thread.ofVirtual().start(() -> server.stop(200));
        for (int i = 0; i < PARALLEL; i++) {
            String sse = firsts.get(i) + new String(running.get(i).readAllBytes(), StandardCharsets.UTF_8);
            List<JsonNode> events = ServerFixture.events(sse); // ends with [DONE]
            JsonNode last = events.get(events.size() - 1).get("choices").get(0);
            assertTrue(last.get("finish_reason").isTextual(), "stream " + i + " ends with a finish reason: " + sse);
        }
        for (var q : queued) {
            HttpResponse<String> res = q.get();
            assertEquals(503, res.statusCode(), res.body());
            assertEquals("shutting_down", ServerFixture.JSON.readTree(res.body()).get("error").get("code").asText());
        }
        stopping.join();
        // the listener is closed: a new request is refused, not left hanging
        try {
            HttpResponse<String> late = http.send(HttpRequest.newBuilder(URI.create(base + "/health"))
                    .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(503, late.statusCode(), late.body());
        } catch (IOException expected) {
            // connection refused: nothing listens any more
        }
    }

    static HttpRequest longStream(String base, int i) {
        return post(base + "/v1/completions", OpenAiServer.json(Map.of("prompt", BatchingTest.PROMPTS[i],
                "max_tokens", MAX_TOKENS_LIMIT, "temperature", 0, "stream", true, "ignore_eos", true)));
    }

    static Set<String> threadNames() {
        Set<String> names = new TreeSet<>();
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.isAlive()) {
                names.add(t.getName());
            }
        }
        return names;
    }

    static long heapAfterGc() throws InterruptedException {
        long used = Long.MAX_VALUE;
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(100);
            used = Math.min(used, ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed());
        }
        return used;
    }

    static double percentile(List<Long> sorted, double q) {
        return sorted.isEmpty() ? Double.NaN : sorted.get((int) Math.min(sorted.size() - 1, Math.floor(q * sorted.size())));
    }

    /** The gauges and counters of {@code /metrics} that the soak checks. */
    record Metricsnap(long active, long kvBytes, long queued, long inFlight, long generated, long cancelled,
            long poolEntries, long poolBytes) {
        static Metricsnap of(HttpClient http, String base) throws IOException, InterruptedException {
            String text = http.send(HttpRequest.newBuilder(URI.create(base + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            Map<String, Long> v = new java.util.HashMap<>();
            for (String line : text.split("\n")) {
                if (!line.startsWith("#") && line.contains(" ")) {
                    v.put(line.substring(0, line.indexOf(' ')), (long) Double.parseDouble(line.substring(
                            line.indexOf(' ') + 1)));
                }
            }
            return new Metricsnap(v.get("btlm_active_sequences"), v.get("btlm_kv_cache_bytes"),
                    v.get("btlm_queue_depth"), v.get("btlm_requests_in_flight"), v.get("btlm_generated_tokens_total"),
                    v.get("btlm_sequences_cancelled_total"), v.get("btlm_prompt_cache_entries"),
                    v.get("btlm_prompt_cache_bytes"));
        }

        /** Once the last hang-ups have been noticed (at the server's next write) and their sequences freed. */
        static Metricsnap quiet(HttpClient http, String base) throws IOException, InterruptedException {
            Metricsnap m = of(http, base);
            for (int i = 0; i < 300 && (m.active > 0 || m.kvBytes > 0 || m.queued > 0 || m.inFlight > 0); i++) {
                Thread.sleep(100);
                m = of(http, base);
            }
            return m;
        }
    }
}
