package org.btlm4j.eval;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import org.btlm4j.BtlmException;

/**
 * One record of a task's data file (a JSON object in the Hugging Face dataset's field names) and
 * where it came from, so that a missing or malformed field is reported with its file and line.
 */
public record EvalDoc(JsonNode json, String where) {

    /** A text field; nested fields as {@code "choices.text"}. */
    public String text(String field) {
        JsonNode n = node(field);
        if (!n.isValueNode()) {
            throw bad(field, "is not a text");
        }
        return n.asText();
    }

    /** An integer field, given as a number or as a string of digits ("2"). */
    public int integer(String field) {
        JsonNode n = node(field);
        if (n.isIntegralNumber()) {
            return n.intValue();
        }
        if (n.isBoolean()) {
            return n.booleanValue() ? 1 : 0;
        }
        try {
            return Integer.parseInt(n.asText().trim());
        } catch (NumberFormatException e) {
            throw bad(field, "is not an integer: " + n);
        }
    }

    /** A list of texts. */
    public List<String> texts(String field) {
        JsonNode n = node(field);
        if (!n.isArray()) {
            throw bad(field, "is not a list");
        }
        List<String> out = new ArrayList<>(n.size());
        for (JsonNode e : n) {
            if (!e.isValueNode()) {
                throw bad(field, "holds a non-text element");
            }
            out.add(e.asText());
        }
        return out;
    }

    public boolean has(String field) {
        JsonNode n = json;
        for (String part : field.split("\\.")) {
            n = n.get(part);
            if (n == null || n.isNull()) {
                return false;
            }
        }
        return true;
    }

    private JsonNode node(String field) {
        JsonNode n = json;
        for (String part : field.split("\\.")) {
            n = n.get(part);
            if (n == null || n.isNull()) {
                throw new BtlmException(where + ": missing field \"" + field + "\"");
            }
        }
        return n;
    }

    /** A problem with this record's content. */
    public BtlmException bad(String field, String problem) {
        return new BtlmException(where + ": field \"" + field + "\" " + problem);
    }
}
