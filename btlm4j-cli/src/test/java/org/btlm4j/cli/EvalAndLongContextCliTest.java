package org.btlm4j.cli;

import static org.btlm4j.cli.CliTest.DEMO;
import static org.btlm4j.cli.CliTest.JSON;
import static org.btlm4j.cli.CliTest.TINY;
import static org.btlm4j.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** btlm eval, perplexity buckets, the prompt cache file and contexts past n_positions, from the command line. */
class EvalAndLongContextCliTest {
    static final Path EVAL = Path.of("..", "btlm4j-core", "src", "test", "resources", "eval");

    private static String data(String name) {
        return EVAL.resolve(name).toString();
    }

    @Test
    void evalPrintsATableAndJsonPerTaskAndTheAverage(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("results.json");
        CliTest.Run r = run("eval", "-m", DEMO.toString(), "--task", "arc_easy,piqa,lambada_openai", "--data",
                data("arc_easy.jsonl") + "," + data("piqa.jsonl") + "," + data("lambada_openai.jsonl"), "--json",
                out.toString(), "-t", "2");
        assertEquals(0, r.code(), r.err());
        JsonNode o = JSON.readTree(out.toFile());
        JsonNode arc = o.get("results").get("arc_easy");
        assertEquals(3, arc.get("n").asInt());
        assertEquals(0, arc.get("shots").asInt());
        double acc = arc.get("acc").asDouble();
        assertTrue(acc == 0 || acc == 1.0 / 3 || acc == 2.0 / 3 || acc == 1, "a share of 3 documents: " + acc);
        assertTrue(o.get("results").get("piqa").has("acc_norm_stderr"));
        JsonNode lambada = o.get("results").get("lambada_openai");
        assertTrue(lambada.get("perplexity").asDouble() > 1);
        assertTrue(lambada.get("perplexity_stderr").isNull());
        double mean = (acc + o.get("results").get("piqa").get("acc").asDouble() + lambada.get("acc").asDouble()) / 3;
        assertEquals(mean, o.get("average").get("acc").asDouble(), 1e-12);
        assertTrue(r.out().contains("| arc_easy | 0 | 3 |"), r.out());
        assertTrue(r.out().contains("| average |"), r.out());
        assertTrue(r.err().contains("arc_easy ["), "a progress line: " + r.err());
    }

    @Test
    void evalMistakesAreOneLineErrors() {
        CliTest.Run unknown = run("eval", "-m", DEMO.toString(), "--task", "squad", "--data", data("piqa.jsonl"));
        assertEquals(2, unknown.code());
        assertTrue(unknown.err().contains("unknown task \"squad\""), unknown.err());
        CliTest.Run count = run("eval", "-m", DEMO.toString(), "--task", "piqa,boolq", "--data", data("piqa.jsonl"));
        assertEquals(2, count.code());
        assertTrue(count.err().contains("one --data file per task"), count.err());
        CliTest.Run missing = run("eval", "-m", DEMO.toString(), "--task", "piqa", "--data", "no-such.jsonl");
        assertEquals(2, missing.code());
        assertTrue(missing.err().contains("no-such.jsonl: file not found"), missing.err());
        CliTest.Run fields = run("eval", "-m", DEMO.toString(), "--task", "piqa", "--data", data("boolq.jsonl"));
        assertEquals(2, fields.code());
        assertTrue(fields.err().contains("boolq.jsonl line 1: missing field \"sol1\""), fields.err());
        CliTest.Run mmlu = run("eval", "-m", DEMO.toString(), "--task", "mmlu", "--data", data("mmlu.jsonl"));
        assertEquals(2, mmlu.code());
        assertTrue(mmlu.err().contains("5-shot needs solved examples"), mmlu.err());
        assertTrue(run("eval", "--help").out().contains("Examples:"));
    }

    @Test
    void perplexityBucketsAddUpToTheWhole() throws IOException {
        String text = "In the beginning God created the heaven and the earth. And the earth was without form, and "
                + "void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the "
                + "waters. And God said, Let there be light: and there was light.";
        CliTest.Run r = run("perplexity", "-m", DEMO.toString(), "-p", text, "--window", "24", "--stride", "8",
                "--bucket", "8", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode o = JSON.readTree(r.out());
        long tokens = 0;
        double nll = 0;
        for (JsonNode b : o.get("buckets")) {
            tokens += b.get("tokens").asLong();
            nll += b.get("nll").asDouble();
        }
        assertEquals(3, o.get("buckets").size());
        assertEquals(o.get("tokens").asLong(), tokens);
        assertEquals(o.get("nll").asDouble(), nll, 1e-9);
        CliTest.Run plain = run("perplexity", "-m", DEMO.toString(), "-p", text, "--window", "24", "--bucket", "8");
        assertTrue(plain.out().contains("positions      8–16"), plain.out());
    }

    @Test
    void contextsPastNPositionsNeedAlibiScalingOnEveryCommand() throws IOException {
        String[][] commands = {
            {"generate", "-m", TINY.toString(), "-p", "hello", "-n", "2", "--ctx", "1024"},
            {"score", "-m", TINY.toString(), "-p", "hello", "--ctx", "1024"},
            {"perplexity", "-m", TINY.toString(), "-p", "hello world", "--ctx", "1024"},
            {"info", "-m", TINY.toString(), "--ctx", "1024"},
            {"eval", "-m", TINY.toString(), "--task", "piqa", "--data", data("piqa.jsonl"), "--ctx", "1024"},
            {"bench", "-m", TINY.toString(), "-p", "4", "-n", "2", "-r", "1", "--no-limits", "--ctx", "1024"},
        };
        for (String[] c : commands) {
            CliTest.Run r = run(c);
            assertEquals(2, r.code(), c[0] + ": " + r.out() + r.err());
            assertTrue(r.err().contains("--alibi-scaling dynamic"), c[0] + ": " + r.err());
        }
        CliTest.Run bench = run("bench", "-m", TINY.toString(), "-p", "0", "-n", "2", "-d", "1000", "-r", "1",
                "--no-limits", "--ctx", "1024", "--alibi-scaling", "dynamic", "--json");
        assertEquals(0, bench.code(), bench.err());
        assertEquals(1024, JSON.readTree(bench.out()).get("ctx").asInt());
        CliTest.Run info = run("info", "-m", TINY.toString(), "--ctx", "16384", "--alibi-scaling", "dynamic");
        assertEquals(0, info.code(), info.err());
        assertTrue(info.out().contains("at the full context of 16384"), info.out());
    }

    @Test
    void promptCacheFileSkipsTheSavedPrompt(@TempDir Path tmp) {
        Path file = tmp.resolve("p.kv");
        String[] args = {"generate", "-m", DEMO.toString(), "-p", "And God said, Let there be light: and there was",
            "-n", "6", "--ignore-eos", "--prompt-cache", file.toString(), "--verbose", "-t", "2"};
        CliTest.Run first = run(args);
        assertEquals(0, first.code(), first.err());
        assertTrue(Files.exists(file));
        assertTrue(first.err().contains("0 positions restored"), first.err());
        CliTest.Run second = run(args);
        assertEquals(0, second.code(), second.err());
        assertEquals(first.out(), second.out());
        assertTrue(second.err().matches("(?s).*(\\d+) positions restored, 0 of \\1 prompt tokens computed.*"),
                second.err());
        assertTrue(second.err().contains("KV cache"), second.err());
        CliTest.Run other = run("generate", "-m", TINY.toString(), "-p", "x", "-n", "1", "--prompt-cache",
                file.toString());
        assertEquals(2, other.code());
        assertTrue(other.err().contains("another model config"), other.err());
    }
}
