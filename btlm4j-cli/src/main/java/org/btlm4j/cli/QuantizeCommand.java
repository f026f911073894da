package org.btlm4j.cli;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.btlm4j.BtlmException;
import org.btlm4j.checkpoint.DType;
import org.btlm4j.convert.GgufExport;
import org.btlm4j.hub.HubCache;
import org.btlm4j.tensor.Parallel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "quantize", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Write a model as a GGUF file with Q8_0/Q4_0 (or F32/F16/BF16) weights; -m accepts the result. "
                + "--layout jais writes llama.cpp's JAIS conventions instead (muP scales folded into token_embd and "
                + "output, slopes as jais.attention.max_alibi_bias; alibi_scaling is not kept).",
        footer = {"%nExamples:", "  btlm quantize -m models/btlm-demo --type q8_0 -o demo-q8_0.gguf",
            "  btlm quantize -m cerebras/btlm-3b-8k-base --type q4_0 --embedding-type q8_0 -o btlm-3b-q4_0.gguf",
            "  btlm quantize -m btlm-3b-8k-base --type q4_0 --layout jais -o btlm-3b-jais-q4_0.gguf"})
final class QuantizeCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = {"-m", "--model"}, paramLabel = "MODEL", required = true,
            description = "The model to convert: a directory, or a Hub id ORG/NAME[@REVISION] in the Hugging Face cache.")
    String model;

    @Option(names = "--type", paramLabel = "TYPE", required = true, description = "q8_0, q4_0, f16, bf16 or f32.")
    String type;

    @Option(names = "--embedding-type", paramLabel = "TYPE",
            description = "Type of the token embedding / tied head (default: q8_0 for q4_0, else the --type).")
    String embeddingType;

    @Option(names = {"-o", "--output"}, paramLabel = "FILE", required = true, description = "The .gguf file to write.")
    Path output;

    @Option(names = "--layout", paramLabel = "LAYOUT", defaultValue = "btlm",
            description = "btlm (default: btlm4j's own, keeps config.json whole) or jais (llama.cpp's JAIS architecture).")
    String layout = "btlm";

    @Option(names = {"-t", "--threads"}, paramLabel = "N", description = "Threads (default: all cores).")
    int threads;

    @Option(names = "--force", description = "Overwrite an existing output file.")
    boolean force;

    @Option(names = "--verbose", description = "Stack traces on errors.")
    boolean verbose;

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        DType t = GgufExport.parseType(type);
        // The embedding is read row by row (one row per token) and, tied, is the head: Q8_0 keeps
        // it accurate where Q4_0 weights elsewhere save the most.
        DType e = embeddingType != null ? GgufExport.parseType(embeddingType) : t == DType.Q4_0 ? DType.Q8_0 : t;
        if (!output.getFileName().toString().endsWith(".gguf")) {
            throw new BtlmException(output + ": the output file name must end in .gguf");
        }
        if (Files.exists(output) && !force) {
            throw new BtlmException(output + ": exists (use --force to overwrite)");
        }
        long start = System.nanoTime();
        GgufExport.Layout l = switch (layout.toLowerCase(java.util.Locale.ROOT)) {
            case "btlm" -> GgufExport.Layout.BTLM;
            case "jais" -> GgufExport.Layout.JAIS;
            default -> throw new BtlmException("--layout " + layout + " is not known (available: btlm, jais)");
        };
        ProgressBar[] bar = {null};
        try (Parallel pool = new Parallel(threads == 0 ? Parallel.defaultThreads() : threads)) {
            GgufExport.export(HubCache.fromEnvironment().resolve(model), t, e, l, output, pool, (written, total) -> {
                if (bar[0] == null) {
                    bar[0] = new ProgressBar(err, "writing " + output.getFileName(), total, ProgressBar.Unit.BYTES);
                }
                bar[0].update(written);
            });
        } finally {
            if (bar[0] != null) {
                bar[0].close();
            }
        }
        err.printf("btlm: wrote %s (%s, embedding %s) in %.1f s%n", output, t.name().toLowerCase(java.util.Locale.ROOT),
                e.name().toLowerCase(java.util.Locale.ROOT), (System.nanoTime() - start) / 1e9);
        return 0;
    }
}
