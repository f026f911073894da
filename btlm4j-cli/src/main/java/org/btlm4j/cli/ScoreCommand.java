package org.btlm4j.cli;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.btlm4j.BtlmModel;
import org.btlm4j.ScoreResult;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "score", description = "Log-probability of every token of a text given the tokens before it.",
        mixinStandardHelpOptions = true, sortOptions = false,
        footer = {"%nExamples:", "  btlm score -m models/btlm-demo -p \"In the beginning God created the heaven\"",
            "  btlm score -m models/btlm-demo --token-ids 818,262,3726 --json"})
final class ScoreCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @ArgGroup(exclusive = false, heading = "Model:%n")
    ModelOptions model = new ModelOptions();

    @Mixin
    InputMixin input;

    @Option(names = "--json", description = "Print one JSON object.")
    boolean json;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        try (BtlmModel m = model.load(spec.commandLine().getErr())) {
            int[] ids = input.options.tokens(m);
            ScoreResult r = m.score(ids);
            double[] lp = r.tokenLogprobs();
            if (json) {
                List<Double> list = new ArrayList<>(lp.length);
                for (int t = 0; t < lp.length; t++) {
                    list.add(t == 0 ? null : lp[t]);
                }
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("token_ids", ids);
                o.put("token_logprobs", list);
                o.put("total_logprob", r.totalLogprob());
                o.put("perplexity", Double.isNaN(r.perplexity()) ? null : r.perplexity());
                out.println(Json.write(o));
            } else {
                for (int t = 0; t < ids.length; t++) {
                    String tok = m.hasTokenizer() ? Json.write(new String(m.tokenizer().tokenBytes(ids[t]),
                            java.nio.charset.StandardCharsets.UTF_8)) : "";
                    out.printf("%6d %8d %-24s %s%n", t, ids[t], tok, t == 0 ? "-" : String.format("%.6f", lp[t]));
                }
                out.printf("total log-prob %.6f over %d tokens, perplexity %.4f%n", r.totalLogprob(),
                        Math.max(0, ids.length - 1), r.perplexity());
            }
        }
        return 0;
    }
}
