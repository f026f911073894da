package org.btlm4j.cli;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.btlm4j.BtlmModel;
import org.btlm4j.GenerationParams;
import org.btlm4j.GenerationResult;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "generate", description = "Generate text after a prompt (streams it; --json prints one object).",
        mixinStandardHelpOptions = true, sortOptions = false,
        footer = {"%nExamples:", "  btlm generate -m models/btlm-demo -p \"And God said\" -n 32",
            "  btlm generate -m cerebras/btlm-3b-8k-base -p \"Paris is\" --temperature 0.7 --seed 1",
            "  btlm generate -m model-q8_0.gguf -f prompt.txt --stop \"\\n\" --json",
            "  btlm generate -m cerebras/btlm-3b-8k-base -f long-prompt.txt --prompt-cache long.kv -n 100",
            "  btlm generate -m cerebras/btlm-3b-8k-base -f book.txt --ctx 16384 --alibi-scaling dynamic --kv-type f16"})
final class GenerateCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @ArgGroup(exclusive = false, heading = "Model:%n")
    ModelOptions model = new ModelOptions();

    @Mixin
    InputMixin input;

    @Option(names = {"-n", "--max-tokens"}, paramLabel = "N", defaultValue = "128", description = "Most new tokens (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0", description = "0 is greedy (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--top-k", paramLabel = "K", defaultValue = "0", description = "Keep the K most likely tokens; 0 is off.")
    int topK;

    @Option(names = "--top-p", paramLabel = "P", defaultValue = "1", description = "Nucleus sampling; 1 is off.")
    float topP;

    @Option(names = "--min-p", paramLabel = "P", defaultValue = "0", description = "Drop tokens below P × the top probability; 0 is off.")
    float minP;

    @Option(names = "--repeat-penalty", paramLabel = "R", defaultValue = "1", description = "HF repetition penalty; 1 is off.")
    float repeatPenalty;

    @Option(names = "--seed", paramLabel = "S", description = "Sampler seed (reproducible runs).")
    Long seed;

    @Option(names = "--stop", paramLabel = "STR", description = "Stop when the text contains STR (repeatable).")
    List<String> stop = new ArrayList<>();

    @Option(names = "--ignore-eos", description = "Keep going after the end-of-text token.")
    boolean ignoreEos;

    @Option(names = "--prompt-cache", paramLabel = "FILE",
            description = "Restore the processed prompt from FILE when it exists (its common prefix with this prompt "
                    + "is not computed again), and save this prompt's state to it.")
    Path promptCache;

    @Option(names = "--json", description = "Print one JSON object instead of streaming text.")
    boolean json;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        GenerationParams params = new GenerationParams(maxTokens, temperature, topK, topP, minP, repeatPenalty, seed,
                stop, ignoreEos);
        try (BtlmModel m = model.load(err)) {
            int[] prompt = input.options.tokens(m);
            if (promptCache != null) {
                usePromptCache(m, prompt, err);
            }
            GenerationResult r;
            if (json) {
                r = m.generate(prompt, params);
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("prompt_token_ids", prompt);
                o.put("token_ids", r.tokenIds());
                o.put("text", r.text());
                o.put("finish_reason", r.finishReason().json());
                out.println(Json.write(o));
            } else {
                long start = System.nanoTime();
                if (m.hasTokenizer()) {
                    r = m.stream(prompt, params, (id, text) -> {
                        out.print(text);
                        out.flush();
                    });
                    out.println();
                } else {
                    r = m.generate(prompt, params);
                    out.println(Json.write(r.tokenIds()));
                }
                if (model.verbose) {
                    double s = (System.nanoTime() - start) / 1e9;
                    err.printf("btlm: %d prompt + %d new tokens in %.2f s (%s)%n", prompt.length, r.tokenIds().length,
                            s, r.finishReason().json());
                    var kept = m.generator().keptState();
                    if (kept != null) {
                        err.printf("btlm: KV cache %s allocated for %d positions (context %d)%n",
                                InfoCommand.human(kept.cache().allocatedBytes()), kept.cache().capacity(),
                                m.contextLength());
                    }
                }
            }
        }
        return 0;
    }

    /** Restores FILE if it exists, runs the prompt on top of it, and saves the prompt's state back when it changed. */
    private void usePromptCache(BtlmModel m, int[] prompt, PrintWriter err) {
        int restored = 0;
        if (Files.exists(promptCache)) {
            restored = m.loadPromptCache(promptCache);
        }
        long before = m.forwardedTokens();
        m.generator().prime(prompt);
        long computed = m.forwardedTokens() - before;
        if (computed > 0 || restored != prompt.length) {
            m.savePromptCache(promptCache);
        }
        if (model.verbose) {
            err.printf("btlm: prompt cache %s: %d positions restored, %d of %d prompt tokens computed%n", promptCache,
                    restored, computed, prompt.length);
        }
    }
}
