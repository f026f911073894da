package org.btlm4j.checkpoint;

import org.btlm4j.BtlmException;

/** A checkpoint file that cannot be read: the message names the file (and tensor) and the problem. */
public class CheckpointException extends BtlmException {
    public CheckpointException(String message) {
        super(message);
    }

    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
