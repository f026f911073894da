package org.btlm4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The CLI's contract: output forms, exit codes and error messages. */
class CliTest {
    static final Path TINY = Path.of("..", "btlm4j-core", "src", "test", "resources", "fixtures", "btlm-tiny");
    static final Path TINY_BIN = Path.of("..", "btlm4j-core", "src", "test", "resources", "fixtures", "btlm-tiny-bin");
    static final Path DEMO = Path.of("..", "models", "btlm-demo");
    static final ObjectMapper JSON = new ObjectMapper();

    record Run(int code, String out, String err) {
    }

    static Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Run(code, out.toString(), err.toString());
    }

    static JsonNode expected(Path dir) throws IOException {
        return JSON.readTree(dir.resolve("expected.json").toFile());
    }

    static String ids(JsonNode array) {
        List<String> s = new ArrayList<>();
        array.forEach(n -> s.add(n.asText()));
        return String.join(",", s);
    }

    @Test
    void generateJsonGivesReferenceGreedyTokensForEveryFixture() throws IOException {
        for (Path dir : List.of(TINY, TINY_BIN, DEMO)) {
            for (JsonNode seq : expected(dir).get("sequences")) {
                Run r = run("generate", "-m", dir.toString(), "--token-ids", ids(seq.get("input_ids")), "-n",
                        String.valueOf(seq.get("greedy_new_tokens").size()), "--ignore-eos", "--json");
                assertEquals(0, r.code(), r.err());
                JsonNode o = JSON.readTree(r.out());
                assertEquals(seq.get("input_ids"), o.get("prompt_token_ids"));
                assertEquals(seq.get("greedy_new_tokens"), o.get("token_ids"), dir + " " + seq.get("name"));
                assertEquals("length", o.get("finish_reason").asText());
                assertTrue(o.get("text").isTextual());
            }
        }
    }

    @Test
    void scoreJsonMatchesReferenceLogProbs() throws IOException {
        for (Path dir : List.of(TINY, TINY_BIN, DEMO)) {
            for (JsonNode seq : expected(dir).get("sequences")) {
                Run r = run("score", "-m", dir.toString(), "--token-ids", ids(seq.get("input_ids")), "--json");
                assertEquals(0, r.code(), r.err());
                JsonNode o = JSON.readTree(r.out());
                JsonNode lp = o.get("token_logprobs");
                assertTrue(lp.get(0).isNull(), "the first token has no log-prob");
                JsonNode want = seq.get("next_token_logprobs");
                assertEquals(want.size() + 1, lp.size());
                for (int t = 0; t < want.size(); t++) {
                    // float32 engine vs float64 reference (spec section 5)
                    assertEquals(want.get(t).asDouble(), lp.get(t + 1).asDouble(), 1e-4);
                }
                assertEquals(seq.get("total_logprob").asDouble(), o.get("total_logprob").asDouble(),
                        1e-4 * Math.max(1, want.size()));
            }
        }
    }

    @Test
    void generatePlainStreamsRecognisableText() {
        Run r = run("generate", "-m", DEMO.toString(), "-p", "And God said", "-n", "24");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith(" unto him, Behold"), r.out());
    }

    @Test
    void stopStringEndsGenerationAndIsCut() throws IOException {
        Run r = run("generate", "-m", DEMO.toString(), "-p", "And God said", "-n", "24", "--stop", "Behold", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode o = JSON.readTree(r.out());
        assertEquals(" unto him, ", o.get("text").asText());
        assertEquals("stop", o.get("finish_reason").asText());
    }

    @Test
    void seededSamplingIsReproducible() {
        String[] args = {"generate", "-m", DEMO.toString(), "-p", "And God said", "-n", "16", "--temperature", "0.9",
            "--top-k", "40", "--top-p", "0.95", "--seed", "42", "--json"};
        Run a = run(args);
        Run b = run(args);
        assertEquals(0, a.code(), a.err());
        assertEquals(a.out(), b.out());
    }

    @Test
    void tokenizeAndDetokenizeRoundTrip(@TempDir Path tmp) throws IOException {
        Run r = run("tokenize", "-m", TINY.toString(), "-p", "Hello world<|endoftext|>");
        assertEquals(0, r.code(), r.err());
        assertEquals("{\"ids\":[15496,995,50256]}", r.out().strip());
        Path jsonl = tmp.resolve("in.jsonl");
        Files.writeString(jsonl, "{\"text\": \"Hello\", \"id\": 1}\n{\"text\": \" world\"}\n");
        r = run("tokenize", "-m", TINY_BIN.toString(), "--jsonl", jsonl.toString());
        assertEquals(0, r.code(), r.err());
        assertEquals(List.of("{\"ids\":[15496]}", "{\"ids\":[995]}"), r.out().strip().lines().toList());
        r = run("detokenize", "-m", TINY.toString(), "--token-ids", "15496,995");
        assertEquals(0, r.code(), r.err());
        assertEquals("Hello world", r.out().strip());
    }

    @Test
    void infoDescribesTheModel() {
        Run r = run("info", "-m", TINY_BIN.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("pytorch_model.bin"), r.out());
        assertTrue(r.out().contains("BF16"), r.out());
        assertTrue(r.out().contains("parameters"), r.out());
    }

    @Test
    void missingModelIsAClearErrorWithExitTwo() {
        Run r = run("generate", "-m", "/nonexistent/model", "-p", "Hi");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("/nonexistent/model"), r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace without --verbose: " + r.err());
    }

    @Test
    void truncatedCheckpointIsAClearError(@TempDir Path tmp) throws IOException {
        for (String f : List.of("config.json", "vocab.json", "merges.txt")) {
            Files.copy(TINY.resolve(f), tmp.resolve(f));
        }
        byte[] weights = Files.readAllBytes(TINY.resolve("model.safetensors"));
        Files.write(tmp.resolve("model.safetensors"), java.util.Arrays.copyOf(weights, weights.length / 2));
        Run r = run("generate", "-m", tmp.toString(), "-p", "Hi");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("model.safetensors"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
    }

    @Test
    void badConfigNamesTheField(@TempDir Path tmp) throws IOException {
        Files.copy(TINY.resolve("model.safetensors"), tmp.resolve("model.safetensors"));
        String config = Files.readString(TINY.resolve("config.json")).replace("\"n_head\": 4", "\"n_head\": 5");
        Files.writeString(tmp.resolve("config.json"), config);
        Run r = run("info", "-m", tmp.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("n_head 5 does not divide n_embd 64"), r.err());
    }

    @Test
    void badOptionsExitTwo() {
        assertEquals(2, run("generate", "-m", TINY.toString()).code(), "no input");
        assertEquals(2, run("generate", "-m", TINY.toString(), "-p", "a", "--token-ids", "1").code(), "two inputs");
        assertEquals(2, run("generate", "-m", TINY.toString(), "--token-ids", "99999").code(), "id out of range");
        assertEquals(2, run("generate", "-m", TINY.toString(), "-p", "a", "--top-p", "0").code(), "bad top-p");
        assertEquals(2, run("generate", "--bogus").code(), "unknown option");
        assertEquals(2, run("score", "-m", TINY.toString(), "-f", "/nonexistent.txt").code(), "missing text file");
    }

    @Test
    void overlongPromptIsRefused() {
        StringBuilder ids = new StringBuilder("1");
        for (int i = 0; i < 300; i++) {
            ids.append(",1");
        }
        Run r = run("generate", "-m", TINY.toString(), "--token-ids", ids.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("more than the context of 256"), r.err());
    }

    @Test
    void forbiddenPickleGlobalIsRefusedAndNothingRuns(@TempDir Path tmp) throws IOException {
        Path torch = Path.of("..", "btlm4j-core", "src", "test", "resources", "torch");
        for (String hostile : List.of("posix_system.pt", "builtins_eval.pt", "subprocess_popen.pt")) {
            Path dir = Files.createDirectories(tmp.resolve(hostile));
            Files.copy(TINY_BIN.resolve("config.json"), dir.resolve("config.json"));
            Files.copy(TINY_BIN.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
            Files.copy(torch.resolve(hostile), dir.resolve("pytorch_model.bin"));
            Run r = run("generate", "-m", dir.toString(), "-p", "Hi");
            assertEquals(2, r.code(), r.err());
            assertTrue(r.err().contains("forbidden global"), r.err());
            assertFalse(r.err().contains("\tat "), r.err());
        }
    }

    @Test
    void quantizeWritesAGgufThatGenerateAccepts(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("demo-q8_0.gguf");
        Run q = run("quantize", "-m", DEMO.toString(), "--type", "q8_0", "-o", out.toString());
        assertEquals(0, q.code(), q.err());
        assertTrue(Files.size(out) > 0);
        Run g = run("generate", "-m", out.toString(), "-p", "And God said", "-n", "24");
        assertEquals(0, g.code(), g.err());
        assertTrue(g.out().startsWith(" unto him, Behold"), g.out());
        Run again = run("quantize", "-m", DEMO.toString(), "--type", "q8_0", "-o", out.toString());
        assertEquals(2, again.code());
        assertTrue(again.err().contains("exists"), again.err());
        Run bad = run("quantize", "-m", DEMO.toString(), "--type", "q3_k", "-o", tmp.resolve("x.gguf").toString());
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("q3_k is not known"), bad.err());
    }

    @Test
    void perplexityJsonEqualsTheScoresOfTheSameText() throws IOException {
        String text = "And the LORD spake unto Moses, saying, Speak unto the children of Israel.";
        Run p = run("perplexity", "-m", DEMO.toString(), "-p", text, "--json");
        assertEquals(0, p.code(), p.err());
        JsonNode o = JSON.readTree(p.out());
        Run s = run("score", "-m", DEMO.toString(), "-p", text, "--json");
        JsonNode sc = JSON.readTree(s.out());
        assertEquals(sc.get("perplexity").asDouble(), o.get("perplexity").asDouble(), 1e-9);
        assertEquals(-sc.get("total_logprob").asDouble(), o.get("nll").asDouble(), 1e-9);
        assertEquals(sc.get("token_ids").size() - 1, o.get("tokens").asInt());
        assertEquals(2, run("perplexity", "-m", DEMO.toString(), "-p", text, "--window", "100000").code());
    }

    @Test
    void klBaseOutThenKlBaseComparesTwoRuns(@TempDir Path tmp) throws IOException {
        String text = "And the LORD spake unto Moses, saying, Speak unto the children of Israel, and say unto them.";
        Path base = tmp.resolve("base.kld");
        Run saved = run("perplexity", "-m", DEMO.toString(), "-p", text, "--kl-base-out", base.toString(), "--json");
        assertEquals(0, saved.code(), saved.err());
        assertTrue(Files.size(base) > 0);
        // the same model and cache against itself: no divergence
        Run self = run("perplexity", "-m", DEMO.toString(), "-p", text, "--kl-base", base.toString(), "--json");
        assertEquals(0, self.code(), self.err());
        JsonNode s = JSON.readTree(self.out());
        // the base keeps log-probabilities as float32 (relative error 6e-8 of values up to ~20)
        assertEquals(0, s.get("kld_max").asDouble(), 1e-6);
        assertEquals(1.0, s.get("top1_agreement").asDouble());
        assertEquals(JSON.readTree(saved.out()).get("perplexity").asDouble(), s.get("perplexity_base").asDouble(), 1e-4);
        // a 4-bit cache: a small divergence, reported in text form too
        Run q4 = run("perplexity", "-m", DEMO.toString(), "-p", text, "--kl-base", base.toString(), "--kv-type", "q4_0");
        assertEquals(0, q4.code(), q4.err());
        assertTrue(q4.out().contains("KL divergence over") && q4.out().contains("top-1 agreement"), q4.out());
        Run other = run("perplexity", "-m", DEMO.toString(), "-p", "Something else entirely.", "--kl-base",
                base.toString());
        assertEquals(2, other.code());
        assertTrue(other.err().contains("another text"), other.err());
        Run both = run("perplexity", "-m", DEMO.toString(), "-p", text, "--kl-base", base.toString(), "--kl-base-out",
                tmp.resolve("x.kld").toString());
        assertEquals(2, both.code());
    }

    @Test
    void infoEstimatesMemoryAndALimitRefusesBeforeLoading() {
        Run info = run("info", "-m", DEMO.toString(), "-c", "256", "--kv-type", "q8_0", "--memory-limit", "1G");
        assertEquals(0, info.code(), info.err());
        assertTrue(info.out().contains("KV cache") && info.out().contains("total") && info.out().contains("fits"),
                info.out());
        // 4 layers × 2 × 192 × 256 positions in Q8_0 blocks (34 bytes per 32) plus the float tails
        long kv = 2L * 4 * 192 * 256 / 32 * 34 + 2L * 4 * 192 * 32 * 4;
        assertTrue(info.out().contains(org.btlm4j.MemoryEstimate.human(kv)), info.out());
        Run refused = run("generate", "-m", DEMO.toString(), "-p", "And God said", "--memory-limit", "50M");
        assertEquals(2, refused.code());
        assertTrue(refused.err().contains("more than the 50.0 MiB of --memory-limit"), refused.err());
        assertTrue(refused.err().contains("--kv-type") && refused.err().contains("-c"), refused.err());
        // the launcher's heap query: KV cache + activations + the margin, printed before loading
        Run heap = run("generate", "-m", DEMO.toString(), "-p", "x", "-c", "256", "--kv-type", "q8_0", "--print-heap");
        assertEquals(0, heap.code(), heap.err());
        String[] lines = heap.out().trim().split("\n");
        long bytes = Long.parseLong(lines[lines.length - 1].trim());
        assertTrue(bytes > kv + org.btlm4j.MemoryEstimate.HEAP_MARGIN && bytes < kv + (300L << 20), heap.out());
        Run bad = run("generate", "-m", DEMO.toString(), "-p", "x", "--memory-limit", "lots");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("not a memory size"), bad.err());
    }

    @Test
    void printHeapNamesTheFilesItReadForTheLaunchersCache() throws IOException {
        Run heap = run("generate", "-m", DEMO.toString(), "-p", "x", "--print-heap");
        assertEquals(0, heap.code(), heap.err());
        List<String> lines = heap.out().lines().toList();
        Path dir = DEMO.toAbsolutePath().normalize();
        List<String> expected = new ArrayList<>();
        for (Path p : List.of(dir, dir.resolve("config.json"), dir.resolve("model.safetensors"))) {
            expected.add("depends " + Files.getLastModifiedTime(p).to(java.util.concurrent.TimeUnit.SECONDS) + " "
                    + Files.size(p) + " " + p);
        }
        assertEquals(expected, lines.subList(0, lines.size() - 1));
        assertTrue(Long.parseLong(lines.getLast()) > org.btlm4j.MemoryEstimate.HEAP_MARGIN, heap.out());
        // the default model (no -m) is found by looking in several places: not cacheable, only the figure
        String demo = System.getProperty("btlm.demo");
        System.setProperty("btlm.demo", DEMO.toString());
        Run byDefault;
        try {
            byDefault = run("generate", "-p", "x", "--print-heap");
        } finally {
            if (demo == null) {
                System.clearProperty("btlm.demo");
            } else {
                System.setProperty("btlm.demo", demo);
            }
        }
        assertEquals(0, byDefault.code(), byDefault.err());
        assertTrue(byDefault.out().trim().matches("[0-9]+"), byDefault.out());
    }

    @Test
    void aRunDeletesALauncherCacheEntryWhoseHeapDiffersFromItsEstimate(@TempDir Path tmp) throws IOException {
        Path entry = tmp.resolve("entry");
        long heap = Long.parseLong(run("generate", "-m", DEMO.toString(), "-p", "x", "--print-heap").out().trim()
                .lines().toList().getLast());
        try {
            for (long cached : new long[] {heap, heap - 1}) {
                Files.writeString(entry, "cached\n");
                System.setProperty("btlm.heap.cache", entry.toString());
                System.setProperty("btlm.heap.cached", Long.toString(cached));
                Run g = run("generate", "-m", DEMO.toString(), "-p", "And God said", "-n", "2");
                assertEquals(0, g.code(), g.err());
                assertEquals(cached == heap, Files.exists(entry), "cached " + cached + ", estimate " + heap);
            }
        } finally {
            System.clearProperty("btlm.heap.cache");
            System.clearProperty("btlm.heap.cached");
        }
    }

    @Test
    void quantizeInTheJaisLayoutRunsTheSame(@TempDir Path tmp) {
        Path out = tmp.resolve("demo-jais.gguf");
        Run q = run("quantize", "-m", DEMO.toString(), "--type", "f32", "--layout", "jais", "-o", out.toString());
        assertEquals(0, q.code(), q.err());
        Run g = run("generate", "-m", out.toString(), "-p", "And God said", "-n", "24");
        assertEquals(0, g.code(), g.err());
        assertTrue(g.out().startsWith(" unto him, Behold"), g.out());
        Run info = run("info", "-m", out.toString());
        assertEquals(0, info.code(), info.err());
        assertTrue(info.out().contains("slopes          computed from n_head and jais.attention.max_alibi_bias 8.0"),
                info.out());
        Run source = run("info", "-m", DEMO.toString());
        assertTrue(source.out().contains("slopes          stored in the checkpoint"), source.out());
        assertEquals(2, run("quantize", "-m", DEMO.toString(), "--type", "f32", "--layout", "gpt", "-o",
                tmp.resolve("y.gguf").toString()).code());
    }
}
