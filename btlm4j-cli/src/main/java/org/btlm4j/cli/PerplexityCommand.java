package org.btlm4j.cli;

import java.io.PrintWriter;
import java.util.LinkedHashMap;
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
            "  btlm perplexity -m cerebras/btlm-3b-8k-base -f wiki.test.raw --window 2048 --stride 512 --json"})
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

    @Option(names = "--json", description = "Print {\"perplexity\", \"tokens\", \"nll\"} (nll: total, in nats).")
    boolean json;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        try (BtlmModel m = model.load(spec.commandLine().getErr())) {
            int[] ids = input.options.tokens(m);
            Perplexity.Result r = m.perplexity(ids, window, stride);
            if (json) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("perplexity", r.perplexity());
                o.put("tokens", r.tokens());
                o.put("nll", r.nll());
                o.put("windows", r.windows());
                out.println(Json.write(o));
            } else {
                out.printf("perplexity %.4f over %d tokens (%d windows), mean NLL %.5f nats%n", r.perplexity(),
                        r.tokens(), r.windows(), r.nll() / r.tokens());
            }
        }
        return 0;
    }
}
