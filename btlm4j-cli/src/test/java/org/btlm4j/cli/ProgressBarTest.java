package org.btlm4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

class ProgressBarTest {
    @Test
    void plainOutputPrintsOneLinePerTenthAndEndsAtTheTotal() {
        StringWriter text = new StringWriter();
        try (ProgressBar bar = new ProgressBar(new PrintWriter(text), "eval", 200, ProgressBar.Unit.ITEMS, false)) {
            for (int i = 0; i < 200; i++) {
                bar.step(1);
            }
        }
        String[] lines = text.toString().split("\n");
        assertEquals(11, lines.length, text.toString()); // 0 %, 10 %, ..., 100 %
        assertTrue(lines[10].startsWith("eval [" + "#".repeat(30) + "] 200/200 100%"), lines[10]);
        assertTrue(lines[5].contains("100/200  50%") && lines[5].contains("ETA"), lines[5]);
    }

    @Test
    void terminalOutputRedrawsInPlaceAndFormatsBytes() {
        StringWriter text = new StringWriter();
        try (ProgressBar bar = new ProgressBar(new PrintWriter(text), "pull", 3L << 30, ProgressBar.Unit.BYTES, true)) {
            bar.update(3L << 29);
            bar.update(3L << 30);
        }
        String out = text.toString();
        assertTrue(out.startsWith("\rpull ["), out);
        assertTrue(out.contains("3.00 GiB/3.00 GiB 100%"), out);
        assertTrue(out.endsWith("\n"), out);
    }
}
