package org.btlm4j.cli;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * An in-process stand-in for the Hugging Face Hub, serving the files of one model directory as
 * every repository {@code acme/*} at one commit, with the Hub's URL scheme and headers: the
 * revision API, {@code resolve} URLs answering small files directly (git blob SHA-1 ETag) and
 * redirecting large "LFS" files to a CDN path ({@code X-Linked-Etag} = SHA-256,
 * {@code X-Linked-Size}), {@code Range} requests, and a bearer token check. It can break a
 * connection in the middle of a file once, or serve a corrupted copy of a file.
 */
final class FakeHub implements AutoCloseable {
    static final String COMMIT = "5f2c8a3e9b1d4c6f7a8e9d0c1b2a3f4e5d6c7b8a";
    /** Files over this size are served as LFS files, as the Hub does with weights. */
    private static final long LFS_MIN = 100_000;

    private record Served(String name, byte[] bytes, String etag, boolean lfs) {
    }

    private final HttpServer server;
    private final String token;
    private final Map<String, Served> files = new LinkedHashMap<>();
    private final Map<String, Served> bySha = new LinkedHashMap<>();
    /** Files whose next download is cut off half way (once each). */
    final Set<String> cutOnce = ConcurrentHashMap.newKeySet();
    /** Files served with one byte changed. */
    final Set<String> corrupt = ConcurrentHashMap.newKeySet();
    /** "METHOD path [Range]" of every request, in order. */
    final List<String> requests = new CopyOnWriteArrayList<>();

    FakeHub(Path modelDir, String token) throws IOException {
        this.token = token;
        try (var list = Files.list(modelDir)) {
            for (Path f : list.sorted().toList()) {
                byte[] bytes = Files.readAllBytes(f);
                boolean lfs = bytes.length > LFS_MIN;
                String etag = lfs ? hex("SHA-256", new byte[0], bytes)
                        : hex("SHA-1", ("blob " + bytes.length + "\0").getBytes(StandardCharsets.US_ASCII), bytes);
                Served s = new Served(f.getFileName().toString(), bytes, etag, lfs);
                files.put(s.name(), s);
                bySha.put(etag, s);
            }
        }
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", this::handle);
        server.start();
    }

    String endpoint() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    /** The Hub's ETag of a served file: SHA-256 for LFS files, else the git blob SHA-1. */
    String etag(String name) {
        return files.get(name).etag();
    }

    private static String hex(String algorithm, byte[] prefix, byte[] bytes) {
        try {
            MessageDigest md = MessageDigest.getInstance(algorithm);
            md.update(prefix);
            return HexFormat.of().formatHex(md.digest(bytes));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private void handle(HttpExchange ex) throws IOException {
        String path = ex.getRequestURI().getRawPath();
        String range = ex.getRequestHeaders().getFirst("Range");
        requests.add(ex.getRequestMethod() + " " + path + (range == null ? "" : " " + range));
        try (ex) {
            if (path.startsWith("/cdn/")) { // the CDN of LFS files: presigned, no token
                Served s = bySha.get(path.substring(5));
                if (s == null) {
                    send(ex, 404, "{\"error\":\"not found\"}");
                } else {
                    sendFile(ex, s, range);
                }
                return;
            }
            if (!("Bearer " + token).equals(ex.getRequestHeaders().getFirst("Authorization"))) {
                send(ex, 401, "{\"error\":\"Invalid credentials in Authorization header\"}");
                return;
            }
            String[] p = path.split("/");
            // /api/models/acme/NAME/revision/REV
            if (p.length == 7 && p[1].equals("api") && p[2].equals("models") && p[3].equals("acme")
                    && p[5].equals("revision")) {
                if (!p[6].equals("main") && !p[6].equals(COMMIT)) {
                    send(ex, 404, "{\"error\":\"Invalid rev id: " + p[6] + "\"}");
                    return;
                }
                StringBuilder json = new StringBuilder("{\"id\":\"acme/" + p[4] + "\",\"sha\":\"" + COMMIT
                        + "\",\"siblings\":[");
                List<String> names = new ArrayList<>(files.keySet());
                for (int i = 0; i < names.size(); i++) {
                    json.append(i == 0 ? "" : ",").append("{\"rfilename\":\"").append(names.get(i)).append("\"}");
                }
                send(ex, 200, json.append("]}").toString());
                return;
            }
            // /acme/NAME/resolve/REV/FILE
            if (p.length == 6 && p[1].equals("acme") && p[3].equals("resolve") && files.containsKey(p[5])
                    && (p[4].equals("main") || p[4].equals(COMMIT))) {
                Served s = files.get(p[5]);
                ex.getResponseHeaders().set("X-Repo-Commit", COMMIT);
                if (s.lfs()) {
                    ex.getResponseHeaders().set("X-Linked-Etag", "\"" + s.etag() + "\"");
                    ex.getResponseHeaders().set("X-Linked-Size", String.valueOf(s.bytes().length));
                    ex.getResponseHeaders().set("Location", "/cdn/" + s.etag());
                    ex.sendResponseHeaders(302, -1);
                    return;
                }
                sendFile(ex, s, range);
                return;
            }
            send(ex, 404, "{\"error\":\"Repository not found\"}");
        }
    }

    private void sendFile(HttpExchange ex, Served s, String range) throws IOException {
        byte[] bytes = s.bytes();
        if (corrupt.contains(s.name())) {
            bytes = bytes.clone();
            bytes[bytes.length / 2] ^= 1;
        }
        if (!s.lfs()) {
            ex.getResponseHeaders().set("ETag", "\"" + s.etag() + "\"");
        }
        ex.getResponseHeaders().set("Accept-Ranges", "bytes");
        if (ex.getRequestMethod().equals("HEAD")) {
            ex.getResponseHeaders().set("Content-Length", String.valueOf(bytes.length));
            ex.sendResponseHeaders(200, -1);
            return;
        }
        int from = 0;
        int status = 200;
        if (range != null && range.startsWith("bytes=") && range.endsWith("-")) {
            from = Integer.parseInt(range.substring(6, range.length() - 1));
            status = 206;
            ex.getResponseHeaders().set("Content-Range", "bytes " + from + "-" + (bytes.length - 1) + "/" + bytes.length);
        }
        int length = bytes.length - from;
        ex.sendResponseHeaders(status, length);
        OutputStream out = ex.getResponseBody();
        if (cutOnce.remove(s.name())) {
            out.write(bytes, from, length / 2);
            out.flush();
            throw new IOException("connection cut on purpose"); // closes the connection mid-body
        }
        out.write(bytes, from, length);
    }

    private static void send(HttpExchange ex, int status, String json) throws IOException {
        byte[] b = json.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, b.length);
        ex.getResponseBody().write(b);
    }

    @Override
    public void close() {
        server.stop(0);
    }

    static void deleteTree(Path root) {
        if (!Files.exists(root, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (var walk = Files.walk(root)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
