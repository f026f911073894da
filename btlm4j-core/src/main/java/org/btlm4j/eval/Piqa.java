package org.btlm4j.eval;

import java.util.List;

/** PIQA (fields {@code goal}, {@code sol1}, {@code sol2}, {@code label}): "Question: goal\nAnswer:". */
final class Piqa extends Task {
    @Override
    public String name() {
        return "piqa";
    }

    @Override
    protected String text(EvalDoc doc) {
        return "Question: " + doc.text("goal") + "\nAnswer:";
    }

    @Override
    protected List<String> choices(EvalDoc doc) {
        return List.of(doc.text("sol1"), doc.text("sol2"));
    }

    @Override
    protected int gold(EvalDoc doc) {
        return doc.integer("label");
    }
}
