package org.btlm4j.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/** Continuous batching: concurrent clients share steps and get what they get alone; limits and disconnects. */
class BatchingTest {
    static final String[] PROMPTS = {"And God said", "In the beginning", "Blessed are the", "The fortune",
        "You will meet", "And it came to pass", "Thou shalt", "A wise man", "The LORD is my", "Honour thy",
        "Love is", "Today you", "And the earth", "Beware of", "Fear not", "For God so"};

    static String streamText(ServerFixture s, String prompt, int maxTokens) {
        ServerFixture.Reply r = s.post("/v1/completions", OpenAiServer.json(Map.of("prompt", prompt, "max_tokens",
                maxTokens, "temperature", 0, "stream", true)));
        assertEquals(200, r.status(), r.body());
        StringBuilder b = new StringBuilder();
        for (JsonNode e : ServerFixture.events(r.body())) {
            b.append(e.get("choices").get(0).get("text").asText());
        }
        return b.toString();
    }

    @Test
    void sixteenParallelStreamingClientsGetWhatTheyGetAlone() throws Exception {
        try (ServerFixture s = new ServerFixture(ServerOptions.defaults().withParallel(16, 16))) {
            List<String> alone = new ArrayList<>();
            for (int i = 0; i < PROMPTS.length; i++) {
                alone.add(streamText(s, PROMPTS[i], 10 + i % 5)); // lengths differ: sequences leave at different steps
            }
            long stepsBefore = steps(s);
            try (ExecutorService pool = Executors.newFixedThreadPool(PROMPTS.length)) {
                List<Future<String>> together = new ArrayList<>();
                for (int i = 0; i < PROMPTS.length; i++) {
                    int k = i;
                    together.add(pool.submit(() -> streamText(s, PROMPTS[k], 10 + k % 5)));
                }
                for (int i = 0; i < PROMPTS.length; i++) {
                    assertEquals(alone.get(i), together.get(i).get(), PROMPTS[i]);
                }
            }
            long steps = steps(s) - stepsBefore;
            int tokens = 0;
            for (int i = 0; i < PROMPTS.length; i++) {
                tokens += 10 + i % 5;
            }
            // alone, every token is a step of its own; batched, steps are shared
            assertTrue(steps < tokens, steps + " steps for " + tokens + " tokens");
        }
    }

    static long steps(ServerFixture s) {
        for (String line : s.get("/metrics").body().split("\n")) {
            if (line.startsWith("btlm_decode_steps_total ")) {
                return Long.parseLong(line.substring(line.indexOf(' ') + 1).trim());
            }
        }
        throw new AssertionError("no steps metric");
    }

    static double metric(ServerFixture s, String name) {
        for (String line : s.get("/metrics").body().split("\n")) {
            if (line.startsWith(name + " ")) {
                return Double.parseDouble(line.substring(name.length() + 1).trim());
            }
        }
        throw new AssertionError("no metric " + name);
    }

    @Test
    void overCapacityGets429WithRetryAfterAndADisconnectFreesTheSequence() throws Exception {
        try (ServerFixture s = new ServerFixture(ServerOptions.defaults().withParallel(1, 0))) {
            HttpRequest long_ = HttpRequest.newBuilder(URI.create(s.base + "/v1/completions"))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(OpenAiServer.json(Map.of("prompt", "And God said",
                            "max_tokens", 400, "temperature", 0, "stream", true))))
                    .build();
            HttpResponse<InputStream> running = ServerFixture.HTTP.send(long_, HttpResponse.BodyHandlers.ofInputStream());
            InputStream in = running.body();
            assertTrue(in.read() >= 0); // the first chunk arrived: the sequence is active
            ServerFixture.Reply busy = s.post("/v1/completions", "{\"prompt\":\"Hi\",\"max_tokens\":1}");
            assertEquals(429, busy.status(), busy.body());
            assertEquals("1", busy.response().headers().firstValue("Retry-After").orElse(null));
            assertEquals("server_busy", busy.json().get("error").get("code").asText());
            in.close(); // the client goes away mid-stream
            // the server notices at its next write, cancels the sequence and frees its cache
            for (int i = 0; i < 600 && (metric(s, "btlm_active_sequences") > 0
                    || metric(s, "btlm_sequences_cancelled_total") < 1); i++) {
                Thread.sleep(50);
            }
            assertEquals(1.0, metric(s, "btlm_sequences_cancelled_total"));
            assertEquals(0.0, metric(s, "btlm_active_sequences"));
            assertEquals(0.0, metric(s, "btlm_kv_cache_bytes"));
            assertEquals(200, s.post("/v1/completions", "{\"prompt\":\"Hi\",\"max_tokens\":1}").status());
        }
    }

    @Test
    void gracefulShutdownEndsRunningStreamsCleanly() throws Exception {
        ServerFixture s = new ServerFixture(ServerOptions.defaults().withParallel(2, 4));
        HttpRequest long_ = HttpRequest.newBuilder(URI.create(s.base + "/v1/completions"))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(OpenAiServer.json(Map.of("prompt", "And God said",
                        "max_tokens", 450, "temperature", 0, "stream", true))))
                .build();
        HttpResponse<InputStream> running = ServerFixture.HTTP.send(long_, HttpResponse.BodyHandlers.ofInputStream());
        InputStream in = running.body();
        assertTrue(in.read() >= 0);
        s.server.stop(0); // no grace: the running sequence ends now with what it has
        String rest = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        List<JsonNode> events = ServerFixture.events("d" + rest);
        JsonNode last = events.get(events.size() - 1).get("choices").get(0);
        assertEquals("length", last.get("finish_reason").asText());
    }

    @Test
    void aStreamStillQueuedAtShutdownGets503NotAnErrorInsideA200Stream() throws Exception {
        ServerFixture s = new ServerFixture(ServerOptions.defaults().withParallel(1, 1));
        HttpRequest long_ = HttpRequest.newBuilder(URI.create(s.base + "/v1/completions"))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(OpenAiServer.json(Map.of("prompt", "And God said",
                        "max_tokens", 450, "temperature", 0, "stream", true, "ignore_eos", true))))
                .build();
        HttpResponse<InputStream> running = ServerFixture.HTTP.send(long_, HttpResponse.BodyHandlers.ofInputStream());
        InputStream in = running.body();
        assertTrue(in.read() >= 0); // the only place is taken
        var queued = ServerFixture.HTTP.sendAsync(long_, HttpResponse.BodyHandlers.ofString());
        for (int i = 0; i < 200 && metric(s, "btlm_queue_depth") < 1; i++) {
            Thread.sleep(20);
        }
        assertEquals(1.0, metric(s, "btlm_queue_depth"));
        Thread stopping = Thread.ofVirtual().start(() -> s.server.stop(0));
        in.readAllBytes();
        HttpResponse<String> refused = queued.get();
        assertEquals(503, refused.statusCode(), refused.body());
        assertEquals("application/json", refused.headers().firstValue("Content-Type").orElse(""));
        assertEquals("shutting_down", ServerFixture.JSON.readTree(refused.body()).get("error").get("code").asText());
        stopping.join();
    }
}
