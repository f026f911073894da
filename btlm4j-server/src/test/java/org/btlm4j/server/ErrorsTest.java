package org.btlm4j.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Bad requests over HTTP: OpenAI-shaped 4xx errors, never a 500. */
class ErrorsTest {
    static ServerFixture server;

    @BeforeAll
    static void start() {
        server = new ServerFixture(ServerOptions.defaults().withParallel(2, 4)
                .withLimits(100, 64, 4096, Duration.ofSeconds(60)));
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    static JsonNode expectError(ServerFixture.Reply r, int status, String param) {
        assertEquals(status, r.status(), r.body());
        JsonNode e = r.json().get("error");
        assertTrue(e.get("message").isTextual() && !e.get("message").asText().isEmpty(), r.body());
        assertTrue(e.has("type") && e.has("param") && e.has("code"), r.body());
        if (param != null) {
            assertEquals(param, e.get("param").asText(), r.body());
        }
        return e;
    }

    @Test
    void malformedAndMistypedBodiesAre400() {
        expectError(server.post("/v1/completions", "{\"prompt\": \"x\""), 400, null);
        expectError(server.post("/v1/completions", ""), 400, null);
        expectError(server.post("/v1/completions", "[1,2]"), 400, null);
        expectError(server.post("/v1/completions", "{\"prompt\": 5}"), 400, "prompt");
        expectError(server.post("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": \"ten\"}"), 400, "max_tokens");
        expectError(server.post("/v1/completions", "{\"prompt\": \"x\", \"temperature\": -1}"), 400, "temperature");
        expectError(server.post("/v1/completions", "{\"prompt\": \"x\", \"stream\": \"yes\"}"), 400, "stream");
        expectError(server.post("/v1/completions", "{\"prompt\": [1, -2]}"), 400, "prompt");
        expectError(server.post("/v1/completions", "{\"prompt\": [1, 99999999]}"), 400, "prompt");
        expectError(server.post("/v1/chat/completions", "{\"messages\": []}"), 400, "messages");
        expectError(server.post("/v1/chat/completions", "{\"messages\": [{\"role\": 3, \"content\": \"x\"}]}"), 400,
                "messages[0].role");
        expectError(server.post("/tokenize", "{\"content\": [1]}"), 400, "content");
        expectError(server.post("/detokenize", "{\"tokens\": \"abc\"}"), 400, "tokens");
    }

    @Test
    void mutatedBodiesOverHttpGetAnAnswerOrA4xxNeverA500() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(23);
        String[] paths = {"/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"};
        for (int i = 0; i < 300; i++) {
            byte[] body = RequestsFuzzTest.mutant(r);
            String path = paths[r.nextInt(paths.length)];
            ServerFixture.Reply reply = ServerFixture.send(java.net.http.HttpRequest.newBuilder(
                    java.net.URI.create(server.base + path)).POST(
                    java.net.http.HttpRequest.BodyPublishers.ofByteArray(body)).build());
            String what = path + " " + new String(body, java.nio.charset.StandardCharsets.UTF_8) + " → " + reply.body();
            assertTrue(reply.status() == 200 || reply.status() >= 400 && reply.status() < 500, what);
            if (reply.status() != 200) {
                assertTrue(reply.json().get("error").get("message").isTextual(), what);
            }
        }
    }

    @Test
    void limitsAreEnforced() {
        StringBuilder longPrompt = new StringBuilder();
        for (int i = 0; i < 150; i++) {
            longPrompt.append(i).append(',');
        }
        JsonNode e = expectError(server.post("/v1/completions", "{\"prompt\": [" + longPrompt + "1]}"), 400, "prompt");
        assertEquals("context_length_exceeded", e.get("code").asText());
        expectError(server.post("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 65}"), 400, "max_tokens");
        String big = "{\"prompt\": \"" + "a".repeat(5000) + "\"}";
        assertEquals("request_too_large", expectError(server.post("/v1/completions", big), 413, null).get("code").asText());
        expectError(server.post("/v1/nothing", "{}"), 404, null);
    }

    @Test
    void promptPlusMaxTokensBeyondTheContextIs400() {
        try (ServerFixture s = new ServerFixture(ServerOptions.defaults())) {
            StringBuilder p = new StringBuilder();
            for (int i = 0; i < 500; i++) {
                p.append(i % 100 + 10).append(',');
            }
            JsonNode e = expectError(s.post("/v1/completions", "{\"prompt\": [" + p + "1], \"max_tokens\": 50}"), 400,
                    "max_tokens");
            assertEquals("context_length_exceeded", e.get("code").asText());
        }
    }

