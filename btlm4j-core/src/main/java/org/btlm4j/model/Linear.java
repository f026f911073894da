package org.btlm4j.model;

import org.btlm4j.tensor.Parallel;
import org.btlm4j.tensor.WeightMatrix;

/**
 * The weight of a linear layer as it is stored: GPT-2's Conv1D layout [in, out] (y = x·W, the
 * official checkpoints) or the [out, in] layout of ggml and nn.Linear (y = x·Wᵀ, btlm4j's GGUF
 * files, where quantized rows run along the input dimension).
 */
public record Linear(WeightMatrix weight, boolean outIn) {

    /** Input features. */
    public int in() {
        return outIn ? weight.cols() : weight.rows();
    }

    /** Output features. */
    public int out() {
        return outIn ? weight.rows() : weight.cols();
    }

    /** y = x·W for {@code n} rows of x ([n, in] → [n, out]); overwrites y. */
    public void apply(Parallel pool, float[] x, int n, float[] y) {
        if (outIn) {
            weight.multiplyTransposed(pool, x, n, y);
        } else {
            weight.multiply(pool, x, n, y);
        }
    }
}
