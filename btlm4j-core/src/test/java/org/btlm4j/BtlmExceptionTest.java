package org.btlm4j;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Messages stay one line of plain text whatever names a hostile file puts in them. */
class BtlmExceptionTest {

    @Test
    void controlCharactersInMessagesAreEscaped() {
        assertEquals("model.gguf: metadata key a\\nb\\u001b[31mred\\t\\u0000 is bad",
                new BtlmException("model.gguf: metadata key a\nb\u001b[31mred\t\u0000 is bad").getMessage());
        assertEquals("x.bin: line\\rreturn", new BtlmException("x.bin: line\rreturn", null).getMessage());
    }

    @Test
    void plainMessagesAreKeptAsTheyAre() {
        String m = "config.json: n_head 30 does not divide n_embd 2560 — naïve ✓";
        assertEquals(m, new BtlmException(m).getMessage());
    }
}
