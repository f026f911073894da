package org.btlm4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** Every command explains itself with --help, including at least one example of its use. */
class HelpTest {
    @Test
    void everyCommandsHelpShowsAnExample() {
        CommandLine root = new CommandLine(new Main());
        Set<String> names = root.getSubcommands().keySet();
        assertTrue(names.containsAll(List.of("generate", "score", "perplexity", "tokenize", "detokenize", "info",
                "quantize", "bench", "pull", "list")), names.toString());
        for (String name : names) {
            if (name.equals("help")) {
                continue;
            }
            CliTest.Run r = CliTest.run(name, "--help");
            assertEquals(0, r.code(), name + ": " + r.err());
            int examples = r.out().indexOf("Example");
            assertTrue(examples > 0, name + " --help has no example:\n" + r.out());
            assertTrue(r.out().substring(examples).contains("btlm " + name + " "),
                    name + " --help: the example does not run btlm " + name + ":\n" + r.out());
        }
        CliTest.Run top = CliTest.run("--help");
        assertTrue(top.out().contains("Examples:"), top.out());
        assertTrue(top.out().contains("pull") && top.out().contains("list"), top.out());
        assertFalse(top.out().contains("%n"));
    }
}
