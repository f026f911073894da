package org.btlm4j.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.IntStream;
import org.btlm4j.BtlmModel;
import org.btlm4j.GenerationParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Prompt-prefix reuse across requests: a request sharing a long prefix with an earlier one reads
 * only the rest of its prompt, and gets exactly what a server without reuse answers.
 */
class PromptReuseTest {
    static final String PREFIX = "In the beginning God created the heaven and the earth. And the earth was without "
            + "form, and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face "
            + "of the waters. And God said, Let there be light: and there was light. And God saw the light, that it "
            + "was good: and God divided the light from the darkness.";
    static final String[] TAILS = {" And God called the light Day,", " Blessed are the meek, for they",
        " The fortune of the day is", " And it came to pass that", " Fear not, for"};

    static BtlmModel model;
    static ServerFixture plain; // no reuse: the reference

    @BeforeAll
    static void start() {
        model = BtlmModel.load(ServerFixture.demo(), new BtlmModel.Options(2, 0));
        plain = new ServerFixture(ServerOptions.defaults().withPromptCache(0, 0));
    }

    @AfterAll
    static void stop() {
        plain.close();
        model.close();
    }

    static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
    }

    /** Greedy completion of token ids with log-probabilities: the choice's JSON (text, logprobs, finish reason). */
    static JsonNode complete(ServerFixture s, int[] prompt, int maxTokens) {
        ServerFixture.Reply r = s.post("/v1/completions", OpenAiServer.json(Map.of("prompt", prompt, "max_tokens",
                maxTokens, "temperature", 0, "logprobs", 3, "ignore_eos", true)));
        assertEquals(200, r.status(), r.body());
        return r.json().get("choices").get(0);
    }

    /**
     * Same text, tokens, finish reason and alternatives; log-probabilities equal up to float
     * rounding (rows computed in other batch shapes round differently).
     */
    static void assertSameChoice(JsonNode expected, JsonNode actual, String what) {
        assertEquals(expected.get("text"), actual.get("text"), what);
        assertEquals(expected.get("finish_reason"), actual.get("finish_reason"), what);
        JsonNode e = expected.get("logprobs");
        JsonNode a = actual.get("logprobs");
        assertEquals(e.get("tokens"), a.get("tokens"), what);
        assertEquals(e.get("token_logprobs").size(), a.get("token_logprobs").size(), what);
        for (int i = 0; i < e.get("token_logprobs").size(); i++) {
            assertEquals(e.get("token_logprobs").get(i).asDouble(), a.get("token_logprobs").get(i).asDouble(), 1e-4,
                    what + ", token " + i);
            List<String> names = new ArrayList<>();
            e.get("top_logprobs").get(i).fieldNames().forEachRemaining(names::add);
            List<String> got = new ArrayList<>();
            a.get("top_logprobs").get(i).fieldNames().forEachRemaining(got::add);
            assertEquals(names, got, what + ", alternatives of token " + i);
            for (String n : names) {
                assertEquals(e.get("top_logprobs").get(i).get(n).asDouble(),
                        a.get("top_logprobs").get(i).get(n).asDouble(), 1e-4, what + ", token " + i + " " + n);
            }
        }
    }

    static long metric(ServerFixture s, String name) {
        return (long) BatchingTest.metric(s, name);
    }

    @Test
    void aSecondRequestSharingAPrefixReadsOnlyTheRestAndGetsWhatItGetsWithoutReuse() {
        int[] prefix = model.tokenizer().encode(PREFIX);
        assertTrue(prefix.length > 40, prefix.length + " prefix tokens");
        int[] first = concat(prefix, model.tokenizer().encode(TAILS[0]));
        int[] second = concat(prefix, model.tokenizer().encode(TAILS[1]));
        assertTrue(first[prefix.length] != second[prefix.length], "the tails differ at their first token");
        try (ServerFixture s = new ServerFixture(ServerOptions.defaults())) {
            assertSameChoice(complete(plain, first, 8), complete(s, first, 8), "first");
            assertEquals(1, metric(s, "btlm_prompt_cache_entries"));
            long read = metric(s, "btlm_prompt_tokens_total");
            long computed = metric(s, "btlm_prompt_tokens_computed_total");
            assertEquals(read, computed, "the first request has nothing to reuse");

            assertSameChoice(complete(plain, second, 8), complete(s, second, 8), "second, with reuse");
            assertEquals(second.length, metric(s, "btlm_prompt_tokens_total") - read);
            assertEquals(second.length - prefix.length, metric(s, "btlm_prompt_tokens_computed_total") - computed,
                    "only the tokens after the shared prefix were run");
            assertEquals(1, metric(s, "btlm_prompt_cache_hits_total"));
            // the entry was taken and given back: still one
            assertEquals(1, metric(s, "btlm_prompt_cache_entries"));
        }
    }

    @Test
    void aConversationsNextTurnReusesThePromptAndTheReply() {
        int[] turn1 = model.tokenizer().encode(PREFIX + "\nUser: Who made the light?\nAssistant:");
        int n = 6;
        GenerationParams greedy = GenerationParams.defaults().withMaxNewTokens(n).withIgnoreEos(true);
        int[] reply = model.generate(turn1, greedy).tokenIds();
        assertEquals(n, reply.length);
        int[] turn2 = concat(turn1, reply, model.tokenizer().encode("\nUser: And the darkness?\nAssistant:"));
        try (ServerFixture s = new ServerFixture(ServerOptions.defaults())) {
            complete(s, turn1, n);
            long computed = metric(s, "btlm_prompt_tokens_computed_total");
            assertSameChoice(complete(plain, turn2, n), complete(s, turn2, n), "turn 2");
            // the cache held turn 1 and the reply but its last token (sampled, never run)
            assertEquals(turn2.length - (turn1.length + n - 1),
                    metric(s, "btlm_prompt_tokens_computed_total") - computed);
        }
    }

    @Test
    void theSamePromptAgainRunsItsLastTokenOnly() {
        int[] prompt = concat(model.tokenizer().encode(PREFIX), model.tokenizer().encode(TAILS[2]));
        try (ServerFixture s = new ServerFixture(ServerOptions.defaults())) {
            JsonNode once = complete(s, prompt, 5);
            long computed = metric(s, "btlm_prompt_tokens_computed_total");
            assertSameChoice(once, complete(s, prompt, 5), "again");
            assertEquals(1, metric(s, "btlm_prompt_tokens_computed_total") - computed,
                    "the last prompt token runs again: its logits give the first new token");
            assertSameChoice(complete(plain, prompt, 5), once, "once");
        }
    }

    @Test
    void concurrentRequestsSharingAPrefixEqualTheirSoloRuns() throws Exception {
        int[] prefix = model.tokenizer().encode(PREFIX);
        List<int[]> prompts = new ArrayList<>();
        for (String t : TAILS) {
            prompts.add(concat(prefix, model.tokenizer().encode(t)));
        }
        List<JsonNode> solo = new ArrayList<>();
        for (int[] p : prompts) {
            solo.add(complete(plain, p, 7));
        }
        try (ServerFixture s = new ServerFixture(ServerOptions.defaults().withPromptCache(3, 1L << 30));
                ExecutorService pool = Executors.newFixedThreadPool(prompts.size())) {
            for (int round = 0; round < 3; round++) { // the first fills the pool, the next take from it
                List<Future<JsonNode>> together = new ArrayList<>();
                for (int[] p : prompts) {
                    together.add(pool.submit(() -> complete(s, p, 7)));
                }
                for (int i = 0; i < prompts.size(); i++) {
                    assertSameChoice(solo.get(i), together.get(i).get(), "round " + round + ", prompt " + i);
                }
                assertTrue(metric(s, "btlm_prompt_cache_entries") <= 3, "the pool holds at most its entries");
            }
            assertTrue(metric(s, "btlm_prompt_cache_hits_total") > 0, "later rounds reused kept caches");
            assertTrue(metric(s, "btlm_prompt_tokens_computed_total") < metric(s, "btlm_prompt_tokens_total"));
        }
    }

    @Test
    void positionsComputedWithAnotherAlibiScalingAreNotReused() {
        // btlm-tiny (n_positions 256) with dynamic scaling: past 256 tokens each prompt length has its own c
        java.nio.file.Path tiny = java.nio.file.Path.of("..", "btlm4j-core", "src", "test", "resources", "fixtures",
                "btlm-tiny");
        java.util.function.Supplier<BtlmModel> load = () -> BtlmModel.load(tiny, new BtlmModel.Options(1, 1024, true,
                org.btlm4j.model.KvCache.Type.F32, "dynamic"));
        int[] ids = new java.util.Random(1).ints(500, 0, 50000).toArray();
        try (ServerFixture s = new ServerFixture(ServerOptions.defaults(), load);
                ServerFixture fresh = new ServerFixture(ServerOptions.defaults().withPromptCache(0, 0), load)) {
            complete(s, Arrays.copyOf(ids, 300), 1);
            long computed = metric(s, "btlm_prompt_tokens_computed_total");
            assertSameChoice(complete(fresh, ids, 3), complete(s, ids, 3), "500 tokens after 300");
            assertEquals(500, metric(s, "btlm_prompt_tokens_computed_total") - computed,
                    "c = 300/256 before, 500/256 now: all recomputed");
            assertEquals(0, metric(s, "btlm_prompt_cache_hits_total"));
            // within the trained length c is 1 and the prefix is reused
            complete(s, Arrays.copyOf(ids, 150), 1);
            computed = metric(s, "btlm_prompt_tokens_computed_total");
            assertSameChoice(complete(fresh, Arrays.copyOf(ids, 200), 3), complete(s, Arrays.copyOf(ids, 200), 3),
                    "200 tokens after 150");
            assertEquals(200 - 150, metric(s, "btlm_prompt_tokens_computed_total") - computed);
        }
    }

    @Test
    void thePoolStaysWithinItsEntriesAndBytes() {
        int[] prefix = model.tokenizer().encode(PREFIX);
        try (ServerFixture s = new ServerFixture(ServerOptions.defaults().withPromptCache(2, 1L << 30))) {
            for (int i = 0; i < 6; i++) {
                // different first tokens: no entry shares a prefix, each request adds one
                int[] p = concat(new int[] {100 + i}, prefix);
                complete(s, p, 3);
                assertEquals(Math.min(i + 1, 2), metric(s, "btlm_prompt_cache_entries"));
            }
            long bytes = metric(s, "btlm_prompt_cache_bytes");
            assertTrue(bytes > 0, "kept caches hold memory");
            assertEquals(0, metric(s, "btlm_kv_cache_bytes"), "no active sequence holds a cache");
            // the byte budget: a pool too small for one cache keeps nothing
            try (ServerFixture tiny = new ServerFixture(ServerOptions.defaults().withPromptCache(4, bytes / 4))) {
                complete(tiny, concat(prefix, prefix), 3);
                assertEquals(0, metric(tiny, "btlm_prompt_cache_entries"));
                assertEquals(0, metric(tiny, "btlm_prompt_cache_bytes"));
            }
        }
    }

    @Test
    void promptsSharingTooShortAPrefixOrAskingForPromptLogprobsRunWhole() {
        int[] prefix = model.tokenizer().encode(PREFIX);
        try (ServerFixture s = new ServerFixture(ServerOptions.defaults())) {
            complete(s, prefix, 2);
            long computed = metric(s, "btlm_prompt_tokens_computed_total");
            int[] shortShared = concat(Arrays.copyOf(prefix, BatchEngine.MIN_REUSED_PREFIX - 1),
                    IntStream.range(0, 20).map(i -> 200 + i).toArray());
            complete(s, shortShared, 2);
            assertEquals(shortShared.length, metric(s, "btlm_prompt_tokens_computed_total") - computed);
            // echo with log-probabilities needs every prompt position's logits
            computed = metric(s, "btlm_prompt_tokens_computed_total");
            ServerFixture.Reply r = s.post("/v1/completions", OpenAiServer.json(Map.of("prompt", prefix,
                    "max_tokens", 0, "echo", true, "logprobs", 1)));
            assertEquals(200, r.status(), r.body());
            assertEquals(prefix.length, metric(s, "btlm_prompt_tokens_computed_total") - computed);
            assertEquals(0, metric(s, "btlm_prompt_cache_hits_total"));
        }
    }
}
