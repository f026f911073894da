package org.btlm4j.hub;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import org.btlm4j.Fixtures;
import org.btlm4j.GenerationParams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Finding models in the Hugging Face cache layout that the Python tools write. */
class HubCacheTest {
    private static final String COMMIT = "0123456789abcdef0123456789abcdef01234567";

    @Test
    void parsesHubIds() {
        assertEquals(new HubId("cerebras/btlm-3b-8k-base", "main"), HubId.parse("cerebras/btlm-3b-8k-base"));
        HubId pinned = HubId.parse("cerebras/btlm-3b-8k-base@v1.0");
        assertEquals("cerebras", pinned.org());
        assertEquals("btlm-3b-8k-base", pinned.name());
        assertEquals("v1.0", pinned.revision());
        assertTrue(HubId.parse("a/b@" + COMMIT).isCommit());
        assertFalse(HubId.looksLike("just-a-name"));
        assertFalse(HubId.looksLike("/abs/path"));
        assertFalse(HubId.looksLike("a/b/c"));
        assertFalse(HubId.looksLike("../x"));
        BtlmException e = assertThrows(BtlmException.class, () -> HubId.parse("nope"));
        assertTrue(e.getMessage().contains("not a Hub model id"), e.getMessage());
    }

    @Test
    void rootFollowsTheEnvironmentLikeHuggingfaceHub(@TempDir Path home) {
        assertEquals(Path.of("/x/hub-cache"),
                HubCache.fromEnvironment(Map.of("HF_HUB_CACHE", "/x/hub-cache", "HF_HOME", "/y"), home).root());
        assertEquals(Path.of("/y", "hub"), HubCache.fromEnvironment(Map.of("HF_HOME", "/y"), home).root());
        assertEquals(home.resolve(".cache/huggingface/hub"), HubCache.fromEnvironment(Map.of(), home).root());
    }

    /** The layout huggingface_hub writes: refs/main → commit, snapshot files linking to blobs. */
    static Path pythonStyleCache(Path root, String org, String name, String ref) throws IOException {
        Path repo = root.resolve("models--" + org + "--" + name);
        Path blobs = Files.createDirectories(repo.resolve("blobs"));
        Path snapshot = Files.createDirectories(repo.resolve("snapshots").resolve(COMMIT));
        for (String f : List.of("config.json", "model.safetensors", "vocab.json", "merges.txt")) {
            Path blob = blobs.resolve("blob-" + f.hashCode());
            Files.copy(Fixtures.demo().resolve(f), blob);
            Files.createSymbolicLink(snapshot.resolve(f), snapshot.relativize(blob));
        }
        Files.createDirectories(repo.resolve("refs"));
        Files.writeString(repo.resolve("refs").resolve(ref), COMMIT);
        return snapshot;
    }

    @Test
    void resolvesAnIdToTheSnapshotItsRefNames(@TempDir Path root) throws IOException {
        Path snapshot = pythonStyleCache(root, "acme", "demo", "main");
        HubCache cache = new HubCache(root);
        assertEquals(snapshot, cache.resolve("acme/demo"));
        assertEquals(snapshot, cache.resolve("acme/demo@main"));
        assertEquals(snapshot, cache.resolve("acme/demo@" + COMMIT));
        // A model from the cache generates what the same files generate from their own directory.
        GenerationParams p = GenerationParams.defaults().withMaxNewTokens(12);
        try (BtlmModel fromCache = BtlmModel.load(cache.resolve("acme/demo"));
                BtlmModel direct = BtlmModel.load(Fixtures.demo())) {
            assertArrayEquals(direct.generate("And God said", p).tokenIds(),
                    fromCache.generate("And God said", p).tokenIds());
        }
    }

    @Test
    void anExistingPathWinsOverAHubId(@TempDir Path root) {
        Path demo = Fixtures.demo();
        assertEquals(demo, new HubCache(root).resolve(demo.toString()));
    }

    @Test
    void missingModelsAndRevisionsNameWhatWasLookedFor(@TempDir Path root) throws IOException {
        HubCache cache = new HubCache(root);
        BtlmException e = assertThrows(BtlmException.class, () -> cache.resolve("acme/absent"));
        assertTrue(e.getMessage().contains(root.resolve("models--acme--absent").toString()), e.getMessage());
        assertTrue(e.getMessage().contains("btlm pull acme/absent"), e.getMessage());

        pythonStyleCache(root, "acme", "demo", "main");
        e = assertThrows(BtlmException.class, () -> cache.resolve("acme/demo@v2"));
        assertTrue(e.getMessage().contains("revision v2"), e.getMessage());
        assertTrue(e.getMessage().contains(Path.of("refs", "v2").toString()), e.getMessage());

        e = assertThrows(BtlmException.class, () -> cache.resolve("no-such-dir"));
        assertTrue(e.getMessage().contains("no-such-dir: no such file or directory"), e.getMessage());
    }

    @Test
    void listsCachedSnapshotsWithRefsSizesAndFormats(@TempDir Path root) throws IOException {
        pythonStyleCache(root, "acme", "demo", "main");
        List<HubCache.Entry> entries = new HubCache(root).list();
        assertEquals(1, entries.size());
        HubCache.Entry e = entries.get(0);
        assertEquals("acme/demo", e.repo());
        assertEquals("main", e.revision());
        assertEquals(COMMIT, e.commit());
        assertEquals(List.of("safetensors"), e.formats());
        long expected = 0;
        for (String f : List.of("config.json", "model.safetensors", "vocab.json", "merges.txt")) {
            expected += Files.size(Fixtures.demo().resolve(f));
        }
        assertEquals(expected, e.bytes());
        assertTrue(new HubCache(root.resolve("absent")).list().isEmpty());
    }

    @Test
    void picksTheFilesAModelNeeds() {
        List<String> repo = List.of(".gitattributes", "README.md", "config.json", "configuration_btlm.py",
                "model.safetensors", "pytorch_model.bin", "tokenizer.json", "vocab.json", "merges.txt",
                "generation_config.json", "figure.png");
        assertEquals(List.of("config.json", "tokenizer.json", "vocab.json", "merges.txt", "generation_config.json",
                "model.safetensors"), HubClient.neededFiles(repo));
        assertEquals(List.of("config.json", "pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin",
                        "pytorch_model-00002-of-00002.bin"),
                HubClient.neededFiles(List.of("config.json", "pytorch_model.bin.index.json",
                        "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin")));
        assertEquals(List.of("m-q8_0.gguf"), HubClient.neededFiles(List.of("m-q8_0.gguf", "README.md")));
    }
}
