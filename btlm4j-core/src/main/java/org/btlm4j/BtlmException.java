package org.btlm4j;

/**
 * A problem a user can act on: a missing or malformed file, an unsupported configuration, a bad
 * argument. The message names the file, field or tensor and says what is wrong; front ends print
 * it as one line and exit with status 2 (or answer 4xx) instead of showing a stack trace.
 */
public class BtlmException extends RuntimeException {
    /** @param message what is wrong and where, for the user */
    public BtlmException(String message) {
        super(message);
    }

    /**
     * @param message what is wrong and where, for the user
     * @param cause   the underlying failure
     */
    public BtlmException(String message, Throwable cause) {
        super(message, cause);
    }
}
