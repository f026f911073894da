package org.btlm4j.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.btlm4j.BtlmModel;
import org.btlm4j.GenerationParams;
import org.btlm4j.ScoreResult;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** /v1/completions over raw HTTP, checked against the engine's own generate and score. */
class CompletionsTest {
    static ServerFixture server;
    static BtlmModel model; // the same model loaded apart: the independent computation

    @BeforeAll
    static void start() {
        server = new ServerFixture(ServerOptions.defaults().withParallel(4, 16));
        model = BtlmModel.load(ServerFixture.demo(), new BtlmModel.Options(1, 0));
    }

    @AfterAll
    static void stop() {
        server.close();
        model.close();
    }

    static String body(Map<String, Object> o) {
        return OpenAiServer.json(o);
    }

    @Test
    void lmEvalLoglikelihoodShapeEqualsScore() {
        // what lm-evaluation-harness' local-completions sends for log-likelihood: token ids, echo, logprobs, max_tokens 0
        String[] texts = {"And God said, Let there be light: and there was light.", "The fortune of the day is near"};
        List<int[]> prompts = new ArrayList<>();
        for (String t : texts) {
            prompts.add(model.tokenizer().encode(t));
        }
        for (int maxTokens : new int[] {0, 1}) {
            ServerFixture.Reply r = server.post("/v1/completions", body(Map.of("model", "btlm", "prompt", prompts,
                    "max_tokens", maxTokens, "echo", true, "logprobs", 1, "temperature", 0, "seed", 1234)));
            assertEquals(200, r.status(), r.body());
            JsonNode choices = r.json().get("choices");
            assertEquals(prompts.size(), choices.size());
            for (int i = 0; i < prompts.size(); i++) {
                int[] ids = prompts.get(i);
                ScoreResult expected = model.score(ids);
                JsonNode c = choices.get(i);
                assertEquals(i, c.get("index").asInt());
                JsonNode lp = c.get("logprobs");
                int n = ids.length + maxTokens;
                assertEquals(n, lp.get("tokens").size());
                assertEquals(n, lp.get("token_logprobs").size());
                assertEquals(n, lp.get("top_logprobs").size());
                assertEquals(n, lp.get("text_offset").size());
                assertTrue(lp.get("token_logprobs").get(0).isNull());
                assertTrue(lp.get("top_logprobs").get(0).isNull());
                assertTrue(c.get("text").asText().startsWith(texts[i]), c.get("text").asText());
                StringBuilder rebuilt = new StringBuilder();
                for (int t = 0; t < ids.length; t++) {
                    assertEquals(rebuilt.length(), lp.get("text_offset").get(t).asInt());
                    rebuilt.append(lp.get("tokens").get(t).asText());
                }
                assertEquals(texts[i], rebuilt.toString());
                for (int t = 1; t < ids.length; t++) {
                    double got = lp.get("token_logprobs").get(t).asDouble();
                    // float32 rows computed in other batch shapes: same model, same sums, 1e-4
                    assertEquals(expected.tokenLogprobs()[t], got, 1e-4, "token " + t);
                    JsonNode top = lp.get("top_logprobs").get(t);
                    assertEquals(1, top.size());
                    double best = top.elements().next().asDouble();
                    assertTrue(best >= got - 1e-9, "the top entry is at least the token's own");
                }
                if (maxTokens == 1) {
                    int greedy = model.generate(ids, GenerationParams.defaults().withMaxNewTokens(1)
                            .withIgnoreEos(true)).tokenIds()[0];
                    String tok = new String(model.tokenizer().tokenBytes(greedy), java.nio.charset.StandardCharsets.UTF_8);
                    assertEquals(tok, lp.get("tokens").get(ids.length).asText());
                    double top = lp.get("top_logprobs").get(ids.length).get(tok).asDouble();
                    assertEquals(top, lp.get("token_logprobs").get(ids.length).asDouble(), 1e-12);
                }
            }
            JsonNode usage = r.json().get("usage");
            assertEquals(prompts.get(0).length + prompts.get(1).length, usage.get("prompt_tokens").asInt());
            assertEquals(maxTokens * 2, usage.get("completion_tokens").asInt());
        }
    }

