package org.btlm4j.eval;

import java.util.List;

/**
 * ARC-Easy and ARC-Challenge (fields {@code question}, {@code choices.text},
 * {@code choices.label}, {@code answerKey}): "Question: …\nAnswer:" and each choice's text.
 */
final class Arc extends Task {
    private final String name;

    Arc(String name) {
        this.name = name;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    protected String text(EvalDoc doc) {
        return "Question: " + doc.text("question") + "\nAnswer:";
    }

    @Override
    protected List<String> choices(EvalDoc doc) {
        return doc.texts("choices.text");
    }

    @Override
    protected int gold(EvalDoc doc) {
        return labelIndex(doc, doc.text("answerKey"));
    }

    /** Where {@code key} is among {@code choices.label}. */
    static int labelIndex(EvalDoc doc, String key) {
        int i = doc.texts("choices.label").indexOf(key);
        if (i < 0) {
            throw doc.bad("answerKey", "\"" + key + "\" is none of choices.label " + doc.texts("choices.label"));
        }
        return i;
    }
}