    @Test
    void aRequestPastItsTimeLimitEndsWithWhatItHas() {
        try (ServerFixture s = new ServerFixture(ServerOptions.defaults().withLimits(0, 2048, 4096,
                Duration.ofMillis(1)))) {
            JsonNode r = s.post("/v1/completions", "{\"prompt\":\"And God said\",\"max_tokens\":450,"
                    + "\"ignore_eos\":true}").json();
            int generated = r.get("usage").get("completion_tokens").asInt();
            assertTrue(generated < 450, generated + " tokens"); // 450 decode steps cannot fit in 1 ms
            assertEquals("length", r.get("choices").get(0).get("finish_reason").asText());
        }
    }

    @Test
    void apiKeyIsRequiredWhenSet() {
        try (ServerFixture s = new ServerFixture(ServerOptions.defaults().withApiKey("sesame"))) {
            expectError(s.post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":1}"), 401, null);
            expectError(s.post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":1}", "Authorization", "Bearer nope"),
                    401, null);
            expectError(s.get("/metrics"), 401, null);
            assertEquals(200, s.post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":1}", "Authorization",
                    "Bearer sesame").status());
            assertEquals(200, s.get("/health").status());
        }
    }

    @Test
    void healthIs503WhileLoading() throws Exception {
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        OpenAiServer s = OpenAiServer.start(ServerOptions.defaults().withPort(0), () -> {
            try {
                release.await();
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
            return org.btlm4j.BtlmModel.load(ServerFixture.demo(), new org.btlm4j.BtlmModel.Options(1, 0));
        });
        try {
            String base = "http://127.0.0.1:" + s.port();
            ServerFixture.Reply h = ServerFixture.send(java.net.http.HttpRequest.newBuilder(
                    java.net.URI.create(base + "/health")).build());
            assertEquals(503, h.status());
            ServerFixture.Reply c = ServerFixture.send(java.net.http.HttpRequest.newBuilder(
                    java.net.URI.create(base + "/v1/completions")).POST(
                    java.net.http.HttpRequest.BodyPublishers.ofString("{\"prompt\":\"x\"}")).build());
            assertEquals(503, c.status());
            assertEquals("model_loading", c.json().get("error").get("code").asText());
            release.countDown();
            s.awaitReady();
            assertEquals(200, ServerFixture.send(java.net.http.HttpRequest.newBuilder(
                    java.net.URI.create(base + "/health")).build()).status());
        } finally {
            release.countDown();
            s.stop(1000);
        }
    }

    /** One HTTP/1.1 answer read off a raw connection: its status line, headers and body. */
    static String readAnswer(java.io.InputStream in) throws java.io.IOException {
        StringBuilder head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) {
            int c = in.read();
            if (c < 0) {
                throw new java.io.EOFException("the connection closed after: " + head);
            }
            head.append((char) c);
        }
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?i)content-length: *(\\d+)").matcher(head);
        int length = m.find() ? Integer.parseInt(m.group(1)) : 0;
        return head + new String(in.readNBytes(length), java.nio.charset.StandardCharsets.UTF_8);
    }

    @Test
    void anOversizedBodyIsReadToItsEndSoThe413ArrivesAndTheConnectionStaysUsable() throws Exception {
        // the server used to answer before reading the rest and close the connection on the unread
        // bytes: the reset that follows can destroy the 413 before the client reads it
        String big = "{\"prompt\": \"" + "a".repeat(200_000) + "\"}";
        String chunked = Integer.toHexString(big.length()) + "\r\n" + big + "\r\n0\r\n\r\n";
        for (String request : new String[] {
            "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: "
                    + big.length() + "\r\n\r\n" + big,
            "POST /tokenize HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + "Transfer-Encoding: chunked\r\n\r\n" + chunked}) {
            try (java.net.Socket socket = new java.net.Socket("127.0.0.1", server.server.port())) {
                socket.setSoTimeout(30_000);
                java.io.OutputStream out = socket.getOutputStream();
                java.io.InputStream in = new java.io.BufferedInputStream(socket.getInputStream());
                out.write(request.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                out.flush();
                String answer = readAnswer(in);
                assertTrue(answer.startsWith("HTTP/1.1 413"), answer);
                assertTrue(answer.contains("request_too_large"), answer);
                out.write("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n".getBytes(
                        java.nio.charset.StandardCharsets.US_ASCII));
                out.flush();
                String health = readAnswer(in);
                assertTrue(health.startsWith("HTTP/1.1 200"), health);
            }
        }
    }
}
