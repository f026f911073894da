package org.btlm4j.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * Request parsing under random and mutated bodies: it either returns a request or throws an
 * {@link ApiException} with a 4xx status and a message — nothing else, ever.
 */
class RequestsFuzzTest {
    static final List<String> SEEDS = List.of(
            "{\"model\":\"btlm\",\"prompt\":[[1,2,3],[4,5]],\"max_tokens\":0,\"echo\":true,\"logprobs\":1,\"temperature\":0,\"seed\":1234}",
            "{\"prompt\":\"And God said\",\"max_tokens\":16,\"stream\":true,\"stream_options\":{\"include_usage\":true},\"stop\":[\"\\n\",\".\"],\"n\":2,\"top_p\":0.9,\"top_k\":40,\"min_p\":0.05,\"frequency_penalty\":0.5}",
            "{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],\"max_completion_tokens\":8,\"repetition_penalty\":1.1}",
            "{\"content\":\"tokenize me\"}",
            "{\"tokens\":[1,2,3,50256]}");

    static final List<Function<byte[], Object>> PARSERS = List.of(
            b -> Requests.completion(b, 64), b -> Requests.chat(b, 64), Requests::tokenize, Requests::detokenize);

    static void check(byte[] body) {
        for (Function<byte[], Object> parse : PARSERS) {
            try {
                assertNotNull(parse.apply(body));
            } catch (ApiException e) {
                assertTrue(e.status() >= 400 && e.status() < 500, "status " + e.status());
                assertTrue(e.getMessage() != null && !e.getMessage().isBlank());
                assertEquals(e.getMessage(), ((java.util.Map<?, ?>) e.body().get("error")).get("message"));
            } catch (RuntimeException | Error e) {
                fail("body " + new String(body, StandardCharsets.UTF_8) + " → " + e, e);
            }
        }
    }

    @Test
    void seedsParse() {
        assertEquals(2, Requests.completion(SEEDS.get(0).getBytes(StandardCharsets.UTF_8), 64).prompts().size());
        Requests.Completion c = Requests.completion(SEEDS.get(1).getBytes(StandardCharsets.UTF_8), 64);
        assertEquals(1.125f, c.sampling().repetitionPenalty(), 1e-6); // frequency_penalty 0.5 → 1 + 0.5/4
        assertEquals(2, Requests.chat(SEEDS.get(2).getBytes(StandardCharsets.UTF_8), 64).messages().size());
    }

    @Test
    void mutatedBodiesGiveOnly4xx() {
        SplittableRandom r = new SplittableRandom(11);
        String alphabet = "{}[]\":,0123456789.-+eE truefalsnul\\\u00e9\u0000\ud83d\ude00";
        String[] values = {"null", "true", "-1", "1e400", "0.5", "\"x\"", "[]", "{}", "[[]]", "[1,[2]]",
            "99999999999999999999", "-0", "\"\"", "[\"a\",1]", "[[1],\"a\"]", "{\"a\":{}}"};
        String[] keys = {"prompt", "max_tokens", "temperature", "top_p", "top_k", "min_p", "n", "stop", "seed",
            "logprobs", "echo", "stream", "stream_options", "messages", "content", "tokens", "logit_bias", "best_of",
            "suffix", "repetition_penalty", "frequency_penalty", "presence_penalty", "max_completion_tokens", "model"};
        for (int i = 0; i < 4000; i++) {
            String seed = SEEDS.get(r.nextInt(SEEDS.size()));
            StringBuilder b = new StringBuilder(seed);
            int kind = r.nextInt(4);
            if (kind == 0) { // byte-level mutations
                for (int m = 0; m < 1 + r.nextInt(4); m++) {
                    int at = r.nextInt(b.length() + 1);
                    switch (r.nextInt(3)) {
                        case 0 -> b.insert(at, alphabet.charAt(r.nextInt(alphabet.length())));
                        case 1 -> { if (at < b.length()) { b.deleteCharAt(at); } }
                        default -> { if (at < b.length()) { b.setCharAt(at, alphabet.charAt(r.nextInt(alphabet.length()))); } }
                    }
                }
            } else if (kind == 1) { // a known member with a value of any type
                String key = keys[r.nextInt(keys.length)];
                b = new StringBuilder("{\"" + key + "\":" + values[r.nextInt(values.length)] + ","
                        + seed.substring(1));
            } else if (kind == 2) { // truncation
                b.setLength(r.nextInt(b.length() + 1));
            } else { // random bytes
                byte[] raw = new byte[r.nextInt(64)];
                r.nextBytes(raw);
                check(raw);
                continue;
            }
            check(b.toString().getBytes(StandardCharsets.UTF_8));
        }
    }

    @Test
    void deepNestingAndHugeNumbersAre400() {
        check(("{\"prompt\":" + "[".repeat(5000) + "]".repeat(5000) + "}").getBytes(StandardCharsets.UTF_8));
        check(("{\"prompt\":\"x\",\"max_tokens\":1" + "0".repeat(500) + "}").getBytes(StandardCharsets.UTF_8));
        check(("{\"prompt\":\"x\",\"seed\":1e999999999}").getBytes(StandardCharsets.UTF_8));
    }
}