    @Test
    void greedyTextEqualsGenerateForStringsAndIdsStreamedOrNot() {
        String prompt = "And God said";
        String expected = model.generate(prompt, GenerationParams.defaults().withMaxNewTokens(20)).text();
        for (Object p : List.of(prompt, List.of(prompt), model.tokenizer().encode(prompt))) {
            ServerFixture.Reply r = server.post("/v1/completions", body(Map.of("prompt", p, "max_tokens", 20,
                    "temperature", 0)));
            assertEquals(200, r.status(), r.body());
            assertEquals(expected, r.json().get("choices").get(0).get("text").asText());
            assertEquals("text_completion", r.json().get("object").asText());
            assertTrue(r.json().get("timings").get("predicted_n").asInt() > 0);
        }
        ServerFixture.Reply r = server.post("/v1/completions", body(Map.of("prompt", prompt, "max_tokens", 20,
                "temperature", 0, "stream", true, "stream_options", Map.of("include_usage", true))));
        assertEquals(200, r.status());
        assertTrue(r.response().headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        StringBuilder text = new StringBuilder();
        String finish = null;
        JsonNode usage = null;
        for (JsonNode e : ServerFixture.events(r.body())) {
            if (e.has("usage")) {
                usage = e.get("usage");
                continue;
            }
            JsonNode c = e.get("choices").get(0);
            text.append(c.get("text").asText());
            if (!c.get("finish_reason").isNull()) {
                finish = c.get("finish_reason").asText();
            }
        }
        assertEquals(expected, text.toString());
        assertTrue(finish != null);
        assertEquals(model.tokenizer().encode(prompt).length, usage.get("prompt_tokens").asInt());
    }

    @Test
    void stopStringsNAndSeededSampling() {
        String prompt = "And God said";
        String full = model.generate(prompt, GenerationParams.defaults().withMaxNewTokens(24)).text();
        String stop = full.substring(full.length() / 2, full.length() / 2 + 2);
        JsonNode r = server.post("/v1/completions", body(Map.of("prompt", prompt, "max_tokens", 24, "temperature", 0,
                "stop", List.of(stop)))).json();
        JsonNode c = r.get("choices").get(0);
        assertEquals(full.substring(0, full.indexOf(stop)), c.get("text").asText());
        assertEquals("stop", c.get("finish_reason").asText());

        Map<String, Object> sampled = Map.of("prompt", prompt, "max_tokens", 16, "temperature", 0.9, "top_p", 0.95,
                "top_k", 40, "min_p", 0.01, "seed", 42, "n", 3);
        JsonNode a = server.post("/v1/completions", body(sampled)).json().get("choices");
        JsonNode b = server.post("/v1/completions", body(sampled)).json().get("choices");
        assertEquals(3, a.size());
        GenerationParams same = GenerationParams.defaults().withMaxNewTokens(16).withTemperature(0.9f).withTopP(0.95f)
                .withTopK(40).withMinP(0.01f).withSeed(42L);
        String alone = model.generate(prompt, same).text();
        for (int i = 0; i < 3; i++) {
            assertEquals(a.get(i).get("text"), b.get(i).get("text"), "the same seed gives the same text");
            assertEquals(alone, a.get(i).get("text").asText(), "as the engine samples it alone");
        }
    }

    @Test
    void generatedTokenLogprobsAreTheModelsDistribution() {
        int[] ids = model.tokenizer().encode("And God said");
        JsonNode c = server.post("/v1/completions", body(Map.of("prompt", ids, "max_tokens", 4, "temperature", 0,
                "logprobs", 3))).json().get("choices").get(0);
        JsonNode lp = c.get("logprobs");
        assertEquals(4, lp.get("tokens").size());
        int[] gen = model.generate(ids, GenerationParams.defaults().withMaxNewTokens(4).withIgnoreEos(true)).tokenIds();
        int[] all = java.util.Arrays.copyOf(ids, ids.length + gen.length);
        System.arraycopy(gen, 0, all, ids.length, gen.length);
        double[] expected = model.score(all).tokenLogprobs();
        for (int t = 0; t < 4; t++) {
            assertEquals(expected[ids.length + t], lp.get("token_logprobs").get(t).asDouble(), 1e-4);
            assertEquals(3, lp.get("top_logprobs").get(t).size());
        }
        // logprobs 0: the chosen tokens' log-probabilities, no alternatives
        ServerFixture.Reply zero = server.post("/v1/completions", body(Map.of("prompt", ids, "max_tokens", 4,
                "temperature", 0, "logprobs", 0, "echo", true)));
        assertEquals(200, zero.status(), zero.body());
        JsonNode z = zero.json().get("choices").get(0).get("logprobs");
        assertEquals(ids.length + 4, z.get("token_logprobs").size());
        assertEquals(expected[1], z.get("token_logprobs").get(1).asDouble(), 1e-4);
        assertEquals(0, z.get("top_logprobs").get(ids.length).size());
    }

    @Test
    void tokenizeDetokenizeModelsHealthAndMetrics() {
        JsonNode t = server.post("/tokenize", "{\"content\":\"And God said\"}").json();
        int[] expected = model.tokenizer().encode("And God said");
        assertEquals(expected.length, t.get("tokens").size());
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], t.get("tokens").get(i).asInt());
        }
        assertEquals("And God said", server.post("/detokenize", "{\"tokens\":" + t.get("tokens") + "}").json()
                .get("content").asText());
        JsonNode models = server.get("/v1/models").json();
        assertEquals("list", models.get("object").asText());
        assertEquals("btlm", models.get("data").get(0).get("id").asText());
        assertEquals(200, server.get("/health").status());
        server.post("/v1/completions", "{\"prompt\":\"Hi\",\"max_tokens\":2}");
        String metrics = server.get("/metrics").body();
        for (String name : List.of("btlm_requests_total", "btlm_prompt_tokens_total", "btlm_generated_tokens_total",
                "btlm_generated_tokens_per_second", "btlm_queue_depth", "btlm_kv_cache_bytes")) {
            assertTrue(metrics.contains("\n" + name + " ") || metrics.startsWith(name + " "), name + " in " + metrics);
        }
        assertTrue(metrics.matches("(?s).*\nbtlm_generated_tokens_total [1-9].*"), metrics);
    }
}
