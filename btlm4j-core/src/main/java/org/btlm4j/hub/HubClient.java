package org.btlm4j.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import org.btlm4j.BtlmException;

/**
 * Downloads models from the Hugging Face Hub (or a mirror at {@code $HF_ENDPOINT}) into a
 * {@link HubCache}, the way {@code huggingface_hub} does: the revision's commit and file list from
 * {@code /api/models/ID/revision/REV}, each file from {@code /ID/resolve/COMMIT/FILE}, stored once
 * under {@code blobs/ETAG} and linked from {@code snapshots/COMMIT/FILE}.
 *
 * <p>A file is first written to {@code blobs/ETAG.incomplete}; a broken connection is resumed with
 * a {@code Range} request, also by a later pull. The finished file is checked against its etag (the
 * SHA-256 of an LFS file, the git blob SHA-1 of a small one) before it becomes a blob, and the
 * snapshot is linked only when every file has arrived intact, so a failed pull leaves no partial
 * snapshot. Only the files a model needs are fetched: config, tokenizer and one weights format.
 */
public final class HubClient {
    /** The public Hub. */
    public static final String DEFAULT_ENDPOINT = "https://huggingface.co";

    /** Attempts per file before a broken download is given up (each resumes where the last stopped). */
    static final int ATTEMPTS = 4;

    private static final List<String> SMALL_FILES = List.of("config.json", "generation_config.json",
            "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json",
            "added_tokens.json");

    /** Receives the progress of a pull, in bytes. */
    public interface Listener {
        /** Before the first byte: how many bytes will be fetched and how many of them are already here. */
        void started(long totalBytes, long alreadyPresent);

        /** {@code bytes} more bytes have arrived. */
        void transferred(long bytes);

        /** A connection broke and the file is being resumed; {@code message} says which and why. */
        default void retrying(String message) {
        }

        /** Listens to nothing. */
        static Listener none() {
            return new Listener() {
                @Override
                public void started(long totalBytes, long alreadyPresent) {
                }

                @Override
                public void transferred(long bytes) {
                }
            };
        }
    }

    /**
     * What a pull produced.
     *
     * @param id              the model and the revision asked for
     * @param commit          the commit that revision resolved to
     * @param snapshot        {@code snapshots/COMMIT}, ready for {@code BtlmModel.load}
     * @param files           the files of the snapshot
     * @param downloadedBytes bytes fetched by this pull (0 when everything was cached)
     */
    public record Pulled(HubId id, String commit, Path snapshot, List<String> files, long downloadedBytes) {
    }

    private record RemoteFile(String name, String etag, long size) {
        boolean lfs() {
            return etag.length() == 64;
        }
    }

    private final URI endpoint;
    private final String token;
    private final HubCache cache;
    private final HttpClient noRedirects;
    private final HttpClient redirects;
    private final ObjectMapper json = new ObjectMapper();

