package org.btlm4j.eval;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import org.btlm4j.ContinuationScore;
import org.btlm4j.tokenizer.Gpt2Tokenizer;

/**
 * Runs a {@link Task} over documents and computes lm-eval's metrics.
 *
 * <p>Each request is tokenized as lm-eval does (trailing spaces of the context move to the
 * continuation; the continuation's tokens are those of context + continuation after the
 * context's own tokens; an empty context is the end-of-text token) and scored with
 * {@link BtlmModel#scoreContinuation}. The requests of {@code batch} documents are run in the
 * order of their tokens, so that requests sharing leading tokens (the choices of one document,
 * documents with the same few-shot block) follow each other and the model's prompt cache computes
 * the shared part once.
 */
public final class Evaluator {

    /**
     * @param shots few-shot examples (negative: the task's default)
     * @param limit documents to evaluate (0: all)
     * @param batch documents whose requests are ordered together
     * @param seed  of the few-shot draws
     */
    public record Options(int shots, int limit, int batch, long seed) {
        public Options {
            if (limit < 0) {
                throw new BtlmException("--limit must be 0 (all) or more, got " + limit);
            }
            if (batch < 1) {
                throw new BtlmException("--batch must be at least 1, got " + batch);
            }
        }
    }

    /** A metric's mean over documents and its standard error (NaN where not defined). */
    public record Value(double value, double stderr) {
    }

    /** One task's figures. */
    public record TaskResult(String task, int docs, int shots, Map<Task.Metric, Value> metrics) {
    }

    /** A tokenized request: document, choice, the tokens and where the continuation starts. */
    private record Encoded(int doc, int choice, int[] ids, int from) {
    }

    /** What is prepared before scoring: the documents' instances and their tokenized requests. */
    public static final class Plan {
        private final Task task;
        private final int shots;
        private final List<Task.Instance> instances;
        private final List<Encoded> requests;

        private Plan(Task task, int shots, List<Task.Instance> instances, List<Encoded> requests) {
            this.task = task;
            this.shots = shots;
            this.instances = instances;
            this.requests = requests;
        }

        /** Number of scoring requests (the progress total). */
        public int requests() {
            return requests.size();
        }

        public int docs() {
            return instances.size();
        }

        public int shots() {
            return shots;
        }
    }

    private Evaluator() {
    }

    /** Builds every document's context and choices and tokenizes them. */
    public static Plan plan(BtlmModel model, Task task, List<EvalDoc> docs, List<EvalDoc> fewshot, Options o) {
        int shots = o.shots() < 0 ? task.defaultShots() : o.shots();
        if (shots > 0 && (fewshot == null || fewshot.isEmpty())) {
            throw new BtlmException(task.name() + ": " + shots + "-shot needs solved examples: give the train or dev "
                    + "split with --fewshot-data FILE (or --shots 0)");
        }
        int n = o.limit() == 0 ? docs.size() : Math.min(o.limit(), docs.size());
        Gpt2Tokenizer tok = model.tokenizer();
        int eot = model.config().eosTokenId();
        int context = model.contextLength();
        List<Task.Instance> instances = new ArrayList<>(n);
        List<Encoded> requests = new ArrayList<>();
        for (int d = 0; d < n; d++) {
            EvalDoc doc = docs.get(d);
            String prefix = task.fewshotPrefix(doc, task.fewshotExamples(doc, d, fewshot, shots, o.seed()));
            Task.Instance inst = task.instance(doc, prefix);
            instances.add(inst);
            Map<String, int[]> contexts = new HashMap<>();
            for (int c = 0; c < inst.requests().size(); c++) {
                Task.Request r = inst.requests().get(c);
                requests.add(encode(tok, eot, context, d, c, r, contexts, doc.where()));
            }
        }
        return new Plan(task, shots, instances, requests);
    }

    /** lm-eval's tokenization of one (context, continuation) pair, cut to the last {@code context} tokens. */
    private static Encoded encode(Gpt2Tokenizer tok, int eot, int contextLength, int doc, int choice,
            Task.Request r, Map<String, int[]> contexts, String where) {
        String ctx = r.context();
        String cont = r.continuation();
        int spaces = ctx.length() - ctx.stripTrailing().length();
        if (spaces > 0) {
            cont = ctx.substring(ctx.length() - spaces) + cont;
            ctx = ctx.substring(0, ctx.length() - spaces);
        }
        int[] ids;
        int from;
        if (ctx.isEmpty()) {
            int[] contIds = tok.encode(cont);
            ids = new int[contIds.length + 1];
            ids[0] = eot;
            System.arraycopy(contIds, 0, ids, 1, contIds.length);
            from = 1;
        } else {
            final String c = ctx;
            int[] ctxIds = contexts.computeIfAbsent(c, tok::encode);
            int[] whole = tok.encode(ctx + cont);
            from = ctxIds.length;
            ids = Arrays.copyOf(ctxIds, Math.max(from, whole.length));
            System.arraycopy(whole, from, ids, from, Math.max(0, whole.length - from));
        }
        if (ids.length == from) {
            throw new BtlmException(where + ": the continuation \"" + r.continuation() + "\" has no tokens of its own");
        }
        if (ids.length > contextLength) {
            int drop = ids.length - contextLength;
            if (drop >= from) {
                throw new BtlmException(where + ": the continuation alone has " + (ids.length - from)
                        + " tokens, more than the context of " + contextLength);
            }
            ids = Arrays.copyOfRange(ids, drop, ids.length);
            from -= drop;
        }
        return new Encoded(doc, choice, ids, from);
    }

