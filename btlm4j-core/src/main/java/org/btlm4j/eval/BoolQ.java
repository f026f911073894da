package org.btlm4j.eval;

import java.util.List;

/**
 * BoolQ (fields {@code passage}, {@code question}, and {@code label} 0/1 as in SuperGLUE, or
 * {@code answer} true/false as in google/boolq): "passage\nQuestion: question?\nAnswer:" with
 * the choices " no" and " yes"; lm-eval reports accuracy only.
 */
final class BoolQ extends Task {
    @Override
    public String name() {
        return "boolq";
    }

    @Override
    public List<Metric> metrics() {
        return List.of(Metric.ACC);
    }

    @Override
    protected String text(EvalDoc doc) {
        return doc.text("passage") + "\nQuestion: " + doc.text("question") + "?\nAnswer:";
    }

    @Override
    protected List<String> choices(EvalDoc doc) {
        return List.of("no", "yes");
    }

    @Override
    protected int gold(EvalDoc doc) {
        return doc.has("label") ? doc.integer("label") : doc.integer("answer");
    }
}
