package org.btlm4j.tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/** Loads the GPT-2 tokenizer fixtures once per JVM; loading takes a few hundred milliseconds. */
final class Fixtures {
    private static final ObjectMapper JSON = new ObjectMapper();

    record EncodeCase(int line, String cat, String text, int[] ids, int[] idsPlain) {
        @Override
        public String toString() {
            return "cases.jsonl:" + line + " [" + cat + "] " + Fixtures.show(text);
        }
    }

    record DecodeCase(String name, int[] ids, String decoded) {
    }

    private static Gpt2Tokenizer fromJson;
    private static Gpt2Tokenizer fromVocab;

    private Fixtures() {
    }

    static Path path(String resource) {
        URL url = Fixtures.class.getResource("/fixtures/" + resource);
        if (url == null) {
            throw new IllegalStateException("missing test resource fixtures/" + resource);
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static synchronized Gpt2Tokenizer tokenizerJson() {
        if (fromJson == null) {
            fromJson = Gpt2Tokenizer.fromTokenizerJson(path("gpt2-tokenizer/tokenizer.json"));
        }
        return fromJson;
    }

    static synchronized Gpt2Tokenizer vocabAndMerges() {
        if (fromVocab == null) {
            fromVocab = Gpt2Tokenizer.fromVocabAndMerges(path("gpt2-tokenizer/vocab.json"),
                    path("gpt2-tokenizer/merges.txt"));
        }
        return fromVocab;
    }

    static List<EncodeCase> encodeCases() {
        List<EncodeCase> cases = new ArrayList<>();
        int line = 0;
        for (String s : lines("gpt2-tokenizer/cases.jsonl")) {
            line++;
            JsonNode n = parse(s);
            cases.add(new EncodeCase(line, n.get("cat").asText(), n.get("text").asText(), ints(n.get("ids")),
                    n.has("ids_plain") ? ints(n.get("ids_plain")) : null));
        }
        return cases;
    }

    static List<DecodeCase> decodeCases() {
        List<DecodeCase> cases = new ArrayList<>();
        for (String s : lines("gpt2-tokenizer/decode-cases.jsonl")) {
            JsonNode n = parse(s);
            if (n.get("skip_special_tokens").asBoolean()) {
                throw new IllegalStateException("decode case with skip_special_tokens=true: " + s);
            }
            cases.add(new DecodeCase(n.get("name").asText(), ints(n.get("ids")), n.get("decoded").asText()));
        }
        return cases;
    }

    private static List<String> lines(String resource) {
        try {
            return Files.readAllLines(path(resource), StandardCharsets.UTF_8).stream().filter(l -> !l.isBlank()).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static JsonNode parse(String line) {
        try {
            return JSON.readTree(line);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).intValue();
        }
        return out;
    }

    /** Short printable form of a test string for test names and messages. */
    static String show(String s) {
        StringBuilder sb = new StringBuilder("\"");
        s.codePoints().limit(40).forEach(cp -> {
            if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || Character.getType(cp) == Character.FORMAT
                    || Character.isWhitespace(cp) && cp != ' ' || cp == 0xA0) {
                sb.append(String.format("\\u%04X", cp));
            } else {
                sb.appendCodePoint(cp);
            }
        });
        if (s.codePointCount(0, s.length()) > 40) {
            sb.append("...(").append(s.length()).append(" chars)");
        }
        return sb.append('"').toString();
    }
}
