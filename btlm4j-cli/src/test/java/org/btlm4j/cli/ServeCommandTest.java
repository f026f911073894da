package org.btlm4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** {@code btlm serve}: help, and bad options or models refused before anything listens. */
class ServeCommandTest {
    @Test
    void helpShowsTheLimitsAndAnExample() {
        CliTest.Run r = CliTest.run("serve", "--help");
        assertEquals(0, r.code(), r.err());
        for (String s : new String[] {"--port", "--parallel", "--api-key", "--queue", "--max-prompt-tokens",
            "--max-tokens-limit", "--max-body", "--timeout", "--prefill-chunk", "--shutdown-grace", "--chat-message",
            "Example:", "btlm serve -m", "Limits", "(default: 0)", "(default: 300)", "4194304)",
            "(default: 2048)", "(default: 64)", "(default: 4)"}) {
            assertTrue(r.out().contains(s), s + " in " + r.out());
        }
    }

    @Test
    void badOptionsAndMissingModelsExitWithStatus2() {
        CliTest.Run p = CliTest.run("serve", "-m", CliTest.DEMO.toString(), "--port", "0", "--parallel", "0");
        assertEquals(2, p.code());
        assertTrue(p.err().contains("--parallel must be at least 1"), p.err());
        CliTest.Run c = CliTest.run("serve", "-m", CliTest.DEMO.toString(), "--port", "0", "--chat-message", "{role}");
        assertEquals(2, c.code());
        assertTrue(c.err().contains("{content}"), c.err());
        CliTest.Run t = CliTest.run("serve", "-m", CliTest.DEMO.toString(), "--port", "0", "--timeout", "0");
        assertEquals(2, t.code());
        assertTrue(t.err().contains("--timeout"), t.err());
        CliTest.Run m = CliTest.run("serve", "-m", "no/such/model", "--port", "0");
        assertEquals(2, m.code());
        assertTrue(m.err().contains("error: ") && m.err().contains("no/such/model"), m.err());
    }
}
