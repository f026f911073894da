package org.btlm4j;

/**
 * A problem a user can act on: a missing or malformed file, an unsupported configuration, a bad
 * argument. The message names the file, field or tensor and says what is wrong; front ends print
 * it as one line and exit with status 2 (or answer 4xx) instead of showing a stack trace.
 *
 * <p>Messages quote names from the files they are about (tensor names, metadata keys), which a
 * hostile file can fill with line breaks or terminal escape sequences; control characters are
 * therefore written as escapes ({@code \n}, {@code \u001b}), so that the message stays one line and
 * prints as plain text.
 */
public class BtlmException extends RuntimeException {
    /** @param message what is wrong and where, for the user */
    public BtlmException(String message) {
        super(plain(message));
    }

    /**
     * @param message what is wrong and where, for the user
     * @param cause   the underlying failure
     */
    public BtlmException(String message, Throwable cause) {
        super(plain(message), cause);
    }

    /** {@code message} with every ISO control character written as an escape. */
    static String plain(String message) {
        if (message == null || message.chars().noneMatch(Character::isISOControl)) {
            return message;
        }
        StringBuilder b = new StringBuilder(message.length() + 16);
        for (int i = 0; i < message.length(); i++) {
            char c = message.charAt(i);
            switch (c) {
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (Character.isISOControl(c)) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return b.toString();
    }
}
