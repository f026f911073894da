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
    void theDefaultMaxTokensNeverExceedsTheServersLimit() {
        byte[] noMax = "{\"prompt\":\"x\"}".getBytes(StandardCharsets.UTF_8);
        assertEquals(16, Requests.completion(noMax, 64).sampling().maxTokens()); // OpenAI's default
        assertEquals(8, Requests.completion(noMax, 8).sampling().maxTokens());
        assertEquals(0, Requests.completion(noMax, 0).sampling().maxTokens());
        byte[] chat = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}".getBytes(StandardCharsets.UTF_8);
        assertEquals(-1, Requests.chat(chat, 8).sampling().maxTokens()); // decided with the prompt: up to the limit
    }

    static final String ALPHABET = "{}[]\":,0123456789.-+eE truefalsnul\\\u00e9\u0000\ud83d\ude00";
    static final String[] VALUES = {"null", "true", "-1", "1e400", "0.5", "\"x\"", "[]", "{}", "[[]]", "[1,[2]]",
        "99999999999999999999", "-0", "\"\"", "[\"a\",1]", "[[1],\"a\"]", "{\"a\":{}}"};
    static final String[] KEYS = {"prompt", "max_tokens", "temperature", "top_p", "top_k", "min_p", "n", "stop",
        "seed", "logprobs", "echo", "stream", "stream_options", "messages", "content", "tokens", "logit_bias",
        "best_of", "suffix", "repetition_penalty", "frequency_penalty", "presence_penalty", "max_completion_tokens",
        "model"};

    /** A body made from a valid one: bytes mutated, a member of any type, truncated, or random bytes. */
    static byte[] mutant(SplittableRandom r) {
        String seed = SEEDS.get(r.nextInt(SEEDS.size()));
        StringBuilder b = new StringBuilder(seed);
        switch (r.nextInt(4)) {
            case 0 -> {
                for (int m = 0; m < 1 + r.nextInt(4); m++) {
                    int at = r.nextInt(b.length() + 1);
                    char c = ALPHABET.charAt(r.nextInt(ALPHABET.length()));
                    switch (r.nextInt(3)) {
                        case 0 -> b.insert(at, c);
                        case 1 -> {
                            if (at < b.length()) {
                                b.deleteCharAt(at);
                            }
                        }
                        default -> {
                            if (at < b.length()) {
                                b.setCharAt(at, c);
                            }
                        }
                    }
                }
            }
            case 1 -> b = new StringBuilder("{\"" + KEYS[r.nextInt(KEYS.length)] + "\":"
                    + VALUES[r.nextInt(VALUES.length)] + "," + seed.substring(1));
            case 2 -> b.setLength(r.nextInt(b.length() + 1));
            default -> {
                byte[] raw = new byte[r.nextInt(64)];
                r.nextBytes(raw);
                return raw;
            }
        }
        return b.toString().getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void mutatedBodiesGiveOnly4xx() {
        SplittableRandom r = new SplittableRandom(11);
        for (int i = 0; i < 4000; i++) {
            check(mutant(r));
        }
    }

    @Test
    void deepNestingAndHugeNumbersAre400() {
        check(("{\"prompt\":" + "[".repeat(5000) + "]".repeat(5000) + "}").getBytes(StandardCharsets.UTF_8));
        check(("{\"prompt\":\"x\",\"max_tokens\":1" + "0".repeat(500) + "}").getBytes(StandardCharsets.UTF_8));
        check(("{\"prompt\":\"x\",\"seed\":1e999999999}").getBytes(StandardCharsets.UTF_8));
    }
}
