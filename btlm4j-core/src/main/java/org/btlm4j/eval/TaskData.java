package org.btlm4j.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.btlm4j.BtlmException;

/**
 * Reads a task's records: a JSONL file (one JSON object per line, as the Hugging Face datasets
 * export with {@code to_json}) or a JSON array of objects.
 */
public final class TaskData {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TaskData() {
    }

    public static List<EvalDoc> read(Path file) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new BtlmException(file + ": file not found");
        } catch (java.nio.charset.MalformedInputException e) {
            throw new BtlmException(file + ": not valid UTF-8");
        } catch (IOException e) {
            throw new BtlmException(file + ": cannot read (" + e.getMessage() + ")");
        }
        String name = file.getFileName().toString();
        List<EvalDoc> docs = new ArrayList<>();
        if (text.stripLeading().startsWith("[")) {
            JsonNode all = parse(text, name);
            for (int i = 0; i < all.size(); i++) {
                docs.add(doc(all.get(i), name + " record " + (i + 1)));
            }
        } else {
            String[] lines = text.split("\r?\n");
            for (int i = 0; i < lines.length; i++) {
                if (!lines[i].isBlank()) {
                    docs.add(doc(parse(lines[i], name + " line " + (i + 1)), name + " line " + (i + 1)));
                }
            }
        }
        if (docs.isEmpty()) {
            throw new BtlmException(file + ": no records (expected JSONL, one object per line, or a JSON array)");
        }
        return docs;
    }

    private static JsonNode parse(String text, String where) {
        try {
            return JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new BtlmException(where + ": not valid JSON (" + e.getOriginalMessage() + ")");
        }
    }

    private static EvalDoc doc(JsonNode n, String where) {
        if (n == null || !n.isObject()) {
            throw new BtlmException(where + ": not a JSON object");
        }
        return new EvalDoc(n, where);
    }
}
