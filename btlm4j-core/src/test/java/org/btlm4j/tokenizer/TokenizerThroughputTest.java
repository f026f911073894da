package org.btlm4j.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;

/**
 * Rough single-thread encode throughput, printed and not asserted (CI machines vary too much).
 * Corpus: the fixtures' prose cases plus, where installed, /usr/share/common-licenses.
 */
class TokenizerThroughputTest {

    @Test
    void printEncodeThroughput() throws IOException {
        List<String> docs = new ArrayList<>();
        for (Fixtures.EncodeCase c : Fixtures.encodeCases()) {
            if (c.cat().equals("prose")) {
                docs.add(c.text());
            }
        }
        Path licenses = Path.of("/usr/share/common-licenses");
        if (Files.isDirectory(licenses)) {
            try (Stream<Path> files = Files.list(licenses)) {
                for (Path p : files.filter(Files::isRegularFile).sorted().toList()) {
                    try {
                        // Documents split on blank lines, as in the fixtures README's benchmark.
                        for (String doc : Files.readString(p, StandardCharsets.UTF_8).split("\n\n")) {
                            docs.add(doc);
                        }
                    } catch (IOException e) {
                        // not UTF-8 or unreadable: just leave it out of the corpus
                    }
                }
            }
        }
        long bytes = 0;
        for (String d : docs) {
            bytes += d.getBytes(StandardCharsets.UTF_8).length;
        }
        Gpt2Tokenizer tok = Fixtures.tokenizerJson();
        long tokens = 0;
        double best = 0;
        for (int pass = 0; pass < 8; pass++) {
            long t0 = System.nanoTime();
            tokens = 0;
            for (String d : docs) {
                tokens += tok.encode(d).length;
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            best = Math.max(best, bytes / 1e6 / seconds);
        }
        // Round trip as a sanity check that the measured work is real.
        for (String d : docs) {
            assertEquals(d, tok.decode(tok.encode(d)));
        }
        System.out.printf("gpt2 tokenizer encode: %d docs, %.2f MB, %d tokens, best pass %.1f MB/s%n",
                docs.size(), bytes / 1e6, tokens, best);
    }
}
