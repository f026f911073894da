package org.btlm4j;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.btlm4j.checkpoint.TensorInfo;

/**
 * The contract every reader keeps on hostile input, shared by the fuzz targets and the hostile
 * checkpoint corpus: it either succeeds or throws a {@link BtlmException} whose message says what
 * is wrong. Anything else (an IndexOutOfBoundsException, a NegativeArraySizeException, an
 * OutOfMemoryError, a StackOverflowError, ...) escapes and fails the test, or is a finding for the
 * fuzzer.
 */
public final class HostileInput {

    private HostileInput() {
    }

    /** Something that reads hostile input. */
    @FunctionalInterface
    public interface Action {
        void run() throws IOException;
    }

    /** Runs {@code action}; returns the refusal, or null if the input was accepted. */
    public static BtlmException refusalOf(Action action) {
        try {
            action.run();
            return null;
        } catch (BtlmException e) {
            checkMessage(e);
            return e;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A refusal says, in one line, what is wrong; it is never the wrapping of an unexpected exception. */
    public static void checkMessage(BtlmException e) {
        String message = e.getMessage();
        assertNotNull(message, "a BtlmException without a message");
        if (message.isBlank()) {
            fail("a BtlmException with a blank message", e);
        }
        // TorchCheckpoint's safety net wraps any other RuntimeException that escaped the checks
        if (e.getCause() instanceof RuntimeException cause && !(cause instanceof BtlmException)) {
            fail("an unexpected exception escaped the format checks: " + message, cause);
        }
        assertFalse(message.contains("\n"), () -> "a message of several lines: " + message);
    }

    /**
     * Reads the first and last byte of every tensor (a slice outside the file would throw); for
     * formats whose tensors may not share bytes ({@code disjoint}), checks that they fit in the file
     * together.
     */
    public static void touchTensors(Map<String, TensorInfo> tensors, long fileBytes, boolean disjoint) {
        long total = 0;
        for (TensorInfo t : tensors.values()) {
            MemorySegment d = t.data();
            if (d.byteSize() > 0) {
                d.get(ValueLayout.JAVA_BYTE, 0);
                d.get(ValueLayout.JAVA_BYTE, d.byteSize() - 1);
            }
            total += d.byteSize();
        }
        if (disjoint && total > fileBytes) {
            fail("tensors claim " + total + " bytes of a " + fileBytes + "-byte file");
        }
    }

    /** Writes {@code bytes} to {@code file} (replacing it). */
    public static Path write(Path file, byte[] bytes) {
        try {
            return Files.write(file, bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
