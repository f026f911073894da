package org.btlm4j.checkpoint;

import java.util.Map;

/**
 * A set of named tensors read from one or more files. The tensors' data segments stay valid until
 * {@link #close()}; closing unmaps the files.
 */
public interface TensorSource extends AutoCloseable {

    /** All tensors by name, in file order. */
    Map<String, TensorInfo> tensors();

    /** What this is, for messages: e.g. {@code pytorch_model.bin (PyTorch zip, 291 tensors)}. */
    String describe();

    @Override
    void close();
}