    /** Scores every request of {@code plan}, telling {@code progress} how many finished, and computes the metrics. */
    public static TaskResult run(BtlmModel model, Plan plan, Options o, IntConsumer progress) {
        List<Task.Instance> instances = plan.instances;
        double[][] ll = new double[instances.size()][];
        boolean[][] greedy = new boolean[instances.size()][];
        for (int d = 0; d < instances.size(); d++) {
            ll[d] = new double[instances.get(d).requests().size()];
            greedy[d] = new boolean[ll[d].length];
        }
        List<Encoded> all = plan.requests;
        int i = 0;
        while (i < all.size()) {
            int firstDoc = all.get(i).doc();
            int j = i;
            while (j < all.size() && all.get(j).doc() < firstDoc + o.batch()) {
                j++;
            }
            List<Encoded> batch = new ArrayList<>(all.subList(i, j));
            batch.sort((a, b) -> Arrays.compare(a.ids(), b.ids()));
            for (Encoded e : batch) {
                ContinuationScore s = model.scoreContinuation(e.ids(), e.from());
                ll[e.doc()][e.choice()] = s.logprob();
                greedy[e.doc()][e.choice()] = s.greedy();
                if (progress != null) {
                    progress.accept(1);
                }
            }
            i = j;
        }
        return metrics(plan.task, plan.shots, instances, ll, greedy);
    }

    /** lm-eval's per-document metrics and their means with standard errors. */
    static TaskResult metrics(Task task, int shots, List<Task.Instance> instances, double[][] ll, boolean[][] greedy) {
        int n = instances.size();
        Map<Task.Metric, Value> out = new EnumMap<>(Task.Metric.class);
        for (Task.Metric m : task.metrics()) {
            double[] per = new double[n];
            for (int d = 0; d < n; d++) {
                Task.Instance inst = instances.get(d);
                per[d] = switch (m) {
                    case ACC -> task.greedyAccuracy() ? (greedy[d][0] ? 1 : 0)
                            : argmax(ll[d], null) == inst.gold() ? 1 : 0;
                    case ACC_NORM -> argmax(ll[d], inst.choiceBytes()) == inst.gold() ? 1 : 0;
                    case PERPLEXITY -> ll[d][0];
                };
            }
            if (m == Task.Metric.PERPLEXITY) {
                out.put(m, new Value(Math.exp(-mean(per)), Double.NaN));
            } else {
                out.put(m, new Value(mean(per), meanStderr(per)));
            }
        }
        return new TaskResult(task.name(), n, shots, out);
    }

    /** The first index of the largest ll (divided by the byte lengths when given), as numpy's argmax. */
    static int argmax(double[] ll, int[] bytes) {
        int best = 0;
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < ll.length; i++) {
            double v = bytes == null ? ll[i] : ll[i] / bytes[i];
            if (v > max) {
                max = v;
                best = i;
            }
        }
        return best;
    }

    static double mean(double[] v) {
        double s = 0;
        for (double x : v) {
            s += x;
        }
        return s / v.length;
    }

    /** lm-eval's stderr of a mean: the sample standard deviation (n − 1) over √n; NaN below two items. */
    public static double meanStderr(double[] v) {
        if (v.length < 2) {
            return Double.NaN;
        }
        double m = mean(v);
        double s = 0;
        for (double x : v) {
            s += (x - m) * (x - m);
        }
        return Math.sqrt(s / (v.length - 1)) / Math.sqrt(v.length);
    }

    /**
     * The unweighted mean of each metric over the tasks that report it, with the standard error
     * of a mean of independent estimates, √(Σ se²) / k.
     */
    public static Map<Task.Metric, Value> average(List<TaskResult> results) {
        Map<Task.Metric, Value> out = new EnumMap<>(Task.Metric.class);
        for (Task.Metric m : List.of(Task.Metric.ACC, Task.Metric.ACC_NORM)) {
            double sum = 0;
            double var = 0;
            int k = 0;
            for (TaskResult r : results) {
                Value v = r.metrics().get(m);
                if (v != null) {
                    sum += v.value();
                    var += v.stderr() * v.stderr();
                    k++;
                }
            }
            if (k > 0) {
                out.put(m, new Value(sum / k, Math.sqrt(var) / k));
            }
        }
        return out;
    }
}
