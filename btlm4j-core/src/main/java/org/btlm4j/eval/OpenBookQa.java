package org.btlm4j.eval;

import java.util.List;

/**
 * OpenBookQA (fields {@code question_stem}, {@code choices.text}, {@code choices.label},
 * {@code answerKey}): the bare question stem, then each choice.
 */
final class OpenBookQa extends Task {
    @Override
    public String name() {
        return "openbookqa";
    }

    @Override
    protected String text(EvalDoc doc) {
        return doc.text("question_stem");
    }

    @Override
    protected List<String> choices(EvalDoc doc) {
        return doc.texts("choices.text");
    }

    @Override
    protected int gold(EvalDoc doc) {
        return Arc.labelIndex(doc, doc.text("answerKey").stripLeading());
    }
}
