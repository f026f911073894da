package org.btlm4j.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import org.btlm4j.BtlmModel;
import org.btlm4j.model.BtlmConfig;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "info", description = "Architecture, parameter count, file format, dtype and memory needed.",
        mixinStandardHelpOptions = true)
final class InfoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @ArgGroup(exclusive = false, heading = "Model:%n")
    ModelOptions model = new ModelOptions();

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        try (BtlmModel m = model.load(spec.commandLine().getErr())) {
            BtlmConfig c = m.config();
            out.printf("model           %s%n", m.files().directory().toAbsolutePath());
            out.printf("weights         %s — %s%n", m.description(), m.files().format());
            out.printf("architecture    %s: %d layers, n_embd %d, %d heads of %d, n_inner %d, vocab %d%n",
                    c.modelType(), c.nLayer(), c.nEmbd(), c.nHead(), c.headDim(), c.nInner(), c.vocabSize());
            out.printf("positions       %s, n_positions %d%s%n", c.positionEmbedding().configName(), c.nPositions(),
                    c.alibiScaling() == null ? "" : ", alibi_scaling " + c.alibiScaling());
            out.printf("slopes          %s%n", !c.usesAlibi() ? "-" : m.forwardPass().weights().slopesStored()
                    ? "stored in the checkpoint" : "computed from n_head");
            out.printf("mlp             %s%n", c.activation().configName());
            out.printf("muP             embeddings ×%s, logits ×%s, q·k / %s%n", c.embeddingsScale(), c.outputScale(),
                    c.scaleQkDotByD() ? "d" : "√d");
            out.printf("head            %s%n", c.tieWordEmbeddings() ? "tied to wte" : "separate lm_head.weight");
            out.printf("parameters      %,d%n", c.parameterCount());
            out.printf("dtype           %s (token embedding %s)%n", m.forwardPass().weights().dtype(),
                    m.forwardPass().weights().wte().dtype());
            out.printf("tokenizer       %s%n", m.hasTokenizer() ? "GPT-2 byte-level BPE, " + m.tokenizer().vocabSize() + " tokens" : "none");
            long weights = m.weightBytes();
            long kvPerToken = m.kvType().bytes(2L * c.nLayer() * c.nEmbd() * 32) / 32;
            long kvFull = kvPerToken * m.contextLength();
            out.printf("memory          weights %s (%s), %s KV cache %s per token, %s at the full context of %d%n",
                    human(weights), model.mmap ? "mapped" : "in memory", m.kvType().name().toLowerCase(java.util.Locale.ROOT),
                    human(kvPerToken), human(kvFull), m.contextLength());
            out.printf("                total for a full context ≈ %s%n", human(weights + kvFull));
            out.printf("threads         %d%n", m.threads());
        }
        return 0;
    }

    static String human(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format("%.1f %s", v, units[u]);
    }
}
