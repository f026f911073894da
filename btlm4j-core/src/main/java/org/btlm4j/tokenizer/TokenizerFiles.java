package org.btlm4j.tokenizer;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.btlm4j.BtlmException;

/**
 * Reads tokenizer files and checks them, turning every problem into a {@link BtlmException}
 * whose message names the file and the place in it, because a user-supplied model directory is
 * the usual source of these errors.
 */
final class TokenizerFiles {
    /** Guards the id -> token arrays against a garbage id allocating gigabytes. */
    private static final int MAX_ID = 16_000_000;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One merge rule and where it came from, for error messages. */
    private record Merge(String left, String right, String where) {
    }

    private TokenizerFiles() {
    }

    static Gpt2Tokenizer fromVocabAndMerges(Path vocabJson, Path mergesTxt) {
        requirePath(vocabJson, "vocab.json");
        requirePath(mergesTxt, "merges.txt");
        JsonNode root = readJson(vocabJson);
        Map<String, Integer> vocab = readVocab(root, vocabJson.toString());
        List<Merge> merges = readMergesTxt(mergesTxt);
        List<AddedToken> added = new ArrayList<>();
        Integer eos = vocab.get("<|endoftext|>");
        if (eos != null) {
            // HF's GPT-2 setup declares it as an added special token; that is what makes a
            // literal "<|endoftext|>" in the input encode to 50256.
            added.add(new AddedToken(eos, "<|endoftext|>", true, false, false));
        }
        return build(vocab, merges, added, false, vocabJson.toString());
    }

    /**
     * From a token list (index = id) and "A B" merge rules, as GGUF's {@code tokenizer.ggml.tokens}
     * and {@code tokenizer.ggml.merges} hold them; {@code <|endoftext|>} becomes special as with
     * vocab.json.
     */
    static Gpt2Tokenizer fromTokensAndMerges(List<String> tokens, List<String> mergeRules, String where) {
        if (tokens.isEmpty()) {
            throw new BtlmException(where + ": the token list is empty");
        }
        if (tokens.size() > MAX_ID) {
            throw new BtlmException(where + ": " + tokens.size() + " tokens is too many");
        }
        Map<String, Integer> vocab = new java.util.LinkedHashMap<>();
        for (int id = 0; id < tokens.size(); id++) {
            if (vocab.put(tokens.get(id), id) != null) {
                throw new BtlmException(where + ": token " + quote(tokens.get(id)) + " appears twice");
            }
        }
        List<Merge> merges = new ArrayList<>(mergeRules.size());
        for (int i = 0; i < mergeRules.size(); i++) {
            String m = mergeRules.get(i);
            int space = m.indexOf(' ');
            if (space <= 0 || space == m.length() - 1 || m.indexOf(' ', space + 1) >= 0) {
                throw new BtlmException(where + ": merge " + i + ": expected two tokens separated by a space, got "
                        + quote(m));
            }
            merges.add(new Merge(m.substring(0, space), m.substring(space + 1), where + ": merge " + i));
        }
        List<AddedToken> added = new ArrayList<>();
        Integer eos = vocab.get("<|endoftext|>");
        if (eos != null) {
            added.add(new AddedToken(eos, "<|endoftext|>", true, false, false));
        }
        return build(vocab, merges, added, false, where);
    }

    static Gpt2Tokenizer fromTokenizerJson(Path tokenizerJson) {
        requirePath(tokenizerJson, "tokenizer.json");
        String file = tokenizerJson.toString();
        JsonNode root = readJson(tokenizerJson);
        if (!root.isObject()) {
            throw new BtlmException(file + ": not a JSON object");
        }
        JsonNode model = root.get("model");
        if (model == null || !model.isObject()) {
            throw new BtlmException(file + ": missing \"model\" object");
        }
        JsonNode type = model.get("type");
        if (type != null && !type.isNull() && !"BPE".equals(type.asText())) {
            throw new BtlmException(file + ": model.type is \"" + type.asText() + "\", only \"BPE\" is supported");
        }
        checkGpt2Pipeline(root, model, file);
        JsonNode vocabNode = model.get("vocab");
        if (vocabNode == null) {
            throw new BtlmException(file + ": missing model.vocab");
        }
        Map<String, Integer> vocab = readVocab(vocabNode, file + ": model.vocab");
        List<Merge> merges = readJsonMerges(model.get("merges"), file);
        JsonNode ignore = model.get("ignore_merges");
        boolean ignoreMerges = ignore != null && ignore.asBoolean(false);
        List<AddedToken> added = readAddedTokens(root.get("added_tokens"), file);
        return build(vocab, merges, added, ignoreMerges, file);
    }

