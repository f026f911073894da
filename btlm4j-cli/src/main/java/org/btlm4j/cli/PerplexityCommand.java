package org.btlm4j.cli;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import org.btlm4j.generate.KlDivergence;
import org.btlm4j.generate.Perplexity;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "perplexity", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Perplexity of a text (HF's definition), in sliding windows when it is longer than the window; "
                + "with --kl-base-out / --kl-base, the KL divergence of a model's distributions from a reference run's.",
        footer = {"%nExamples:", "  btlm perplexity -m models/btlm-demo -f text.txt",
            "  btlm perplexity -m cerebras/btlm-3b-8k-base -f wiki.test.raw --window 2048 --stride 512 --json",
            "  btlm perplexity -m cerebras/btlm-3b-8k-base -f wiki.test.raw --stride 512 --bucket 1024",
            "  btlm perplexity -m cerebras/btlm-3b-8k-base -f long.txt --ctx 16384 --alibi-scaling dynamic --bucket 2048 --json",
            "  btlm perplexity -m models/btlm-demo -f text.txt --kl-base-out base.kld      # reference run",
            "  btlm perplexity -m demo-q8_0.gguf -f text.txt --kl-base base.kld --kv-type q8_0"})
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

    @Option(names = "--json", description = "Print {\"perplexity\", \"tokens\", \"nll\"} (nll: total, in nats), or "
            + "the KL figures with --kl-base.")
    boolean json;

    @Option(names = "--kl-base-out", paramLabel = "FILE", description = "Also save each position's distribution "
            + "(top --kl-top tokens and the rest's mass) as the reference for a later --kl-base run.")
    Path klBaseOut;

    @Option(names = "--kl-base", paramLabel = "FILE", description = "Compare with a reference run saved by "
            + "--kl-base-out on the same text: mean KL divergence, its percentiles, top-1 agreement, perplexity change.")
    Path klBase;

    @Option(names = "--kl-top", paramLabel = "K", defaultValue = "" + KlDivergence.DEFAULT_TOP_K,
            description = "Tokens kept per position by --kl-base-out (default: ${DEFAULT-VALUE}; the rest is one bucket).")
    int klTop = KlDivergence.DEFAULT_TOP_K;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        try (BtlmModel m = model.load(spec.commandLine().getErr())) {
            int[] ids = input.options.tokens(m);
            if (klBase != null && klBaseOut != null) {
                throw new BtlmException("give --kl-base-out (save a reference run) or --kl-base (compare with one), "
                        + "not both");
            }
            if (klBase != null) {
                printKl(out, m.klDivergence(ids, window, stride, klBase));
                return 0;
            }
            Perplexity.Result r = klBaseOut != null ? m.perplexityWithKlBase(ids, window, stride, klTop, klBaseOut)
                    : m.perplexity(ids, window, stride, bucket);
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

    private void printKl(PrintWriter out, KlDivergence.Result r) {
        if (json) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("tokens", r.tokens());
            o.put("kld_mean", r.meanKld());
            o.put("kld_p50", r.kldP50());
            o.put("kld_p90", r.kldP90());
            o.put("kld_p99", r.kldP99());
            o.put("kld_max", r.kldMax());
            o.put("top1_agreement", r.top1Agreement());
            o.put("perplexity_base", r.basePerplexity());
            o.put("perplexity", r.perplexity());
            o.put("delta_perplexity", r.deltaPerplexity());
            o.put("top_k", r.topK());
            out.println(Json.write(o));
        } else {
            out.printf("KL divergence over %d tokens (base's top %d + rest): mean %.6f, p50 %.6f, p90 %.6f, p99 %.6f, "
                    + "max %.6f nats%n", r.tokens(), r.topK(), r.meanKld(), r.kldP50(), r.kldP90(), r.kldP99(), r.kldMax());
            out.printf("top-1 agreement %.2f %%%n", 100 * r.top1Agreement());
            out.printf("perplexity %.4f vs base %.4f (Δ %+.4f, %+.2f %%)%n", r.perplexity(), r.basePerplexity(),
                    r.deltaPerplexity(), 100 * r.deltaPerplexity() / r.basePerplexity());
        }
    }
}
