package org.btlm4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.btlm4j.BtlmModel;

/** A real server on a free loopback port with the demo model, and a raw HTTP client for it. */
final class ServerFixture implements AutoCloseable {
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newHttpClient();

    final OpenAiServer server;
    final String base;

    ServerFixture(ServerOptions options) {
        this(options, () -> BtlmModel.load(demo(), new BtlmModel.Options(2, 0)));
    }

    ServerFixture(ServerOptions options, java.util.function.Supplier<BtlmModel> load) {
        server = OpenAiServer.start(options.withPort(0), load);
        base = "http://127.0.0.1:" + server.port();
        try {
            server.awaitReady();
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }

    static Path demo() {
        Path p = Path.of("..", "models", "btlm-demo");
        return Files.isDirectory(p) ? p : Path.of("models", "btlm-demo");
    }

    record Reply(int status, String body, HttpResponse<String> response) {
        JsonNode json() {
            try {
                return JSON.readTree(body);
            } catch (IOException e) {
                throw new UncheckedIOException("not JSON: " + body, e);
            }
        }
    }

    Reply post(String path, String body, String... headers) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
        for (int i = 0; i < headers.length; i += 2) {
            b.header(headers[i], headers[i + 1]);
        }
        return send(b.build());
    }

    Reply get(String path, String... headers) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).GET();
        for (int i = 0; i < headers.length; i += 2) {
            b.header(headers[i], headers[i + 1]);
        }
        return send(b.build());
    }

    static Reply send(HttpRequest r) {
        try {
            HttpResponse<String> res = HTTP.send(r, HttpResponse.BodyHandlers.ofString());
            return new Reply(res.statusCode(), res.body(), res);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The JSON objects of an SSE body, up to (and checking for) {@code data: [DONE]}. */
    static List<JsonNode> events(String sse) {
        List<JsonNode> out = new ArrayList<>();
        boolean done = false;
        for (String line : sse.split("\n")) {
            if (!line.startsWith("data: ")) {
                continue;
            }
            String data = line.substring(6);
            if (data.equals("[DONE]")) {
                done = true;
                continue;
            }
            try {
                out.add(JSON.readTree(data));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        if (!done) {
            throw new AssertionError("the stream did not end with data: [DONE]: " + sse);
        }
        return out;
    }

    @Override
    public void close() {
        server.stop(2000);
    }
}
