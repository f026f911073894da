package org.btlm4j.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import org.btlm4j.BtlmModel;
import org.btlm4j.MemoryEstimate;
import org.btlm4j.model.BtlmConfig;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "info", description = "Architecture, parameter count, file format, dtype and the memory a run with "
        + "the given context (-c), KV type (--kv-type) and --mmap will need.",
        mixinStandardHelpOptions = true,
        footer = {"%nExamples:", "  btlm info -m models/btlm-demo",
            "  btlm info -m cerebras/btlm-3b-8k-base --kv-type f16",
            "  btlm info -m random-3b-q4_0.gguf -c 8192 --kv-type q4_0 --memory-limit 3G"})
final class InfoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @ArgGroup(exclusive = false, heading = "Model:%n")
    ModelOptions model = new ModelOptions();

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        MemoryEstimate estimate = model.estimate(err);
        try (BtlmModel m = model.load(err, false)) {
            BtlmConfig c = m.config();
            out.printf("model           %s%n", m.files().directory().toAbsolutePath());
            out.printf("weights         %s — %s%n", m.description(), m.files().format());
            out.printf("architecture    %s: %d layers, n_embd %d, %d heads of %d, n_inner %d, vocab %d%n",
                    c.modelType(), c.nLayer(), c.nEmbd(), c.nHead(), c.headDim(), c.nInner(), c.vocabSize());
            out.printf("positions       %s, n_positions %d%s%n", c.positionEmbedding().configName(), c.nPositions(),
                    c.alibiScaling() == null ? "" : ", alibi_scaling " + c.alibiScaling());
            out.printf("slopes          %s%n", !c.usesAlibi() ? "-" : m.forwardPass().weights().slopesOrigin());
            out.printf("mlp             %s%n", c.activation().configName());
            out.printf("muP             embeddings ×%s, logits ×%s, q·k / %s%n", c.embeddingsScale(), c.outputScale(),
                    c.scaleQkDotByD() ? "d" : "√d");
            out.printf("head            %s%n", c.tieWordEmbeddings() ? "tied to wte" : "separate lm_head.weight");
            out.printf("parameters      %,d%n", c.parameterCount());
            out.printf("dtype           %s (token embedding %s)%n", m.forwardPass().weights().dtype(),
                    m.forwardPass().weights().wte().dtype());
            out.printf("tokenizer       %s%n", m.hasTokenizer() ? "GPT-2 byte-level BPE, " + m.tokenizer().vocabSize() + " tokens" : "none");
            MemoryEstimate e = estimate;
            long kvPerToken = m.kvType().bytes(2L * c.nLayer() * c.nEmbd() * 32) / 32;
            out.printf("memory          estimate for a run at the full context of %d tokens with a %s KV cache:%n",
                    e.contextLength(), e.kvType().optionName());
            out.printf("                weights      %10s (%s)%n", human(e.weights()),
                    e.mapped() ? "mapped from the file: resident once read, reclaimable" : "copied into memory");
            out.printf("                KV cache     %10s (%s per token)%n", human(e.kvCache()), human(kvPerToken));
            out.printf("                activations  %10s (prompt chunks of %d tokens)%n", human(e.activations()),
                    MemoryEstimate.PREFILL_CHUNK);
            out.printf("                JVM etc.     %10s (heap room for tokenizer and garbage, the JVM outside its heap)%n",
                    human(e.runtime()));
            out.printf("                Java heap    %10s (KV cache + activations + room: ./btlm's -Xmx for generate, "
                    + "score, perplexity)%n", human(e.heapBytes()));
            out.printf("                total        %10s%n", human(e.total()));
            long limit = model.limit();
            out.printf("                limit        %10s %s: %s%n", limit == 0 ? "none" : human(limit),
                    model.limitSource().replace("of ", ""), limit == 0 || e.total() <= limit ? "fits" : "does NOT fit");
            out.printf("threads         %d%n", m.threads());
        }
        return 0;
    }

    static String human(long bytes) {
        return MemoryEstimate.human(bytes);
    }
}
