package org.btlm4j.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import picocli.CommandLine.Option;

/** Exactly one input: text, a file of text, or token ids. */
final class InputOptions {
    @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "The input text.")
    String prompt;

    @Option(names = {"-f", "--file"}, paramLabel = "FILE", description = "Read the input text from FILE (UTF-8).")
    Path file;

    @Option(names = "--token-ids", paramLabel = "IDS", split = ",", description = "The input as token ids: 1,2,3.")
    int[] tokenIds;

    /** Token ids of the input, checked against the vocabulary. */
    int[] tokens(BtlmModel model) {
        int given = (prompt != null ? 1 : 0) + (file != null ? 1 : 0) + (tokenIds != null ? 1 : 0);
        if (given != 1) {
            throw new BtlmException("give exactly one input: -p TEXT, -f FILE or --token-ids 1,2,3");
        }
        if (tokenIds != null) {
            int vocab = model.config().vocabSize();
            for (int id : tokenIds) {
                if (id < 0 || id >= vocab) {
                    throw new BtlmException("--token-ids: " + id + " is outside the vocabulary (0.." + (vocab - 1) + ")");
                }
            }
            return tokenIds.clone();
        }
        return model.tokenizer().encode(text());
    }

    String text() {
        if (prompt != null) {
            return prompt;
        }
        return readText(file);
    }

    static String readText(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new BtlmException(file + ": file not found");
        } catch (java.nio.charset.MalformedInputException e) {
            throw new BtlmException(file + ": not valid UTF-8 text");
        } catch (IOException e) {
            throw new BtlmException(file + ": cannot read (" + e.getMessage() + ")");
        }
    }
}
