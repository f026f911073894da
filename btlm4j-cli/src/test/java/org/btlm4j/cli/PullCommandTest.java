package org.btlm4j.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code btlm pull} and {@code btlm list} against a fake Hub, and {@code -m ORG/NAME} on what was pulled. */
class PullCommandTest {
    /** The Hub cache of these tests (HF_HUB_CACHE, set for the test JVM by the build). */
    private static final Path ENV_CACHE = Path.of(System.getenv("HF_HUB_CACHE"));
    private static final Set<String> NEEDED = Set.of("config.json", "generation_config.json", "model.safetensors",
            "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json");

    private FakeHub hub;

    @BeforeEach
    void start() throws IOException {
        hub = new FakeHub(CliTest.DEMO, System.getenv("HF_TOKEN"));
    }

    @AfterEach
    void stop() {
        hub.close();
    }

    private CliTest.Run pull(String id, String... more) {
        String[] args = Stream.concat(Stream.of("pull", id, "--endpoint", hub.endpoint()), Arrays.stream(more))
                .toArray(String[]::new);
        return CliTest.run(args);
    }

    private static Set<String> names(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).collect(Collectors.toSet());
        }
    }

    @Test
    void pullsTheNeededFilesIntoTheHubLayoutThenGeneratesListsAndSkipsWhatIsCached() throws IOException {
        Path repo = ENV_CACHE.resolve("models--acme--btlm-demo");
        FakeHub.deleteTree(repo);
        CliTest.Run r = pull("acme/btlm-demo");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("commit " + FakeHub.COMMIT), r.out());

        Path snapshot = repo.resolve("snapshots").resolve(FakeHub.COMMIT);
        assertEquals(NEEDED, names(snapshot), "README.md and expected.* are not needed");
        assertEquals(FakeHub.COMMIT, Files.readString(repo.resolve("refs/main")));
        for (String f : NEEDED) {
            Path link = snapshot.resolve(f);
            assertTrue(Files.isSymbolicLink(link), f);
            assertEquals(Path.of("..", "..", "blobs", hub.etag(f)), Files.readSymbolicLink(link));
            assertArrayEquals(Files.readAllBytes(CliTest.DEMO.resolve(f)), Files.readAllBytes(link), f);
        }
        assertEquals(64, hub.etag("model.safetensors").length(), "weights are an LFS file");
        assertTrue(hub.requests.stream().noneMatch(q -> q.contains("README.md") || q.contains("expected")));
        assertTrue(r.err().contains("pulling acme/btlm-demo ["), "a progress bar: " + r.err());

        // The pulled model by its Hub id generates what the model directory generates.
        String[] gen = {"generate", "--token-ids", "464,1578,531", "-n", "12", "--ignore-eos", "--json", "-m"};
        CliTest.Run byId = CliTest.run(concat(gen, "acme/btlm-demo"));
        CliTest.Run byDir = CliTest.run(concat(gen, CliTest.DEMO.toString()));
        assertEquals(0, byId.code(), byId.err());
        JsonNode a = CliTest.JSON.readTree(byId.out());
        assertEquals(CliTest.JSON.readTree(byDir.out()).get("token_ids"), a.get("token_ids"));
        assertEquals(12, a.get("token_ids").size());
        CliTest.Run pinned = CliTest.run(concat(gen, "acme/btlm-demo@" + FakeHub.COMMIT));
        assertEquals(byId.out(), pinned.out());

        CliTest.Run list = CliTest.run("list");
        assertEquals(0, list.code(), list.err());
        String row = list.out().lines().filter(l -> l.startsWith("acme/btlm-demo ")).findFirst().orElseThrow();
        assertTrue(row.matches("acme/btlm-demo +main +" + FakeHub.COMMIT.substring(0, 10) + " +[0-9.]+ MiB +safetensors"),
                row);
        JsonNode listed = CliTest.JSON.readTree(CliTest.run("list", "--json").out());
        long expectedBytes = 0;
        for (String f : NEEDED) {
            expectedBytes += Files.size(CliTest.DEMO.resolve(f));
        }
        boolean found = false;
        for (JsonNode m : listed.get("models")) {
            if (m.get("id").asText().equals("acme/btlm-demo")) {
                found = true;
                assertEquals(expectedBytes, m.get("bytes").asLong());
            }
        }
        assertTrue(found, listed.toString());

        // A second pull finds every blob in place and downloads nothing.
        hub.requests.clear();
        CliTest.Run again = pull("acme/btlm-demo");
        assertEquals(0, again.code(), again.err());
        assertTrue(again.out().contains("0 B downloaded"), again.out());
        assertTrue(hub.requests.stream().noneMatch(q -> q.startsWith("GET /acme/") || q.startsWith("GET /cdn/")),
                hub.requests.toString());
    }

    private static String[] concat(String[] a, String b) {
        String[] out = Arrays.copyOf(a, a.length + 1);
        out[a.length] = b;
        return out;
    }

    @Test
    void aDownloadCutOffMidFileResumesWithARangeRequest(@TempDir Path cache) throws IOException {
        hub.cutOnce.add("model.safetensors");
        CliTest.Run r = pull("acme/cut", "--cache-dir", cache.toString());
        assertEquals(0, r.code(), r.err());
        String sha = hub.etag("model.safetensors");
        List<String> cdn = hub.requests.stream().filter(q -> q.startsWith("GET /cdn/" + sha)).toList();
        assertEquals(2, cdn.size(), cdn.toString());
        // The second request asks for the rest from where the first one broke off: the bytes that
        // arrived before the cut (at most the half the server sent, and some of it, since it flushed).
        long half = Files.size(CliTest.DEMO.resolve("model.safetensors")) / 2;
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("GET /cdn/" + sha + " bytes=(\\d+)-")
                .matcher(cdn.get(1));
        assertTrue(m.matches(), cdn.get(1));
        long resumedAt = Long.parseLong(m.group(1));
        assertTrue(resumedAt > 0 && resumedAt <= half, resumedAt + " of " + half);
        assertTrue(r.err().contains("resuming at byte " + resumedAt), r.err());
        Path pulled = cache.resolve("models--acme--cut/snapshots").resolve(FakeHub.COMMIT).resolve("model.safetensors");
        assertArrayEquals(Files.readAllBytes(CliTest.DEMO.resolve("model.safetensors")), Files.readAllBytes(pulled));
    }

    @Test
    void aPartialFileLeftByAnEarlierPullIsResumed(@TempDir Path cache) throws IOException {
        String sha = hub.etag("model.safetensors");
        byte[] all = Files.readAllBytes(CliTest.DEMO.resolve("model.safetensors"));
        Path blobs = Files.createDirectories(cache.resolve("models--acme--partial/blobs"));
        Files.write(blobs.resolve(sha + ".incomplete"), Arrays.copyOf(all, 1000));
        CliTest.Run r = pull("acme/partial", "--cache-dir", cache.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(hub.requests.contains("GET /cdn/" + sha + " bytes=1000-"), hub.requests.toString());
        assertArrayEquals(all, Files.readAllBytes(blobs.resolve(sha)));
        assertFalse(Files.exists(blobs.resolve(sha + ".incomplete")));
    }

    @Test
    void aCorruptDownloadIsRejectedAndLeavesNoSnapshot(@TempDir Path cache) throws IOException {
        hub.corrupt.add("model.safetensors");
        CliTest.Run r = pull("acme/bad", "--cache-dir", cache.toString());
        assertEquals(2, r.code());
        String sha = hub.etag("model.safetensors");
        assertTrue(r.err().contains("model.safetensors: the downloaded file is corrupt (SHA-256 "), r.err());
        assertTrue(r.err().contains("instead of the Hub's " + sha), r.err());
        assertEquals(1, r.err().lines().filter(l -> l.startsWith("error:")).count(), "one line: " + r.err());
        Path repo = cache.resolve("models--acme--bad");
        assertFalse(Files.exists(repo.resolve("snapshots")), "no snapshot of a failed pull");
        assertFalse(Files.exists(repo.resolve("blobs").resolve(sha)));
        assertFalse(Files.exists(repo.resolve("blobs").resolve(sha + ".incomplete")));

        // Served intact, the next pull succeeds.
        hub.corrupt.clear();
        assertEquals(0, pull("acme/bad", "--cache-dir", cache.toString()).code());
        assertTrue(Files.isRegularFile(repo.resolve("snapshots").resolve(FakeHub.COMMIT).resolve("model.safetensors")));
    }

    @Test
    void refusalsAndUnknownModelsAreOneLineErrors(@TempDir Path cache) {
        CliTest.Run wrongToken = pull("acme/x", "--cache-dir", cache.toString(), "--token", "not-the-token");
        assertEquals(2, wrongToken.code());
        assertTrue(wrongToken.err().contains("access denied with the token"), wrongToken.err());

        CliTest.Run badRevision = pull("acme/x@v9", "--cache-dir", cache.toString());
        assertEquals(2, badRevision.code());
        assertTrue(badRevision.err().contains("acme/x@v9: not found at " + hub.endpoint()), badRevision.err());

        CliTest.Run notAnId = pull("nope", "--cache-dir", cache.toString());
        assertEquals(2, notAnId.code());
        assertTrue(notAnId.err().contains("\"nope\" is not a Hub model id"), notAnId.err());

        CliTest.Run noHub = CliTest.run("pull", "acme/x", "--cache-dir", cache.toString());
        assertEquals(2, noHub.code(), "HF_ENDPOINT points at a closed port");
        assertTrue(noHub.err().contains("cannot reach the Hub at http://127.0.0.1:9"), noHub.err());
    }

    @Test
    void aModelNotInTheCacheIsAClearError() {
        CliTest.Run r = CliTest.run("generate", "-m", "acme/never-pulled", "-p", "x");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("acme/never-pulled: no such file or directory, and acme/never-pulled is not in "
                + "the Hugging Face cache (looked for " + ENV_CACHE.resolve("models--acme--never-pulled") + ")"), r.err());
        assertTrue(r.err().contains("btlm pull acme/never-pulled"), r.err());
    }
}
