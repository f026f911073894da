package org.btlm4j.checkpoint;

/** Element types a checkpoint tensor can have. Only the floating types hold weights we compute with. */
public enum DType {
    F64(8), F32(4), F16(2), BF16(2), I64(8), I32(4), I16(2), I8(1), U8(1), BOOL(1);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }

    /** Whether the engine can compute with weights of this type directly. */
    public boolean isWeightType() {
        return this == F32 || this == F16 || this == BF16;
    }
}
