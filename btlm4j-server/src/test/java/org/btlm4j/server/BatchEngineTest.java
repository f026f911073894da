package org.btlm4j.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.btlm4j.BtlmModel;
import org.btlm4j.GenerationParams;
import org.junit.jupiter.api.Test;

/** The batching loop itself: prompts read in bounded chunks beside sequences that keep decoding. */
class BatchEngineTest {
    @Test
    void aLongPromptIsReadInChunksWhileAnotherSequenceKeepsDecoding() throws Exception {
        ServerOptions options = new ServerOptions("127.0.0.1", 0, "btlm", null, 4, 4, 0, 2048, 4096,
                Duration.ofMinutes(1), 32, null);
        try (BtlmModel model = BtlmModel.load(ServerFixture.demo(), new BtlmModel.Options(2, 0))) {
            BatchEngine engine = new BatchEngine(model, options, new Metrics());
            try {
                int[] shortPrompt = model.tokenizer().encode("And God said");
                int[] longPrompt = new SplittableRandom(5).ints(400, 100, 5000).toArray();
                GenerationParams p = GenerationParams.defaults().withMaxNewTokens(40).withIgnoreEos(true);
                BatchEngine.Ticket t = engine.submit(List.of(new BatchEngine.Spec(shortPrompt, p, 0, false),
                        new BatchEngine.Spec(longPrompt, p.withMaxNewTokens(2), 0, false)), System.nanoTime()
                        + TimeUnit.MINUTES.toNanos(1));
                int decodedBeforeLongPromptRead = 0;
                boolean longRead = false;
                int done = 0;
                BatchEngine.Done first = null;
                while (done < 2) {
                    BatchEngine.Event e = t.events.poll(60, TimeUnit.SECONDS);
                    switch (e) {
                        case BatchEngine.PromptRead r -> longRead |= r.choice() == 1;
                        case BatchEngine.Text x -> {
                            if (x.choice() == 0 && !longRead) {
                                decodedBeforeLongPromptRead += x.logprobs().size();
                            }
                        }
                        case BatchEngine.Done d -> {
                            done++;
                            if (d.choice() == 0) {
                                first = d;
                            }
                        }
                        case BatchEngine.Failed f -> throw f.error();
                    }
                }
                // 400 prompt tokens at most 32 per step, shared: ≥ 11 steps in which the short one decodes
                assertTrue(decodedBeforeLongPromptRead >= 11, decodedBeforeLongPromptRead + " tokens");
                assertArrayEquals(model.generate(shortPrompt, p).tokenIds(), first.result().tokenIds(),
                        "batched beside a prompt being read, greedy output is what it is alone");
                for (int i = 0; i < 200 && (engine.active() > 0 || engine.kvBytes() > 0); i++) {
                    Thread.sleep(10); // the loop publishes its gauges after the step that ended them
                }
                assertEquals(0, engine.active());
                assertEquals(0, engine.kvBytes());
                // both finished normally: their caches are kept for a later prompt, within the bounds
                assertEquals(2, engine.poolEntries());
                assertTrue(engine.poolBytes() > 0 && engine.poolBytes() <= options.promptCacheBytes());
            } finally {
                engine.close();
            }
            assertEquals(0, engine.poolEntries(), "shutting down frees the kept caches");
            assertEquals(0, engine.poolBytes());
        }
    }
}
