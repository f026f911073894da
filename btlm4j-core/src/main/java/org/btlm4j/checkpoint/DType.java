package org.btlm4j.checkpoint;

/**
 * Element types a checkpoint tensor can have. The float types hold weights we compute with
 * directly; Q8_0 and Q4_0 are GGUF's block-quantized types: blocks of 32 weights along the last
 * dimension, each with an fp16 scale, the last dimension padded with zeros to whole blocks.
 */
public enum DType {
    F64(8), F32(4), F16(2), BF16(2), I64(8), I32(4), I16(2), I8(1), U8(1), BOOL(1),
    /** 32 weights: fp16 scale d, then 32 int8 q; w = d·q. 34 bytes. */
    Q8_0(32, 34),
    /** 32 weights: fp16 scale d, then 16 bytes of nibbles (element j low, j+16 high); w = d·(q−8). 18 bytes. */
    Q4_0(32, 18);

    private final int blockSize;
    private final int blockBytes;

    DType(int bytes) {
        this(1, bytes);
    }

    DType(int blockSize, int blockBytes) {
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
    }

    /** Size of one element in bytes; only for the types that are not block-quantized. */
    public int bytes() {
        if (isQuantized()) {
            throw new IllegalStateException(this + " is block-quantized: use byteSize(shape)");
        }
        return blockBytes;
    }

    /** Elements per block (1 for plain types, 32 for Q8_0/Q4_0). */
    public int blockSize() {
        return blockSize;
    }

    /** Bytes per block (the element size for plain types). */
    public int blockBytes() {
        return blockBytes;
    }

    public boolean isQuantized() {
        return blockSize > 1;
    }

    /**
     * Bytes a tensor of {@code shape} takes, the last dimension padded to whole blocks; −1 when
     * that does not fit in a long.
     */
    public long byteSize(long[] shape) {
        long rows = 1;
        for (int i = 0; i < shape.length - 1; i++) {
            if (shape[i] != 0 && rows > Long.MAX_VALUE / shape[i]) {
                return -1;
            }
            rows *= shape[i];
        }
        long last = shape.length == 0 ? 1 : shape[shape.length - 1];
        long blocks = (last + blockSize - 1) / blockSize;
        if (blocks != 0 && rows > Long.MAX_VALUE / blocks) {
            return -1;
        }
        long total = rows * blocks;
        if (total != 0 && blockBytes > Long.MAX_VALUE / total) {
            return -1;
        }
        return total * blockBytes;
    }

    /** Whether the engine can compute with weights of this type directly. */
    public boolean isWeightType() {
        return this == F32 || this == F16 || this == BF16 || this == Q8_0 || this == Q4_0;
    }
}