    /**
     * Rejects tokenizer.json settings this GPT-2-only implementation would silently get wrong
     * (a normalizer, another pre-tokenizer or regex, prefix spaces, subword affixes), so that a
     * foreign tokenizer fails loudly instead of producing plausible but wrong ids.
     */
    private static void checkGpt2Pipeline(JsonNode root, JsonNode model, String file) {
        JsonNode normalizer = root.get("normalizer");
        if (normalizer != null && !normalizer.isNull()) {
            throw new BtlmException(file + ": a normalizer (" + normalizer.path("type").asText("?")
                    + ") is not supported; only the GPT-2 byte-level pipeline is");
        }
        JsonNode pre = root.get("pre_tokenizer");
        if (pre != null && !pre.isNull()) {
            if (!"ByteLevel".equals(pre.path("type").asText())) {
                throw new BtlmException(file + ": pre_tokenizer type \"" + pre.path("type").asText("?")
                        + "\" is not supported; only GPT-2's \"ByteLevel\" is");
            }
            if (pre.path("add_prefix_space").asBoolean(false)) {
                throw new BtlmException(file + ": pre_tokenizer.add_prefix_space=true is not supported");
            }
            if (!pre.path("use_regex").asBoolean(true)) {
                throw new BtlmException(file + ": pre_tokenizer.use_regex=false is not supported");
            }
        }
        for (String affix : new String[] {"continuing_subword_prefix", "end_of_word_suffix"}) {
            JsonNode v = model.get(affix);
            if (v != null && !v.isNull() && !v.asText().isEmpty()) {
                throw new BtlmException(file + ": model." + affix + " " + quote(v.asText()) + " is not supported");
            }
        }
    }

    private static void requirePath(Path path, String what) {
        if (path == null) {
            throw new BtlmException("no path given for " + what);
        }
    }

    private static JsonNode readJson(Path path) {
        try (InputStream in = Files.newInputStream(path)) {
            JsonNode node = JSON.readTree(in);
            if (node == null || node.isMissingNode()) {
                throw new BtlmException(path + ": empty file, expected JSON");
            }
            return node;
        } catch (JsonProcessingException e) {
            JsonLocation loc = e.getLocation();
            String at = loc == null ? "" : " at line " + loc.getLineNr() + ", column " + loc.getColumnNr();
            throw new BtlmException(path + ": not valid JSON" + at + ": " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw ioProblem(path, e);
        }
    }

    private static BtlmException ioProblem(Path path, IOException e) {
        if (e instanceof NoSuchFileException) {
            return new BtlmException(path + ": file not found", e);
        }
        if (e instanceof AccessDeniedException) {
            return new BtlmException(path + ": permission denied", e);
        }
        if (e instanceof CharacterCodingException) {
            return new BtlmException(path + ": not valid UTF-8", e);
        }
        return new BtlmException(path + ": cannot read (" + e + ")", e);
    }

    private static Map<String, Integer> readVocab(JsonNode node, String where) {
        if (!node.isObject()) {
            throw new BtlmException(where + ": not a JSON object (expected {\"token\": id, ...})");
        }
        Map<String, Integer> vocab = new HashMap<>(node.size() * 2);
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            JsonNode v = e.getValue();
            if (!v.isIntegralNumber() || !v.canConvertToInt() || v.intValue() < 0 || v.intValue() > MAX_ID) {
                throw new BtlmException(where + ": token " + quote(e.getKey()) + " has id " + v
                        + ", expected an integer in 0.." + MAX_ID);
            }
            vocab.put(e.getKey(), v.intValue());
        }
        if (vocab.isEmpty()) {
            throw new BtlmException(where + ": the vocabulary is empty");
        }
        return vocab;
    }

    private static List<Merge> readMergesTxt(Path path) {
        List<Merge> merges = new ArrayList<>(50_000);
        // A strict decoder, so that a corrupt file is reported instead of silently mis-merging.
        var decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        try (BufferedReader r = new BufferedReader(new java.io.InputStreamReader(Files.newInputStream(path), decoder))) {
            String line;
            int lineNo = 0;
            while ((line = r.readLine()) != null) {
                lineNo++;
                // HF skips "#version" header lines; blank lines carry no rule.
                if (line.isEmpty() || (line.startsWith("#version"))) {
                    continue;
                }
                int space = line.indexOf(' ');
                if (space <= 0 || space == line.length() - 1 || line.indexOf(' ', space + 1) >= 0) {
                    throw new BtlmException(path + " line " + lineNo
                            + ": expected two tokens separated by a space, got " + quote(line));
                }
                merges.add(new Merge(line.substring(0, space), line.substring(space + 1), path + " line " + lineNo));
            }
        } catch (IOException e) {
            throw ioProblem(path, e);
        }
        return merges;
    }

