package org.btlm4j.checkpoint;

/**
 * The types a GGUF metadata value can have, with their numbers in the file. {@link GgufFile}
 * returns integers of every width as {@link Long}, floats as {@link Double}, {@code BOOL} as
 * {@link Boolean}, {@code STRING} as {@link String} and {@code ARRAY} as {@code List<Object>}.
 */
public enum GgufValueType {
    UINT8(0, 1), INT8(1, 1), UINT16(2, 2), INT16(3, 2), UINT32(4, 4), INT32(5, 4), FLOAT32(6, 4), BOOL(7, 1),
    /** u64 length + UTF-8 bytes. */
    STRING(8, 8),
    /** element type u32 + count u64 + elements. */
    ARRAY(9, 12),
    UINT64(10, 8), INT64(11, 8), FLOAT64(12, 8);

    private static final GgufValueType[] BY_ID = new GgufValueType[13];

    static {
        for (GgufValueType t : values()) {
            BY_ID[t.id] = t;
        }
    }

    private final int id;
    private final int minBytes;

    GgufValueType(int id, int minBytes) {
        this.id = id;
        this.minBytes = minBytes;
    }

    /** The type's number in a GGUF file. */
    public int id() {
        return id;
    }

    /** Fewest bytes one value of this type takes in a file (the exact size for fixed-size types). */
    int minBytes() {
        return minBytes;
    }

    /** The type numbered {@code id}, or null if there is none. */
    static GgufValueType byId(long id) {
        return id >= 0 && id < BY_ID.length ? BY_ID[(int) id] : null;
    }

    boolean isInteger() {
        return switch (this) {
            case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 -> true;
            default -> false;
        };
    }

    boolean isFloat() {
        return this == FLOAT32 || this == FLOAT64;
    }
}
