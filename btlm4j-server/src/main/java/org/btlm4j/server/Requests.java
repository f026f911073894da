package org.btlm4j.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import org.btlm4j.ChatTemplate;

/**
 * Request bodies → requests, or an {@link ApiException} (always a 4xx) saying what is wrong. Pure
 * functions of the bytes and the limits, with no model involved, so that they can be fuzzed. Unknown
 * members are ignored (clients send many); known members of the wrong type or out of range are
 * refused, never guessed.
 */
public final class Requests {
    /** Most choices a request may ask for (prompts × n). */
    public static final int MAX_CHOICES = 64;
    /** Most top log-probabilities per token. */
    public static final int MAX_LOGPROBS = 20;
    static final int MAX_STOPS = 4;
    private static final int MAX_NESTING = 64;
    private static final Pattern ROLE = Pattern.compile("[A-Za-z_][A-Za-z0-9_-]{0,31}");

    static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_NESTING)
                    .maxNumberLength(100).maxStringLength(64 << 20).build())
            .build())
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS);

    private Requests() {
    }

    /** A prompt: text, or token ids (exactly one of them is non-null). */
    public record Prompt(String text, int[] ids) {
    }

    /** What both completion endpoints need to run. */
    public record Sampling(int maxTokens, boolean maxTokensGiven, float temperature, float topP, int topK, float minP,
            float repetitionPenalty, Long seed, List<String> stop, int n, boolean stream, boolean includeUsage,
            boolean ignoreEos) {
    }

    /** {@code POST /v1/completions}. {@code logprobs} null: none; echo repeats the prompt. */
    public record Completion(String model, List<Prompt> prompts, Sampling sampling, Integer logprobs, boolean echo) {
    }

    /** {@code POST /v1/chat/completions}. */
    public record Chat(String model, List<ChatTemplate.Message> messages, Sampling sampling) {
    }

    /** {@code POST /tokenize}. */
    public record Tokenize(String content) {
    }

    /** {@code POST /detokenize}. */
    public record Detokenize(int[] tokens) {
    }

    static ObjectNode object(byte[] body) {
        if (body == null || body.length == 0) {
            throw ApiException.invalid(null, "the request body is empty: a JSON object is expected");
        }
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (JsonProcessingException e) {
            throw ApiException.invalid(null, "the request body is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw ApiException.invalid(null, "the request body could not be read: " + e.getMessage());
        } catch (NumberFormatException e) {
            // Jackson's number reader refuses some literals (e.g. an exponent too long) with this
            throw ApiException.invalid(null, "the request body holds a number that cannot be read: " + e.getMessage());
        }
        if (!(root instanceof ObjectNode o)) {
            throw ApiException.invalid(null, "the request body must be a JSON object");
        }
        return o;
    }

    public static Completion completion(byte[] body, int maxTokensLimit) {
        ObjectNode o = object(body);
        String model = optionalString(o, "model");
        JsonNode p = o.get("prompt");
        if (p == null || p.isNull()) {
            throw ApiException.invalid("prompt", "prompt is required");
        }
        List<Prompt> prompts = prompts(p);
        Integer logprobs = null;
        JsonNode lp = o.get("logprobs");
        if (lp != null && !lp.isNull()) {
            logprobs = intIn(o, "logprobs", 0, MAX_LOGPROBS, 0);
        }
        boolean echo = bool(o, "echo", false);
        String suffix = optionalString(o, "suffix");
        if (suffix != null && !suffix.isEmpty()) {
            throw ApiException.invalid("suffix", "suffix is not supported");
        }
        Sampling s = sampling(o, maxTokensLimit, 16, prompts.size(), "max_tokens");
        JsonNode bestOf = o.get("best_of");
        if (bestOf != null && !bestOf.isNull()) {
            int b = intIn(o, "best_of", 1, MAX_CHOICES, 1);
            if (b != s.n()) {
                throw ApiException.invalid("best_of", "best_of other than n is not supported");
            }
        }
        return new Completion(model, prompts, s, logprobs, echo);
    }

    public static Chat chat(byte[] body, int maxTokensLimit) {
        ObjectNode o = object(body);
        String model = optionalString(o, "model");
        JsonNode m = o.get("messages");
        if (m == null || !m.isArray() || m.isEmpty()) {
            throw ApiException.invalid("messages", "messages must be a non-empty array of {role, content} objects");
        }
        List<ChatTemplate.Message> messages = new ArrayList<>();
        for (int i = 0; i < m.size(); i++) {
            String where = "messages[" + i + "]";
            JsonNode msg = m.get(i);
            if (!(msg instanceof ObjectNode mo)) {
                throw ApiException.invalid(where, where + " must be an object");
            }
            JsonNode role = mo.get("role");
            if (role == null || !role.isTextual() || !ROLE.matcher(role.asText()).matches()) {
                throw ApiException.invalid(where + ".role", where + ".role must be a role name such as user");
            }
            messages.add(new ChatTemplate.Message(role.asText(), content(mo.get("content"), where + ".content")));
        }
        JsonNode lp = o.get("logprobs");
        if (lp != null && !lp.isNull() && !(lp.isBoolean() && !lp.asBoolean())) {
            throw ApiException.invalid("logprobs", "logprobs are not supported on chat completions; use /v1/completions");
        }
        String maxName = o.hasNonNull("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        return new Chat(model, messages, sampling(o, maxTokensLimit, -1, 1, maxName));
    }

    public static Tokenize tokenize(byte[] body) {
        ObjectNode o = object(body);
        JsonNode c = o.get("content");
        if (c == null || !c.isTextual()) {
            throw ApiException.invalid("content", "content must be a string");
        }
        return new Tokenize(c.asText());
    }

    public static Detokenize detokenize(byte[] body) {
        ObjectNode o = object(body);
        JsonNode t = o.get("tokens");
        if (t == null || !t.isArray()) {
            throw ApiException.invalid("tokens", "tokens must be an array of token ids");
        }
        return new Detokenize(ids(t, "tokens", true));
    }

    private static String content(JsonNode c, String where) {
        if (c == null || c.isNull()) {
            return "";
        }
        if (c.isTextual()) {
            return c.asText();
        }
        if (c.isArray()) {
            StringBuilder b = new StringBuilder();
            for (JsonNode part : c) {
                JsonNode type = part.get("type");
                JsonNode text = part.get("text");
                if (type == null || !"text".equals(type.asText()) || text == null || !text.isTextual()) {
                    throw ApiException.invalid(where, where + ": only text parts ({\"type\":\"text\",\"text\":...}) "
                            + "are supported");
                }
                b.append(text.asText());
            }
            return b.toString();
        }
        throw ApiException.invalid(where, where + " must be a string or an array of text parts");
    }

    private static List<Prompt> prompts(JsonNode p) {
        List<Prompt> prompts = new ArrayList<>();
        if (p.isTextual()) {
            prompts.add(new Prompt(p.asText(), null));
        } else if (p.isArray() && !p.isEmpty()) {
            JsonNode first = p.get(0);
            if (first.isTextual()) {
                for (int i = 0; i < p.size(); i++) {
                    if (!p.get(i).isTextual()) {
                        throw ApiException.invalid("prompt", "prompt[" + i + "] must be a string like the others");
                    }
                    prompts.add(new Prompt(p.get(i).asText(), null));
                }
            } else if (first.isArray()) {
                for (int i = 0; i < p.size(); i++) {
                    if (!p.get(i).isArray()) {
                        throw ApiException.invalid("prompt", "prompt[" + i + "] must be an array of token ids like the others");
                    }
                    prompts.add(new Prompt(null, ids(p.get(i), "prompt[" + i + "]", false)));
                }
            } else {
                prompts.add(new Prompt(null, ids(p, "prompt", false)));
            }
        } else {
            throw ApiException.invalid("prompt", "prompt must be a string, an array of strings, an array of token ids "
                    + "or an array of arrays of token ids (and not empty)");
        }
        if (prompts.size() > MAX_CHOICES) {
            throw ApiException.invalid("prompt", "at most " + MAX_CHOICES + " prompts per request, got " + prompts.size());
        }
        return prompts;
    }

    private static int[] ids(JsonNode a, String where, boolean emptyAllowed) {
        if (a.isEmpty() && !emptyAllowed) {
            throw ApiException.invalid("prompt", where + " is empty: give at least one token id");
        }
        int[] ids = new int[a.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode v = a.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < 0) {
                throw ApiException.invalid(where.startsWith("tokens") ? "tokens" : "prompt",
                        where + "[" + i + "] must be a token id (an integer >= 0), got " + abbreviate(v));
            }
            ids[i] = v.asInt();
        }
        return ids;
    }

    private static Sampling sampling(ObjectNode o, int maxTokensLimit, int defaultMaxTokens, int prompts,
            String maxName) {
        boolean given = o.hasNonNull(maxName);
        // a default (16 for completions) never exceeds the server's limit; −1: up to the limit, decided later
        int maxTokens = intIn(o, maxName, 0, Integer.MAX_VALUE, Math.min(defaultMaxTokens, maxTokensLimit));
        if (given && maxTokens > maxTokensLimit) {
            throw ApiException.invalid(maxName, maxName + " " + maxTokens + " exceeds this server's limit of "
                    + maxTokensLimit);
        }
        float temperature = floatIn(o, "temperature", 0, 2, 1f);
        float topP = floatIn(o, "top_p", 0, 1, 1f);
        if (topP == 0) {
            topP = Float.MIN_VALUE; // OpenAI allows 0: keep only the most likely token
        }
        int topK = intIn(o, "top_k", 0, Integer.MAX_VALUE, 0);
        float minP = floatIn(o, "min_p", 0, 1, 0f);
        float penalty;
        if (o.hasNonNull("repetition_penalty")) {
            penalty = floatIn(o, "repetition_penalty", 0.01f, 10, 1f);
        } else {
            // OpenAI's additive penalties in [-2, 2] become HF's multiplicative one, once per seen token
            float f = floatIn(o, "frequency_penalty", -2, 2, 0f);
            float pr = floatIn(o, "presence_penalty", -2, 2, 0f);
            penalty = 1f + (f + pr) / 4f;
        }
        Long seed = null;
        JsonNode sd = o.get("seed");
        if (sd != null && !sd.isNull()) {
            if (!sd.isIntegralNumber() || !sd.canConvertToLong()) {
                throw ApiException.invalid("seed", "seed must be an integer, got " + abbreviate(sd));
            }
            seed = sd.asLong();
        }
        List<String> stop = new ArrayList<>();
        JsonNode st = o.get("stop");
        if (st != null && !st.isNull()) {
            if (st.isTextual()) {
                stop.add(st.asText());
            } else if (st.isArray()) {
                for (JsonNode s : st) {
                    if (!s.isTextual()) {
                        throw ApiException.invalid("stop", "stop must be a string or an array of strings");
                    }
                    stop.add(s.asText());
                }
            } else {
                throw ApiException.invalid("stop", "stop must be a string or an array of strings");
            }
            if (stop.size() > MAX_STOPS) {
                throw ApiException.invalid("stop", "at most " + MAX_STOPS + " stop strings, got " + stop.size());
            }
            stop.removeIf(String::isEmpty);
        }
        int n = intIn(o, "n", 1, MAX_CHOICES, 1);
        if ((long) n * prompts > MAX_CHOICES) {
            throw ApiException.invalid("n", "n × prompts = " + (long) n * prompts + " exceeds " + MAX_CHOICES);
        }
        boolean stream = bool(o, "stream", false);
        boolean includeUsage = false;
        JsonNode so = o.get("stream_options");
        if (so != null && !so.isNull()) {
            if (!(so instanceof ObjectNode soo)) {
                throw ApiException.invalid("stream_options", "stream_options must be an object");
            }
            includeUsage = bool(soo, "include_usage", false);
        }
        JsonNode bias = o.get("logit_bias");
        if (bias != null && !bias.isNull() && !(bias.isObject() && bias.isEmpty())) {
            throw ApiException.invalid("logit_bias", "logit_bias is not supported");
        }
        boolean ignoreEos = bool(o, "ignore_eos", false); // not OpenAI's: for benchmarks of a fixed length
        return new Sampling(maxTokens, given, temperature, topP, topK, minP, penalty, seed, stop, n, stream,
                includeUsage, ignoreEos);
    }

    private static String optionalString(ObjectNode o, String name) {
        JsonNode v = o.get(name);
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isTextual()) {
            throw ApiException.invalid(name, name + " must be a string, got " + abbreviate(v));
        }
        return v.asText();
    }

    private static boolean bool(ObjectNode o, String name, boolean otherwise) {
        JsonNode v = o.get(name);
        if (v == null || v.isNull()) {
            return otherwise;
        }
        if (!v.isBoolean()) {
            throw ApiException.invalid(name, name + " must be true or false, got " + abbreviate(v));
        }
        return v.asBoolean();
    }

    private static int intIn(ObjectNode o, String name, int min, int max, int otherwise) {
        JsonNode v = o.get(name);
        if (v == null || v.isNull()) {
            return otherwise;
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < min || v.asInt() > max) {
            throw ApiException.invalid(name, name + " must be an integer in " + min + ".."
                    + (max == Integer.MAX_VALUE ? "" : String.valueOf(max)) + ", got " + abbreviate(v));
        }
        return v.asInt();
    }

    private static float floatIn(ObjectNode o, String name, float min, float max, float otherwise) {
        JsonNode v = o.get(name);
        if (v == null || v.isNull()) {
            return otherwise;
        }
        double d = v.isNumber() ? v.asDouble() : Double.NaN;
        if (!(d >= min && d <= max)) {
            throw ApiException.invalid(name, name + " must be a number in [" + min + ", " + max + "], got "
                    + abbreviate(v));
        }
        return (float) d;
    }

    private static String abbreviate(JsonNode v) {
        String s = v.toString();
        return s.length() > 40 ? s.substring(0, 40) + "…" : s;
    }
}
