package org.btlm4j.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import org.btlm4j.BtlmException;
import org.btlm4j.checkpoint.ModelDirectory;
import org.btlm4j.tokenizer.Gpt2Tokenizer;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "tokenize", description = "Print the token ids of a text as JSON {\"ids\": [...]}.",
        mixinStandardHelpOptions = true, sortOptions = false,
        footer = {"%nExamples:", "  btlm tokenize -m models/btlm-demo -p \"Hello world\"",
            "  btlm tokenize -m models/btlm-demo --jsonl texts.jsonl"})
final class TokenizeCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @ArgGroup(exclusive = false, heading = "Model:%n")
    ModelOptions model = new ModelOptions();

    @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "The text.")
    String prompt;

    @Option(names = "--jsonl", paramLabel = "FILE", description = "Read {\"text\": ...} objects, one per line; print one {\"ids\"} line each.")
    Path jsonl;

    @Override
    public Integer call() {
        if ((prompt == null) == (jsonl == null)) {
            throw new BtlmException("give exactly one input: -p TEXT or --jsonl FILE");
        }
        PrintWriter out = spec.commandLine().getOut();
        Gpt2Tokenizer tok = TokenizerLoader.load(model, spec.commandLine().getErr());
        if (prompt != null) {
            out.println(Json.write(Map.of("ids", tok.encode(prompt))));
            return 0;
        }
        try (BufferedReader r = Files.newBufferedReader(jsonl, StandardCharsets.UTF_8)) {
            String line;
            int n = 0;
            while ((line = r.readLine()) != null) {
                n++;
                if (line.isBlank()) {
                    continue;
                }
                JsonNode node;
                try {
                    node = Json.MAPPER.readTree(line);
                } catch (JsonProcessingException e) {
                    throw new BtlmException(jsonl + " line " + n + ": not valid JSON (" + e.getOriginalMessage() + ")");
                }
                if (node == null || !node.isObject() || !node.has("text") || !node.get("text").isTextual()) {
                    throw new BtlmException(jsonl + " line " + n + ": expected an object with a \"text\" string");
                }
                out.println(Json.write(Map.of("ids", tok.encode(node.get("text").asText()))));
            }
        } catch (NoSuchFileException e) {
            throw new BtlmException(jsonl + ": file not found");
        } catch (java.nio.charset.MalformedInputException e) {
            throw new BtlmException(jsonl + ": not valid UTF-8");
        } catch (IOException e) {
            throw new BtlmException(jsonl + ": cannot read (" + e.getMessage() + ")");
        }
        return 0;
    }
}
