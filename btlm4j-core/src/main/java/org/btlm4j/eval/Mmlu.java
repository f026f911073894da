package org.btlm4j.eval;

import java.util.ArrayList;
import java.util.List;
import org.btlm4j.BtlmException;

/**
 * MMLU (fields {@code question}, {@code subject}, {@code choices} (four texts), {@code answer}
 * 0–3 or "A"–"D"), 5-shot by default as the model card reports it: the subject's description
 * line, the first k solved examples of the same subject from the dev split (lm-eval's
 * {@code first_n}), then "question\nA. …\nB. …\nC. …\nD. …\nAnswer:" with the letters " A" … " D"
 * as choices. Accuracy over all questions together (lm-eval weights subjects by size).
 */
final class Mmlu extends Task {
    private static final List<String> LETTERS = List.of("A", "B", "C", "D");

    @Override
    public String name() {
        return "mmlu";
    }

    @Override
    public List<Metric> metrics() {
        return List.of(Metric.ACC);
    }

    @Override
    public int defaultShots() {
        return 5;
    }

    @Override
    protected String description(EvalDoc doc) {
        return "The following are multiple choice questions (with answers) about "
                + doc.text("subject").replace('_', ' ') + ".\n\n";
    }

    @Override
    protected String text(EvalDoc doc) {
        List<String> c = options(doc);
        StringBuilder b = new StringBuilder(doc.text("question").strip());
        for (int i = 0; i < LETTERS.size(); i++) {
            b.append('\n').append(LETTERS.get(i)).append(". ").append(c.get(i));
        }
        return b.append("\nAnswer:").toString();
    }

    private static List<String> options(EvalDoc doc) {
        List<String> c = doc.texts("choices");
        if (c.size() != LETTERS.size()) {
            throw doc.bad("choices", "has " + c.size() + " entries; MMLU questions have 4");
        }
        return c;
    }

    @Override
    protected List<String> choices(EvalDoc doc) {
        return LETTERS;
    }

    @Override
    protected int gold(EvalDoc doc) {
        String a = doc.text("answer").strip();
        int letter = LETTERS.indexOf(a);
        return letter >= 0 ? letter : doc.integer("answer");
    }

    /** The first {@code k} dev records of the document's subject, in file order (lm-eval's first_n). */
    @Override
    public List<EvalDoc> fewshotExamples(EvalDoc doc, int index, List<EvalDoc> pool, int k, long seed) {
        if (k == 0) {
            return List.of();
        }
        String subject = doc.text("subject");
        List<EvalDoc> out = new ArrayList<>(k);
        for (EvalDoc ex : pool) {
            if (out.size() < k && ex.text("subject").equals(subject)) {
                out.add(ex);
            }
        }
        if (out.size() < k) {
            throw new BtlmException("mmlu: " + k + " few-shot examples of subject " + subject + " asked for, but the "
                    + "few-shot data holds only " + out.size());
        }
        return out;
    }
}
