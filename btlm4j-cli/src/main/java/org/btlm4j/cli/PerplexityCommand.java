package org.btlm4j.cli;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.btlm4j.BtlmModel;
import org.btlm4j.generate.Perplexity;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "perplexity", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Perplexity of a text (HF's definition), in sliding windows when it is longer than the window.",
        footer = {"%nExamples:", "  btlm perplexity -m models/btlm-demo -f text.txt",
            "  btlm perplexity -m cerebras/btlm-3b-8k-base -f wiki.test.raw --window 2048 --stride 512 --json",
            "  btlm perplexity -m cerebras/btlm-3b-8k-base -f wiki.test.raw --stride 512 --bucket 1024",
            "  btlm perplexity -m cerebras/btlm-3b-8k-base -f long.txt --ctx 16384 --alibi-scaling dynamic --bucket 2048 --json"})
final class PerplexityCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @ArgGroup(exclusive = false, heading = "Model:%n")
    ModelOptions model = new ModelOptions();

    @Mixin
    InputMixin input;

    @Option(names = "--window", paramLabel = "N", description = "Tokens per window (default: the context length, -c).")
    int window;

    @Option(names = "--stride", paramLabel = "S", description = "Tokens the window moves by (default: half the window).")
    int stride;

    @Option(names = "--bucket", paramLabel = "N", defaultValue = "0",
            description = "Also report perplexity per N positions of the window (0–N, N–2N, …): how it changes along "
                    + "the context.")
    int bucket;

    @Option(names = "--json", description = "Print {\"perplexity\", \"tokens\", \"nll\"} (nll: total, in nats).")
    boolean json;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        try (BtlmModel m = model.load(spec.commandLine().getErr())) {
            int[] ids = input.options.tokens(m);
            Perplexity.Result r = m.perplexity(ids, window, stride, bucket);
            if (json) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("perplexity", r.perplexity());
                o.put("tokens", r.tokens());
                o.put("nll", r.nll());
                o.put("windows", r.windows());
                List<Map<String, Object>> buckets = new ArrayList<>();
                for (Perplexity.Bucket b : r.buckets()) {
                    Map<String, Object> j = new LinkedHashMap<>();
                    j.put("from", b.from());
                    j.put("to", b.to());
                    j.put("tokens", b.tokens());
                    j.put("perplexity", b.tokens() == 0 ? null : b.perplexity());
                    j.put("nll", b.nll());
                    buckets.add(j);
                }
                if (bucket > 0) {
                    o.put("buckets", buckets);
                }
                out.println(Json.write(o));
            } else {
                out.printf("perplexity %.4f over %d tokens (%d windows), mean NLL %.5f nats%n", r.perplexity(),
                        r.tokens(), r.windows(), r.nll() / r.tokens());
                for (Perplexity.Bucket b : r.buckets()) {
                    out.printf("  positions %6d–%-6d %8d tokens  perplexity %s%n", b.from(), b.to(), b.tokens(),
                            b.tokens() == 0 ? "-" : String.format(java.util.Locale.ROOT, "%.4f", b.perplexity()));
                }
            }
        }
        return 0;
    }
}
