package org.btlm4j.eval;

import java.util.List;

/**
 * WinoGrande (fields {@code sentence} with one "_", {@code option1}, {@code option2},
 * {@code answer} "1" or "2"), scored partially as lm-eval does: the sentence up to the blank,
 * filled with each option, is a context of its own, and the shared rest of the sentence is the
 * one continuation scored under each.
 */
final class Winogrande extends Task {
    @Override
    public String name() {
        return "winogrande";
    }

    @Override
    public List<Metric> metrics() {
        return List.of(Metric.ACC);
    }

    /** The sentence up to the blank, filled with each option: the contexts. */
    @Override
    protected List<String> choices(EvalDoc doc) {
        String sentence = doc.text("sentence");
        int blank = blank(doc, sentence);
        return List.of(sentence.substring(0, blank) + doc.text("option1"),
                sentence.substring(0, blank) + doc.text("option2"));
    }

    /** The rest of the sentence after the blank: the continuation. */
    private static String suffix(EvalDoc doc) {
        String sentence = doc.text("sentence");
        return sentence.substring(blank(doc, sentence) + 1).strip();
    }

    private static int blank(EvalDoc doc, String sentence) {
        int i = sentence.indexOf('_');
        if (i < 0) {
            throw doc.bad("sentence", "has no blank \"_\"");
        }
        return i;
    }

    @Override
    protected String text(EvalDoc doc) {
        return choices(doc).get(checkedGold(doc));
    }

    @Override
    protected int gold(EvalDoc doc) {
        return doc.integer("answer") - 1;
    }

    @Override
    protected String solved(EvalDoc example) {
        return text(example) + targetDelimiter() + suffix(example);
    }

    @Override
    public Instance instance(EvalDoc doc, String prefix) {
        String continuation = targetDelimiter() + suffix(doc);
        List<String> filled = choices(doc);
        List<Request> requests = filled.stream().map(c -> new Request(prefix + c, continuation)).toList();
        int n = continuation.strip().getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
        return new Instance(requests, checkedGold(doc), new int[] {n, n});
    }
}
