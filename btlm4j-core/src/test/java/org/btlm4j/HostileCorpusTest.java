package org.btlm4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every file of the hostile-checkpoint corpus ({@code src/test/resources/hostile}, made by
 * {@code tools/make_hostile_corpus.py}; {@code manifest.tsv} says what each case covers) loaded the
 * way a user loads a model, {@code BtlmModel.load} on a model directory: a refused file gives a
 * BtlmException whose one-line message names the problem; a file with NaN/Inf weights loads with
 * a warning naming the tensor; no payload runs (the sentinel file they would create never
 * appears); the load ends (a hang guard, not a speed test) and allocates a bounded amount of heap.
 */
class HostileCorpusTest {

    /** The file every hostile pickle tries to create (SENTINEL in the generator). */
    static final Path SENTINEL = Path.of("/tmp/btlm4j-hostile-sentinel");
    /** A hang guard: the slowest case takes well under a second. */
    private static final Duration HANG_GUARD = Duration.ofSeconds(60);
    /** Heap one load may allocate: the tiny model needs a few MB; a size taken from the file would need GBs. */
    private static final long MAX_ALLOCATED_BYTES = 256L << 20;

    record Case(String path, String expectation, List<String> words, String covers) {
        @Override
        public String toString() {
            return path + " (" + covers + ")";
        }
    }

    @TempDir
    Path tmp;

    static Path corpus() {
        try {
            return Path.of(HostileCorpusTest.class.getResource("/hostile/manifest.tsv").toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static List<Case> cases() {
        List<Case> cases = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(corpus().resolve("manifest.tsv"), StandardCharsets.UTF_8)) {
                if (line.startsWith("#") || line.isBlank()) {
                    continue;
                }
                String[] f = line.split("\t", -1);
                cases.add(new Case(f[0], f[1], f[2].isEmpty() ? List.of() : List.of(f[2].split("\\|")), f[3]));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return cases;
    }

    static Stream<Case> corpusCases() {
        return cases().stream();
    }

    /** The case as a model a user would have: a directory, or a lone GGUF file. */
    Path modelOf(Case c) throws IOException {
        Path source = corpus().resolve(c.path());
        if (Files.isDirectory(source)) {
            return source;
        }
        String name = source.getFileName().toString();
        if (name.endsWith(".gguf")) {
            return source;
        }
        Path dir = Files.createDirectories(tmp.resolve("model"));
        Files.copy(corpus().resolve("config.json"), dir.resolve("config.json"));
        Files.copy(source, dir.resolve(name.endsWith(".bin") ? "pytorch_model.bin" : "model.safetensors"));
        return dir;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("corpusCases")
    void loadsOrRefusesCleanly(Case c) throws IOException {
        Path model = modelOf(c);
        Files.deleteIfExists(SENTINEL);
        Outcome outcome = assertTimeoutPreemptively(HANG_GUARD, () -> load(model));
        assertFalse(Files.exists(SENTINEL), "a payload ran: " + SENTINEL + " was created");
        assertTrue(outcome.allocated < MAX_ALLOCATED_BYTES, "loading allocated " + outcome.allocated + " bytes");
        switch (c.expectation()) {
            case "refused" -> {
                assertNotNull(outcome.refusal, "loaded without complaint");
                HostileInput.checkMessage(outcome.refusal);
                assertContainsAll(outcome.refusal.getMessage(), c.words());
            }
            case "warns" -> {
                assertEquals(null, outcome.refusal, () -> "refused: " + outcome.refusal.getMessage());
                assertFalse(outcome.warnings.isEmpty(), "no warning");
                assertContainsAll(String.join("\n", outcome.warnings), c.words());
            }
            case "loads" -> {
                assertEquals(null, outcome.refusal, () -> "refused: " + outcome.refusal.getMessage());
                assertEquals(List.of(), outcome.warnings);
                assertTrue(outcome.scoredFinite, "the control model gives non-finite log-probabilities");
            }
            default -> throw new IllegalStateException("unknown expectation " + c.expectation());
        }
    }

    private record Outcome(BtlmException refusal, List<String> warnings, boolean scoredFinite, long allocated) {}

    private static Outcome load(Path model) {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long before = threads.getCurrentThreadAllocatedBytes();
        BtlmException refusal = null;
        List<String> warnings = List.of();
        boolean finite = false;
        try (BtlmModel m = BtlmModel.load(model, new BtlmModel.Options(1, 0))) {
            warnings = m.warnings();
            if (warnings.isEmpty()) {
                finite = allFiniteAfterFirst(m);
            }
        } catch (BtlmException e) {
            refusal = e;
        }
        return new Outcome(refusal, warnings, finite, threads.getCurrentThreadAllocatedBytes() - before);
    }

    /** Scores a few tokens; the first has no prediction, the others must have finite log-probabilities. */
    private static boolean allFiniteAfterFirst(BtlmModel m) {
        double[] lp = m.score(new int[] {1, 2, 3, 4}).tokenLogprobs();
        for (int i = 1; i < lp.length; i++) {
            if (!Double.isFinite(lp[i]) || lp[i] > 0) {
                return false;
            }
        }
        return true;
    }

    private static void assertContainsAll(String message, List<String> words) {
        for (String w : words) {
            assertTrue(message.toLowerCase(Locale.ROOT).contains(w.toLowerCase(Locale.ROOT)),
                    () -> "the message does not mention \"" + w + "\": " + message);
        }
    }

    @Test
    void corpusIsLargeAndCoversEveryFormat() {
        List<Case> cases = cases();
        assertTrue(cases.size() >= 200, cases.size() + " cases");
        for (String dir : List.of("safetensors/", "torch/", "gguf/", "sharded/", "config/")) {
            assertTrue(cases.stream().filter(c -> c.path().startsWith(dir) && c.expectation().equals("refused")).count()
                    >= 10, dir);
        }
        assertTrue(cases.stream().filter(c -> c.expectation().equals("warns")).count() >= 5);
    }
}
