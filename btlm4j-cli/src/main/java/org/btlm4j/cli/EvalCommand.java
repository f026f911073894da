package org.btlm4j.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import org.btlm4j.eval.EvalDoc;
import org.btlm4j.eval.Evaluator;
import org.btlm4j.eval.Task;
import org.btlm4j.eval.TaskData;
import org.btlm4j.eval.Tasks;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Multiple-choice log-likelihood benchmarks as lm-evaluation-harness scores them: acc and "
                + "acc_norm with standard errors, per task and averaged.",
        footer = {"%nTasks: hellaswag, arc_easy, arc_challenge, piqa, winogrande, openbookqa, boolq, lambada_openai, "
                + "mmlu. --task and --data pair up in order (and --fewshot-data, when given, too).",
            "%nExamples:",
            "  btlm eval -m btlm-3b-8k-base --task arc_easy --data arc_easy_test.jsonl",
            "  btlm eval -m btlm-3b-8k-base --task mmlu --data mmlu_test.jsonl --fewshot-data mmlu_dev.jsonl "
                    + "--json mmlu.json"})
final class EvalCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @ArgGroup(exclusive = false, heading = "Model:%n")
    ModelOptions model = new ModelOptions();

    @Option(names = "--task", paramLabel = "T", required = true, split = ",",
            description = "Task name(s), e.g. hellaswag or arc_easy,piqa.")
    List<String> tasks;

    @Option(names = "--data", paramLabel = "FILE", required = true, split = ",",
            description = "Each task's data (JSONL or a JSON array, the Hugging Face dataset's fields).")
    List<Path> data;

    @Option(names = "--fewshot-data", paramLabel = "FILE", split = ",",
            description = "Each task's train/dev split to draw few-shot examples from.")
    List<Path> fewshotData = new ArrayList<>();

    @Option(names = "--shots", paramLabel = "K", defaultValue = "-1",
            description = "Few-shot examples (default: the task's, 5 for mmlu, else 0).")
    int shots;

    @Option(names = "--limit", paramLabel = "N", defaultValue = "0", description = "Only the first N documents of each task.")
    int limit;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "32",
            description = "Documents whose requests are ordered together so shared prefixes are computed once "
                    + "(default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "1234", description = "Seed of the few-shot draws (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--json", paramLabel = "OUT", description = "Also write the results as JSON to OUT ('-': standard output).")
    String json;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (data.size() != tasks.size()) {
            throw new BtlmException("give one --data file per task: " + tasks.size() + " tasks, " + data.size() + " files");
        }
        if (!fewshotData.isEmpty() && fewshotData.size() != tasks.size()) {
            throw new BtlmException("give one --fewshot-data file per task, or none: " + tasks.size() + " tasks, "
                    + fewshotData.size() + " files");
        }
        if (shots < -1) {
            throw new BtlmException("--shots must be 0 or more, got " + shots);
        }
        List<Task> chosen = tasks.stream().map(t -> Tasks.byName(t.strip().toLowerCase(Locale.ROOT))).toList();
        Evaluator.Options options = new Evaluator.Options(shots, limit, batch, seed);
        List<Evaluator.TaskResult> results = new ArrayList<>();
        try (BtlmModel m = model.load(err)) {
            for (int i = 0; i < chosen.size(); i++) {
                Task task = chosen.get(i);
                List<EvalDoc> docs = TaskData.read(data.get(i));
                List<EvalDoc> fewshot = fewshotData.isEmpty() ? List.of() : TaskData.read(fewshotData.get(i));
                Evaluator.Plan plan = Evaluator.plan(m, task, docs, fewshot, options);
                long start = System.nanoTime();
                long forwarded = m.forwardedTokens();
                Evaluator.TaskResult r;
                try (ProgressBar bar = new ProgressBar(err, task.name(), plan.requests(), ProgressBar.Unit.ITEMS)) {
                    r = Evaluator.run(m, plan, options, bar::step);
                }
                if (model.verbose) {
                    err.printf(Locale.ROOT, "btlm: %s: %d documents, %d requests, %d tokens run in %.1f s%n", task.name(),
                            plan.docs(), plan.requests(), m.forwardedTokens() - forwarded,
                            (System.nanoTime() - start) / 1e9);
                }
                results.add(r);
            }
        }
        Map<Task.Metric, Evaluator.Value> average = Evaluator.average(results);
        out.print(table(results, average));
        if (json != null) {
            String text = Json.write(toJson(results, average)) + "\n";
            if (json.equals("-")) {
                out.print(text);
            } else {
                Files.writeString(Path.of(json), text, StandardCharsets.UTF_8);
            }
        }
        out.flush();
        return 0;
    }

    static String table(List<Evaluator.TaskResult> results, Map<Task.Metric, Evaluator.Value> average) {
        StringBuilder b = new StringBuilder();
        b.append("| task | shots | n | acc | acc_norm | perplexity |\n|---|---:|---:|---:|---:|---:|\n");
        for (Evaluator.TaskResult r : results) {
            b.append(String.format(Locale.ROOT, "| %s | %d | %d | %s | %s | %s |%n", r.task(), r.shots(), r.docs(),
                    cell(r.metrics().get(Task.Metric.ACC)), cell(r.metrics().get(Task.Metric.ACC_NORM)),
                    r.metrics().containsKey(Task.Metric.PERPLEXITY)
                            ? String.format(Locale.ROOT, "%.3f", r.metrics().get(Task.Metric.PERPLEXITY).value()) : "-"));
        }
        if (results.size() > 1) {
            b.append(String.format(Locale.ROOT, "| average | | | %s | %s | |%n", cell(average.get(Task.Metric.ACC)),
                    cell(average.get(Task.Metric.ACC_NORM))));
        }
        return b.toString();
    }

    private static String cell(Evaluator.Value v) {
        if (v == null) {
            return "-";
        }
        return Double.isNaN(v.stderr()) ? String.format(Locale.ROOT, "%.4f", v.value())
                : String.format(Locale.ROOT, "%.4f ± %.4f", v.value(), v.stderr());
    }

    static Map<String, Object> toJson(List<Evaluator.TaskResult> results, Map<Task.Metric, Evaluator.Value> average) {
        Map<String, Object> tasks = new LinkedHashMap<>();
        for (Evaluator.TaskResult r : results) {
            Map<String, Object> t = new LinkedHashMap<>();
            t.put("n", r.docs());
            t.put("shots", r.shots());
            put(t, r.metrics());
            tasks.put(r.task(), t);
        }
        Map<String, Object> avg = new LinkedHashMap<>();
        put(avg, average);
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("results", tasks);
        o.put("average", avg);
        return o;
    }

    private static void put(Map<String, Object> into, Map<Task.Metric, Evaluator.Value> metrics) {
        for (Map.Entry<Task.Metric, Evaluator.Value> e : metrics.entrySet()) {
            String name = e.getKey().name().toLowerCase(Locale.ROOT);
            into.put(name, e.getValue().value());
            double se = e.getValue().stderr();
            into.put(name + "_stderr", Double.isNaN(se) ? null : se);
        }
    }
}