    /**
     * @param endpoint the Hub's base URL, e.g. {@code https://huggingface.co}
     * @param token    a Hub access token sent as a bearer token, or null for none
     * @param cache    where to store the files
     */
    public HubClient(String endpoint, String token, HubCache cache) {
        String e = endpoint.endsWith("/") ? endpoint.substring(0, endpoint.length() - 1) : endpoint;
        try {
            this.endpoint = URI.create(e);
        } catch (IllegalArgumentException ex) {
            throw new BtlmException("Hub endpoint \"" + endpoint + "\" is not a URL");
        }
        if (this.endpoint.getScheme() == null || !this.endpoint.getScheme().startsWith("http")) {
            throw new BtlmException("Hub endpoint \"" + endpoint + "\" is not an http(s) URL");
        }
        this.token = token == null || token.isBlank() ? null : token.strip();
        this.cache = cache;
        this.noRedirects = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(30))
                .followRedirects(HttpClient.Redirect.NEVER).build();
        this.redirects = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(30))
                .followRedirects(HttpClient.Redirect.NORMAL).build();
    }

    /** A client for {@code $HF_ENDPOINT} (default the public Hub) with {@code $HF_TOKEN}. */
    public static HubClient fromEnvironment(HubCache cache) {
        Map<String, String> env = System.getenv();
        String endpoint = env.getOrDefault("HF_ENDPOINT", "");
        return new HubClient(endpoint.isBlank() ? DEFAULT_ENDPOINT : endpoint, env.get("HF_TOKEN"), cache);
    }

    /** The base URL files are fetched from. */
    public URI endpoint() {
        return endpoint;
    }

    /** Downloads what {@code id} needs into the cache (skipping what is there) and links its snapshot. */
    public Pulled pull(HubId id, Listener listener) {
        JsonNode info = getJson(apiUrl(id), id);
        String commit = info.path("sha").asText("");
        if (!commit.matches("[0-9a-f]{40}")) {
            throw new BtlmException(id + ": the Hub's answer names no commit (field sha)");
        }
        List<String> siblings = new ArrayList<>();
        for (JsonNode s : info.path("siblings")) {
            siblings.add(s.path("rfilename").asText());
        }
        List<String> names = neededFiles(siblings);
        if (names.stream().noneMatch(HubClient::isWeights)) {
            throw new BtlmException(id + " has no weights btlm4j reads (model.safetensors, pytorch_model.bin, "
                    + "their sharded indexes, or .gguf); its files: " + siblings);
        }
        List<RemoteFile> files = new ArrayList<>();
        for (String name : names) {
            files.add(describe(id, commit, name));
        }
        Path repo = cache.repoDir(id);
        Path blobs = repo.resolve("blobs");
        long total = 0;
        long present = 0;
        List<RemoteFile> missing = new ArrayList<>();
        for (RemoteFile f : files) {
            if (!Files.isRegularFile(blobs.resolve(f.etag()))) {
                missing.add(f);
                total += f.size();
                present += sizeOrZero(blobs.resolve(f.etag() + ".incomplete"));
            }
        }
        listener.started(total, present);
        long downloaded = 0;
        try {
            Files.createDirectories(blobs);
            for (RemoteFile f : missing) {
                downloaded += download(id, commit, f, blobs, listener);
            }
            Path snapshot = repo.resolve("snapshots").resolve(commit);
            for (RemoteFile f : files) {
                link(snapshot, f.name(), blobs.resolve(f.etag()));
            }
            if (!id.revision().equals(commit)) {
                Path ref = repo.resolve("refs").resolve(id.revision());
                Files.createDirectories(ref.getParent());
                Files.writeString(ref, commit, StandardCharsets.UTF_8);
            }
            return new Pulled(id, commit, snapshot, names, downloaded);
        } catch (IOException e) {
            throw new UncheckedIOException(repo + ": cannot write to the Hugging Face cache: " + e.getMessage(), e);
        }
    }

    /**
     * The files a model needs among a repository's files: config and tokenizer files, and one
     * weights format (safetensors, else PyTorch .bin, else GGUF), single or sharded.
     */
    public static List<String> neededFiles(List<String> repoFiles) {
        List<String> out = new ArrayList<>();
        for (String f : repoFiles) {
            if (SMALL_FILES.contains(f)) {
                out.add(f);
            }
        }
        List<List<String>> formats = List.of(
                repoFiles.stream().filter(f -> f.equals("model.safetensors") || f.equals("model.safetensors.index.json")
                        || (f.endsWith(".safetensors") && f.startsWith("model-") && f.contains("-of-"))).toList(),
                repoFiles.stream().filter(f -> f.equals("pytorch_model.bin") || f.equals("pytorch_model.bin.index.json")
                        || (f.endsWith(".bin") && f.startsWith("pytorch_model-") && f.contains("-of-"))).toList(),
                repoFiles.stream().filter(f -> f.endsWith(".gguf")).toList());
        for (List<String> weights : formats) {
            if (!weights.isEmpty()) {
                out.addAll(weights);
                break;
            }
        }
        return out;
    }

    private static boolean isWeights(String name) {
        return !SMALL_FILES.contains(name);
    }

    private String apiUrl(HubId id) {
        return endpoint + "/api/models/" + id.repo() + "/revision/" + encode(id.revision());
    }

    private String fileUrl(HubId id, String commit, String name) {
        StringBuilder sb = new StringBuilder(endpoint + "/" + id.repo() + "/resolve/" + commit);
        for (String segment : name.split("/")) {
            sb.append('/').append(encode(segment));
        }
        return sb.toString();
    }

    private static String encode(String segment) {
        return java.net.URLEncoder.encode(segment, StandardCharsets.UTF_8).replace("+", "%20");
    }

    private HttpRequest.Builder request(String url) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).header("User-Agent", "btlm4j");
        if (token != null) {
            b.header("Authorization", "Bearer " + token);
        }
        return b;
    }

    private JsonNode getJson(String url, HubId id) {
        HttpResponse<byte[]> r = send(noRedirects, request(url).timeout(Duration.ofMinutes(1)).GET().build(),
                HttpResponse.BodyHandlers.ofByteArray(), id);
        check(r.statusCode(), id, url);
        try {
            return json.readTree(r.body());
        } catch (IOException e) {
            throw new BtlmException(url + ": the Hub's answer is not JSON");
        }
    }

    /** The etag and size of one file, from the headers of a HEAD on its resolve URL (not following a redirect). */
    private RemoteFile describe(HubId id, String commit, String name) {
        String url = fileUrl(id, commit, name);
        HttpResponse<Void> r = send(noRedirects, request(url).timeout(Duration.ofMinutes(1))
                .method("HEAD", HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.discarding(), id);
        if (r.statusCode() / 100 != 3) {
            check(r.statusCode(), id, url);
        }
        HttpHeaders h = r.headers();
        Optional<String> repoCommit = h.firstValue("X-Repo-Commit");
        if (repoCommit.isPresent() && !repoCommit.get().equals(commit)) {
            throw new BtlmException(id + ": " + name + " comes from commit " + repoCommit.get() + ", not " + commit
                    + " (the repository changed during the pull; run it again)");
        }
        String etag = h.firstValue("X-Linked-Etag").or(() -> h.firstValue("ETag")).map(HubClient::unquote)
                .orElseThrow(() -> new BtlmException(url + ": the Hub sent no ETag for " + name));
        if (!etag.matches("[0-9a-f]{40}|[0-9a-f]{64}")) {
            throw new BtlmException(url + ": unexpected ETag \"" + etag + "\" for " + name);
        }
        long size = h.firstValueAsLong("X-Linked-Size").orElse(h.firstValueAsLong("Content-Length").orElse(-1));
        if (size < 0) {
            throw new BtlmException(url + ": the Hub sent no size for " + name);
        }
        return new RemoteFile(name, etag, size);
    }

    private static String unquote(String etag) {
        String e = etag.strip();
        if (e.startsWith("W/")) {
            e = e.substring(2);
        }
        return e.replace("\"", "").toLowerCase(Locale.ROOT);
    }

    /** Fetches one file into {@code blobs/ETAG}, resuming a partial one; returns the bytes fetched. */
    private long download(HubId id, String commit, RemoteFile f, Path blobs, Listener listener) throws IOException {
        Path part = blobs.resolve(f.etag() + ".incomplete");
        String url = fileUrl(id, commit, f.name());
        long fetched = 0;
        for (int attempt = 1; ; attempt++) {
            long have = sizeOrZero(part);
            if (have > f.size()) {
                Files.delete(part); // not this file: start again
                listener.transferred(-have);
                have = 0;
            }
            try {
                if (have < f.size()) {
                    fetched += fetch(id, url, f, part, have, listener);
                } else if (!Files.exists(part)) {
                    Files.createFile(part); // an empty file
                }
                break;
            } catch (IOException e) {
                if (attempt == ATTEMPTS) {
                    throw new BtlmException(f.name() + ": the download broke off " + ATTEMPTS + " times (" + e.getMessage()
                            + "); run the pull again to resume it");
                }
                listener.retrying(f.name() + ": connection lost (" + e.getMessage() + "), resuming at byte "
                        + sizeOrZero(part));
            }
        }
        verify(f, part);
        Files.move(part, blobs.resolve(f.etag()), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        return fetched;
    }

    private long fetch(HubId id, String url, RemoteFile f, Path part, long have, Listener listener) throws IOException {
        HttpRequest.Builder b = request(url).GET();
        if (have > 0) {
            b.header("Range", "bytes=" + have + "-");
        }
        HttpResponse<InputStream> r;
        try {
            r = redirects.send(b.build(), HttpResponse.BodyHandlers.ofInputStream());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BtlmException("interrupted while downloading " + f.name());
        }
        try (InputStream in = r.body()) {
            boolean append;
            if (r.statusCode() == 206 && have > 0) {
                append = true;
            } else if (r.statusCode() == 200) {
                append = false; // the server ignored the range: take the whole file again
                listener.transferred(-have);
            } else {
                check(r.statusCode(), id, url);
                throw new BtlmException(url + ": unexpected HTTP status " + r.statusCode());
            }
            long written = 0;
            try (FileChannel out = FileChannel.open(part, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
                byte[] buf = new byte[1 << 16];
                int n;
                while ((n = in.read(buf)) > 0) {
                    out.write(ByteBuffer.wrap(buf, 0, n));
                    written += n;
                    listener.transferred(n);
                }
            }
            return written;
        }
    }

    /** Checks the finished file against its size and etag; a corrupt file is deleted. */
    private static void verify(RemoteFile f, Path part) throws IOException {
        long size = Files.size(part);
        String actual = size == f.size() ? digest(f, part) : null;
        if (actual == null || !actual.equals(f.etag())) {
            Files.deleteIfExists(part);
            throw new BtlmException(f.name() + ": the downloaded file is corrupt (" + (actual == null
                    ? size + " bytes instead of " + f.size()
                    : (f.lfs() ? "SHA-256 " : "git blob SHA-1 ") + actual + " instead of the Hub's " + f.etag())
                    + "); it was deleted, run the pull again");
        }
    }

    /** SHA-256 of the content for an LFS file; for a small file, git's blob SHA-1 (of "blob SIZE\0" + content). */
    private static String digest(RemoteFile f, Path file) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance(f.lfs() ? "SHA-256" : "SHA-1");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        if (!f.lfs()) {
            md.update(("blob " + f.size() + "\0").getBytes(StandardCharsets.US_ASCII));
        }
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = in.read(buf)) > 0) {
                md.update(buf, 0, n);
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    /** {@code snapshot/name} → the blob, as a relative symbolic link (a copy where links are not allowed). */
    private static void link(Path snapshot, String name, Path blob) throws IOException {
        Path target = snapshot.resolve(name);
        Files.createDirectories(target.getParent());
        if (Files.isSymbolicLink(target) || Files.exists(target)) {
            Files.delete(target);
        }
        try {
            Files.createSymbolicLink(target, target.getParent().relativize(blob));
        } catch (UnsupportedOperationException | IOException e) {
            Files.copy(blob, target);
        }
    }

    private static long sizeOrZero(Path p) {
        try {
            return Files.isRegularFile(p) ? Files.size(p) : 0;
        } catch (IOException e) {
            return 0;
        }
    }

    private <T> HttpResponse<T> send(HttpClient client, HttpRequest request, HttpResponse.BodyHandler<T> handler,
            HubId id) {
        try {
            return client.send(request, handler);
        } catch (IOException e) {
            throw new BtlmException("cannot reach the Hub at " + endpoint + " for " + id + ": " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BtlmException("interrupted while asking the Hub about " + id);
        }
    }

    private void check(int status, HubId id, String url) {
        if (status / 100 == 2) {
            return;
        }
        String why = switch (status) {
            case 401, 403 -> token == null
                    ? "access denied: the model is gated or private; set HF_TOKEN to a token that may read it"
                    : "access denied with the token in HF_TOKEN (is access to this model granted?)";
            case 404 -> "not found at " + endpoint + " (check the model id and the revision " + id.revision() + ")";
            default -> "HTTP " + status;
        };
        throw new BtlmException(id + ": " + why + " [" + url + "]");
    }
}
