package org.btlm4j.eval;

import java.util.List;

/**
 * LAMBADA (OpenAI's version; field {@code text}): the text without its last word is the context,
 * " " + the last word the continuation. Reported as lm-eval does: acc, the share of documents
 * whose last word greedy decoding would produce, and perplexity, exp of minus the mean of the
 * last words' log-likelihoods.
 */
final class Lambada extends Task {
    @Override
    public String name() {
        return "lambada_openai";
    }

    @Override
    public List<Metric> metrics() {
        return List.of(Metric.ACC, Metric.PERPLEXITY);
    }

    @Override
    public boolean greedyAccuracy() {
        return true;
    }

    /** Everything before the last space-separated word. */
    @Override
    protected String text(EvalDoc doc) {
        String t = doc.text("text");
        int space = lastSpace(doc, t);
        return t.substring(0, space);
    }

    /** The one "choice": the last word. */
    @Override
    protected List<String> choices(EvalDoc doc) {
        String t = doc.text("text");
        return List.of(t.substring(lastSpace(doc, t) + 1));
    }

    @Override
    protected int gold(EvalDoc doc) {
        return 0;
    }

    private static int lastSpace(EvalDoc doc, String text) {
        int i = text.lastIndexOf(' ');
        if (i < 0) {
            throw doc.bad("text", "has a single word: nothing to predict it from");
        }
        return i;
    }

    /** The context and its last word are joined by the space the word keeps: no extra delimiter. */
    @Override
    protected String targetDelimiter() {
        return "";
    }

    @Override
    protected String solved(EvalDoc example) {
        return example.text("text");
    }

    @Override
    public Instance instance(EvalDoc doc, String prefix) {
        String word = choices(doc).get(0);
        return new Instance(List.of(new Request(prefix + text(doc), " " + word)), 0, bytes(List.of(word)));
    }
}
