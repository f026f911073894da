package org.btlm4j.bench.jmh;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.btlm4j.tokenizer.Gpt2Tokenizer;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Tokenizer encode throughput on English prose (the demo model's tokenizer files; the text is
 * built from distinct sentences so the piece cache sees realistic variety). Bytes per op are
 * printed at setup: divide by the time per op for MB/s.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class TokenizerBenchmark {
    private Gpt2Tokenizer tokenizer;
    private String text;

    @Setup
    public void setup() {
        Path dir = Path.of(System.getProperty("btlm.demo", "models/btlm-demo"));
        tokenizer = Gpt2Tokenizer.fromVocabAndMerges(dir.resolve("vocab.json"), dir.resolve("merges.txt"));
        StringBuilder b = new StringBuilder();
        java.util.Random r = new java.util.Random(3);
        String[] words = {"the", "model", "reads", "every", "weight", "once", "per", "token", "and", "memory",
            "bandwidth", "limits", "decoding", "while", "prefill", "is", "bound", "by", "arithmetic", "In",
            "beginning", "God", "created", "heaven", "earth", "2026", "naïve", "café", "x86-64", "AVX-512"};
        while (b.length() < 1_000_000) {
            int n = 5 + r.nextInt(15);
            for (int i = 0; i < n; i++) {
                b.append(i == 0 ? "" : " ").append(words[r.nextInt(words.length)]);
                if (r.nextInt(10) == 0) {
                    b.append(r.nextInt(1000));
                }
            }
            b.append(r.nextBoolean() ? ". " : ",\n");
        }
        text = b.toString();
        System.out.println("tokenizer benchmark: " + text.getBytes(java.nio.charset.StandardCharsets.UTF_8).length
                + " bytes per op");
    }

    @Benchmark
    public int[] encode() {
        return tokenizer.encode(text);
    }
}
