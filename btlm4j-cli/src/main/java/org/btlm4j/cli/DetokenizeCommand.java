package org.btlm4j.cli;

import java.util.concurrent.Callable;
import org.btlm4j.tokenizer.Gpt2Tokenizer;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "detokenize", description = "Print the text of token ids.", mixinStandardHelpOptions = true,
        footer = {"%nExample:", "  btlm detokenize -m models/btlm-demo --token-ids 464,1578,531"})
final class DetokenizeCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @ArgGroup(exclusive = false, heading = "Model:%n")
    ModelOptions model = new ModelOptions();

    @Option(names = "--token-ids", paramLabel = "IDS", split = ",", required = true, description = "Token ids: 1,2,3.")
    int[] tokenIds;

    @Override
    public Integer call() {
        Gpt2Tokenizer tok = TokenizerLoader.load(model, spec.commandLine().getErr());
        spec.commandLine().getOut().println(tok.decode(tokenIds));
        return 0;
    }
}
