package org.btlm4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The hostile-checkpoint corpus of btlm4j-core ({@code tools/make_hostile_corpus.py}) through the
 * command line, {@code btlm info -m MODEL}: a refused file exits with status 2 and one line
 * {@code error: ...} (no stack trace), a file with NaN/Inf weights exits 0 after {@code warning:}
 * lines, and no payload runs.
 */
class HostileCorpusCliTest {

    static final Path CORPUS = Path.of("..", "btlm4j-core", "src", "test", "resources", "hostile");
    static final Path SENTINEL = Path.of("/tmp/btlm4j-hostile-sentinel");

    @TempDir
    Path tmp;

    static Stream<String[]> cases() throws IOException {
        return Files.readAllLines(CORPUS.resolve("manifest.tsv"), StandardCharsets.UTF_8).stream()
                .filter(l -> !l.startsWith("#") && !l.isBlank())
                .map(l -> l.split("\t", -1));
    }

    Path modelOf(String rel) {
        Path source = CORPUS.resolve(rel);
        String name = source.getFileName().toString();
        if (Files.isDirectory(source) || name.endsWith(".gguf")) {
            return source;
        }
        try {
            Path dir = Files.createDirectories(tmp.resolve("model"));
            Files.copy(CORPUS.resolve("config.json"), dir.resolve("config.json"));
            Files.copy(source, dir.resolve(name.endsWith(".bin") ? "pytorch_model.bin" : "model.safetensors"));
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void infoRefusesWithOneLineOrWarns(String rel, String expectation, String words, String covers) throws IOException {
        Path model = modelOf(rel);
        Files.deleteIfExists(SENTINEL);
        CliTest.Run r = assertTimeoutPreemptively(Duration.ofSeconds(60),
                () -> CliTest.run("info", "-m", model.toString(), "-t", "1"));
        assertFalse(Files.exists(SENTINEL), "a payload ran");
        assertFalse(r.err().contains("\tat "), r.err());
        List<String> err = r.err().lines().toList();
        switch (expectation) {
            case "refused" -> {
                assertEquals(2, r.code(), covers + ": " + r.err());
                assertEquals(1, err.size(), r.err());
                assertTrue(err.getFirst().startsWith("error: ") && err.getFirst().length() > 20, r.err());
            }
            case "warns" -> {
                assertEquals(0, r.code(), r.err());
                assertFalse(err.isEmpty(), "no warning");
                assertTrue(err.stream().allMatch(l -> l.startsWith("warning: ")), r.err());
            }
            default -> {
                assertEquals(0, r.code(), r.err());
                assertEquals(List.of(), err);
            }
        }
    }
}
