package org.btlm4j.cli;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.btlm4j.BtlmException;
import org.btlm4j.checkpoint.ModelDirectory;
import org.btlm4j.tokenizer.Gpt2Tokenizer;

/** Loads only the tokenizer of a model directory: tokenizing needs no weights. */
final class TokenizerLoader {
    private TokenizerLoader() {
    }

    static Gpt2Tokenizer load(ModelOptions options, PrintWriter err) {
        Path path = options.resolve(err);
        Path dir = Files.isDirectory(path) ? path : path.toAbsolutePath().getParent();
        return Gpt2Tokenizer.fromDirectory(dir).orElseThrow(() ->
                new BtlmException(dir + ": no tokenizer files (tokenizer.json, or vocab.json and merges.txt)"));
    }
}
