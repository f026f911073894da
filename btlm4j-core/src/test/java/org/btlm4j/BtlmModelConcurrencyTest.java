package org.btlm4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** One model shared by several threads, and the streaming forms of generation. */
class BtlmModelConcurrencyTest {
    private static final List<String> PROMPTS = List.of("And God said", "In the beginning",
            "The LORD is my shepherd", "You will", "Blessed are the", "A fool");
    private static final GenerationParams GREEDY = GenerationParams.defaults().withMaxNewTokens(20);

    private static BtlmModel model;

    @BeforeAll
    static void load() {
        model = BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0));
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void concurrentGreedyGenerationsEqualSequentialOnes() throws Exception {
        List<GenerationResult> alone = new ArrayList<>();
        for (String p : PROMPTS) {
            alone.add(model.generate(p, GREEDY));
        }
        // Every prompt twice at once: 12 threads share the model and its pool, released together.
        int n = PROMPTS.size() * 2;
        CyclicBarrier start = new CyclicBarrier(n);
        ExecutorService threads = Executors.newFixedThreadPool(n);
        try {
            List<Future<GenerationResult>> results = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                String prompt = PROMPTS.get(i % PROMPTS.size());
                boolean viaStream = i >= PROMPTS.size();
                results.add(threads.submit(() -> {
                    start.await();
                    if (viaStream) {
                        StringBuilder sb = new StringBuilder();
                        GenerationResult r = model.stream(prompt, GREEDY, sb::append);
                        assertEquals(r.text(), sb.toString());
                        return r;
                    }
                    return model.generate(prompt, GREEDY);
                }));
            }
            for (int i = 0; i < n; i++) {
                GenerationResult expected = alone.get(i % PROMPTS.size());
                GenerationResult got = results.get(i).get();
                assertArrayEquals(expected.tokenIds(), got.tokenIds(), PROMPTS.get(i % PROMPTS.size()));
                assertEquals(expected.text(), got.text());
            }
        } finally {
            threads.shutdownNow();
        }
    }

    @Test
    void concurrentScoresEqualSequentialOnes() throws Exception {
        String text = "In the beginning God created the heaven and the earth.";
        double[] alone = model.score(text).tokenLogprobs();
        ExecutorService threads = Executors.newFixedThreadPool(4);
        try {
            List<Future<ScoreResult>> results = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                results.add(threads.submit(() -> model.score(text)));
            }
            for (Future<ScoreResult> f : results) {
                assertArrayEquals(alone, f.get().tokenLogprobs(), 0.0);
            }
        } finally {
            threads.shutdownNow();
        }
    }

    @Test
    void textStreamYieldsThePiecesOfTheGeneration() {
        GenerationResult expected = model.generate("And God said", GREEDY);
        StringBuilder joined = new StringBuilder();
        int pieces = 0;
        try (TextStream s = model.stream("And God said", GREEDY)) {
            for (String piece : s) {
                assertTrue(!piece.isEmpty());
                joined.append(piece);
                pieces++;
            }
            assertEquals(expected.text(), joined.toString());
            assertArrayEquals(expected.tokenIds(), s.result().tokenIds());
            assertEquals(expected.finishReason(), s.result().finishReason());
        }
        assertTrue(pieces > 1, "streamed in " + pieces + " pieces");
    }

    @Test
    void closingATextStreamEarlyCancelsIt() {
        TextStream s = model.stream("And God said", GenerationParams.defaults().withMaxNewTokens(500).withIgnoreEos(true));
        assertTrue(s.hasNext());
        s.next();
        s.close();
        assertThrows(IllegalStateException.class, s::result);
        // The model is still usable afterwards.
        assertEquals(model.generate("And God said", GREEDY).text(), model.generate("And God said", GREEDY).text());
    }

    @Test
    void aTextStreamRethrowsAFailureOfTheGeneration() {
        String tooLong = "word ".repeat(model.contextLength() + 10);
        try (TextStream s = model.stream(tooLong, GREEDY)) {
            BtlmException e = assertThrows(BtlmException.class, s::hasNext);
            assertTrue(e.getMessage().contains("more than the context"), e.getMessage());
        }
    }

    @Test
    void callsAfterCloseFailClearly() {
        BtlmModel m = BtlmModel.load(Fixtures.demo().toString());
        m.close();
        m.close(); // idempotent
        BtlmException e = assertThrows(BtlmException.class, () -> m.generate("And", GREEDY));
        assertEquals("the model is closed", e.getMessage());
    }
}