    private static List<Merge> readJsonMerges(JsonNode node, String file) {
        if (node == null || !node.isArray()) {
            throw new BtlmException(file + ": missing model.merges array");
        }
        List<Merge> merges = new ArrayList<>(node.size());
        for (int i = 0; i < node.size(); i++) {
            JsonNode m = node.get(i);
            String where = file + ": model.merges[" + i + "]";
            if (m.isTextual()) {
                // Older HF layout: "A B".
                String s = m.asText();
                int space = s.indexOf(' ');
                if (space <= 0 || space == s.length() - 1 || s.indexOf(' ', space + 1) >= 0) {
                    throw new BtlmException(where + ": expected two tokens separated by a space, got " + quote(s));
                }
                merges.add(new Merge(s.substring(0, space), s.substring(space + 1), where));
            } else if (m.isArray() && m.size() == 2 && m.get(0).isTextual() && m.get(1).isTextual()) {
                // Newer HF layout (tokenizers >= 0.20): ["A", "B"], which allows spaces in tokens.
                merges.add(new Merge(m.get(0).asText(), m.get(1).asText(), where));
            } else {
                throw new BtlmException(where + ": expected \"A B\" or [\"A\", \"B\"], got " + m);
            }
        }
        return merges;
    }

    private static List<AddedToken> readAddedTokens(JsonNode node, String file) {
        List<AddedToken> added = new ArrayList<>();
        if (node == null || node.isNull()) {
            return added;
        }
        if (!node.isArray()) {
            throw new BtlmException(file + ": added_tokens is not an array");
        }
        for (int i = 0; i < node.size(); i++) {
            JsonNode t = node.get(i);
            String where = file + ": added_tokens[" + i + "]";
            if (!t.isObject()) {
                throw new BtlmException(where + ": not an object");
            }
            JsonNode id = t.get("id");
            JsonNode content = t.get("content");
            if (id == null || !id.isIntegralNumber() || !id.canConvertToInt() || id.intValue() < 0 || id.intValue() > MAX_ID) {
                throw new BtlmException(where + ": \"id\" must be an integer in 0.." + MAX_ID);
            }
            if (content == null || !content.isTextual() || content.asText().isEmpty()) {
                throw new BtlmException(where + ": \"content\" must be a non-empty string");
            }
            added.add(new AddedToken(id.intValue(), content.asText(), flag(t, "special"), flag(t, "lstrip"), flag(t, "rstrip")));
        }
        return added;
    }

    private static boolean flag(JsonNode node, String name) {
        JsonNode v = node.get(name);
        return v != null && v.asBoolean(false);
    }

    private static Gpt2Tokenizer build(Map<String, Integer> vocab, List<Merge> merges, List<AddedToken> added,
                                       boolean ignoreMerges, String vocabSource) {
        int maxId = -1;
        for (int id : vocab.values()) {
            maxId = Math.max(maxId, id);
        }
        for (AddedToken t : added) {
            maxId = Math.max(maxId, t.id());
        }
        String[] idToText = new String[maxId + 1];
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            int id = e.getValue();
            if (idToText[id] != null) {
                throw new BtlmException(vocabSource + ": id " + id + " is used by both " + quote(idToText[id])
                        + " and " + quote(e.getKey()));
            }
            idToText[id] = e.getKey();
        }
        // An added token's own content wins for decoding, as in HF (added vocabulary first).
        for (AddedToken t : added) {
            idToText[t.id()] = t.content();
        }
        byte[][] idToBytes = new byte[idToText.length][];
        for (int id = 0; id < idToText.length; id++) {
            if (idToText[id] != null) {
                idToBytes[id] = ByteLevel.tokenBytes(idToText[id]);
            }
        }
        int[] byteToId = new int[256];
        for (int b = 0; b < 256; b++) {
            Integer id = vocab.get(String.valueOf(ByteLevel.charOf(b)));
            if (id == null) {
                throw new BtlmException(vocabSource + String.format(
                        ": no token for byte 0x%02X (%s); a byte-level BPE vocabulary needs all 256",
                        b, quote(String.valueOf(ByteLevel.charOf(b)))));
            }
            byteToId[b] = id;
        }
        MergeTable table = new MergeTable(merges.size());
        for (int rank = 0; rank < merges.size(); rank++) {
            Merge m = merges.get(rank);
            Integer left = vocab.get(m.left());
            Integer right = vocab.get(m.right());
            Integer merged = vocab.get(m.left() + m.right());
            if (left == null || right == null || merged == null) {
                String missing = left == null ? m.left() : right == null ? m.right() : m.left() + m.right();
                throw new BtlmException(m.where() + ": token " + quote(missing) + " is not in the vocabulary");
            }
            table.put(left, right, rank, merged);
        }
        return new Gpt2Tokenizer(idToText, idToBytes, byteToId, table, added, vocab, ignoreMerges);
    }

    /** Quotes a token for an error message, escaping what would not show on a terminal. */
    private static String quote(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 2).append('"');
        s.codePoints().limit(80).forEach(cp -> {
            if (cp == '"' || cp == '\\') {
                sb.append('\\').appendCodePoint(cp);
            } else if (Character.isISOControl(cp) || Character.getType(cp) == Character.FORMAT) {
                sb.append(String.format("\\u%04X", cp));
            } else {
                sb.appendCodePoint(cp);
            }
        });
        if (s.codePointCount(0, s.length()) > 80) {
            sb.append("...");
        }
        return sb.append('"').toString();
    }
}
