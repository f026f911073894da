package org.btlm4j.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * HellaSwag (fields {@code activity_label}, {@code ctx_a}, {@code ctx_b}, {@code endings},
 * {@code label}): "activity: ctx_a Ctx_b" followed by each ending, all cleaned of WikiHow's
 * bracketed artifacts as lm-eval does.
 */
final class Hellaswag extends Task {
    private static final Pattern BRACKETS = Pattern.compile("\\[.*?\\]");

    @Override
    public String name() {
        return "hellaswag";
    }

    @Override
    protected String text(EvalDoc doc) {
        String ctx = doc.text("ctx_a") + " " + capitalize(doc.text("ctx_b"));
        return preprocess(doc.text("activity_label") + ": " + ctx);
    }

    @Override
    protected List<String> choices(EvalDoc doc) {
        List<String> out = new ArrayList<>();
        for (String ending : doc.texts("endings")) {
            out.add(preprocess(ending));
        }
        return out;
    }

    @Override
    protected int gold(EvalDoc doc) {
        return doc.integer("label");
    }

    /** Strip, " [title]" → ". ", drop any [bracketed] text, then one pass of "  " → " ". */
    static String preprocess(String text) {
        String t = text.strip();
        t = t.replace(" [title]", ". ");
        t = BRACKETS.matcher(t).replaceAll("");
        return t.replace("  ", " ");
    }

    /** Python's str.capitalize: the first character upper case, the rest lower case. */
    static String capitalize(String s) {
        if (s.isEmpty()) {
            return s;
        }
        int first = s.offsetByCodePoints(0, 1);
        return s.substring(0, first).toUpperCase(Locale.ROOT) + s.substring(first).toLowerCase(Locale.ROOT);
    }
}
