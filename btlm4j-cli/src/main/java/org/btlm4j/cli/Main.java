package org.btlm4j.cli;

import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import org.btlm4j.BtlmException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code btlm} command: parsing and printing only; the work is done by btlm4j-core. */
@Command(name = "btlm", mixinStandardHelpOptions = true, version = "btlm4j 0.1.0",
        description = "Run Cerebras BTLM-3B-8k (and GPT-2-family) models in pure Java.",
        footer = {"%nExamples:", "  btlm pull cerebras/btlm-3b-8k-base",
            "  btlm generate -m cerebras/btlm-3b-8k-base -p \"The capital of France is\"",
            "  btlm help generate"},
        subcommands = {GenerateCommand.class, ScoreCommand.class, TokenizeCommand.class, DetokenizeCommand.class,
            InfoCommand.class, PerplexityCommand.class, EvalCommand.class, QuantizeCommand.class, BenchCommand.class, ServeCommand.class, PullCommand.class,
            ListCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {

    /** Exit status for bad input (a missing file, a malformed checkpoint, a bad option). */
    static final int EXIT_BAD_INPUT = 2;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command (generate, score, tokenize, "
                + "detokenize, info)");
    }

    public static void main(String[] args) {
        System.exit(run(args, new PrintWriter(System.out, true, StandardCharsets.UTF_8),
                new PrintWriter(System.err, true, StandardCharsets.UTF_8)));
    }

    /** Runs the command line and returns the exit status; output goes to {@code out} and {@code err}. */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        CommandLine cl = new CommandLine(new Main());
        cl.setOut(out);
        cl.setErr(err);
        cl.setParameterExceptionHandler((ex, a) -> {
            err.println("error: " + ex.getMessage());
            err.println("(see: btlm " + (ex.getCommandLine().getCommandName().equals("btlm") ? ""
                    : ex.getCommandLine().getCommandName() + " ") + "--help)");
            return EXIT_BAD_INPUT;
        });
        cl.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            if (ex instanceof ModelOptions.HeapPrinted h) {
                out.println(h.text);
                return 0;
            }
            boolean verbose = parseResult.subcommand() != null && parseResult.subcommand().hasMatchedOption("--verbose");
            if (ex instanceof BtlmException || ex instanceof java.io.UncheckedIOException) {
                err.println("error: " + ex.getMessage());
                if (verbose) {
                    ex.printStackTrace(err);
                }
                err.flush();
                return EXIT_BAD_INPUT;
            }
            err.println("error: internal failure: " + ex);
            if (verbose) {
                ex.printStackTrace(err);
            } else {
                err.println("(run again with --verbose for the stack trace)");
            }
            err.flush();
            return 1;
        });
        int code = cl.execute(args);
        out.flush();
        err.flush();
        return code;
    }
}
