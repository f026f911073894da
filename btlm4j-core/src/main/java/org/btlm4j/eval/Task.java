package org.btlm4j.eval;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.btlm4j.BtlmException;

/**
 * A log-likelihood task in the lm-evaluation-harness way: a document becomes a context (the
 * task's description, the solved few-shot examples, then the document's text) and one
 * continuation per answer choice, each scored as log p(continuation | context).
 *
 * <p>A subclass says how a document of its dataset reads: {@link #text}, {@link #choices},
 * {@link #gold}; the rest (few-shot rendering with "\n\n" between examples, " " before the
 * answer) is lm-eval's default and shared here.
 */
public abstract class Task {

    /** The metrics a task reports, as lm-eval names them. */
    public enum Metric { ACC, ACC_NORM, PERPLEXITY }

    /** One scoring request: log p(continuation | context). */
    public record Request(String context, String continuation) {
    }

    /**
     * A document made ready to score: its requests (one per choice), the index of the right one,
     * and each choice's length in UTF-8 bytes (the acc_norm divisor).
     */
    public record Instance(List<Request> requests, int gold, int[] choiceBytes) {
    }

    /** The name on the command line ({@code hellaswag}, {@code arc_easy}, …). */
    public abstract String name();

    /** The metrics lm-eval reports for this task. */
    public List<Metric> metrics() {
        return List.of(Metric.ACC, Metric.ACC_NORM);
    }

    /**
     * Whether acc is "greedy decoding gives the continuation" (one continuation per document, as
     * LAMBADA) rather than "the right choice is the most likely".
     */
    public boolean greedyAccuracy() {
        return false;
    }

    /** Few-shot examples when {@code --shots} is not given (lm-eval's default for the task). */
    public int defaultShots() {
        return 0;
    }

    /** The question part of a document: what comes before the answer. */
    protected abstract String text(EvalDoc doc);

    /** The answer choices, without the delimiter before them. */
    protected abstract List<String> choices(EvalDoc doc);

    /** Index of the right choice. */
    protected abstract int gold(EvalDoc doc);

    /** A line before everything (MMLU's subject line); empty by default. */
    protected String description(EvalDoc doc) {
        return "";
    }

    /** Between the context and a choice. */
    protected String targetDelimiter() {
        return " ";
    }

    /** A solved example as the few-shot block shows it: the text, the delimiter, the right answer. */
    protected String solved(EvalDoc example) {
        return text(example) + targetDelimiter() + choices(example).get(checkedGold(example));
    }

    /** The description and the solved examples, each followed by a blank line. */
    public final String fewshotPrefix(EvalDoc doc, List<EvalDoc> examples) {
        StringBuilder b = new StringBuilder(description(doc));
        for (EvalDoc ex : examples) {
            b.append(solved(ex)).append("\n\n");
        }
        return b.toString();
    }

    /** The requests of {@code doc} after {@code prefix} (see {@link #fewshotPrefix}). */
    public Instance instance(EvalDoc doc, String prefix) {
        List<String> choices = choices(doc);
        int gold = checkedGold(doc);
        String context = prefix + text(doc);
        List<Request> requests = new ArrayList<>(choices.size());
        for (String c : choices) {
            requests.add(new Request(context, targetDelimiter() + c));
        }
        return new Instance(requests, gold, bytes(choices));
    }

    static int[] bytes(List<String> choices) {
        int[] b = new int[choices.size()];
        for (int i = 0; i < b.length; i++) {
            b[i] = choices.get(i).getBytes(StandardCharsets.UTF_8).length;
        }
        return b;
    }

    /** {@link #gold}, checked against the number of choices. */
    protected final int checkedGold(EvalDoc doc) {
        int g = gold(doc);
        int n = choices(doc).size();
        if (g < 0 || g >= n) {
            throw new BtlmException(doc.where() + ": the answer index " + g + " is not one of the " + n + " choices");
        }
        return g;
    }

    /**
     * The few-shot examples for document number {@code index}: {@code k} distinct records of
     * {@code pool} (other than the document itself) drawn with a generator seeded by {@code seed}
     * and {@code index}, so a run is reproducible and a document's examples do not depend on
     * {@code --limit}.
     */
    public List<EvalDoc> fewshotExamples(EvalDoc doc, int index, List<EvalDoc> pool, int k, long seed) {
        if (k == 0) {
            return List.of();
        }
        // A pool that is the evaluated split itself must not give a document its own answer.
        List<EvalDoc> candidates = pool.stream().filter(ex -> !ex.json().equals(doc.json())).toList();
        if (candidates.size() < k) {
            throw new BtlmException(name() + ": " + k + " few-shot examples asked for, but the few-shot data holds "
                    + "only " + candidates.size() + " other records");
        }
        SplittableRandom random = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + index);
        int[] order = new int[candidates.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        List<EvalDoc> out = new ArrayList<>(k);
        for (int i = 0; i < k; i++) { // a partial Fisher–Yates shuffle
            int j = i + random.nextInt(order.length - i);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
            out.add(candidates.get(order[i]));
        }
        return out;
    }
}
