package org.btlm4j.checkpoint;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A GGUF file (llama.cpp's format), memory-mapped and validated. Layout, all little-endian: magic
 * {@code "GGUF"}, version u32 (2 or 3), tensor count u64, metadata count u64; the metadata
 * key/value pairs; the tensor infos (name, n_dims u32, {@code ne[n_dims]} u64 innermost first, ggml
 * type u32, offset u64 into the data section); padding to {@code general.alignment} (default 32);
 * the data section. Tensors are views of the mapping; nothing is copied.
 *
 * <p>Tensor shapes are returned row-major, i.e. the reverse of GGUF's {@code ne}. Supported ggml
 * types: F32, F16, BF16, Q8_0, Q4_0 and the plain F64, I8, I16, I32, I64; any other type is refused
 * with its number and name.
 *
 * <p>Metadata values come back as {@link Long} (every integer type; a UINT64 above
 * {@link Long#MAX_VALUE} is refused), {@link Double} (FLOAT32, FLOAT64), {@link Boolean},
 * {@link String} and unmodifiable {@code List<Object>} (ARRAY; arrays of arrays are allowed one
 * level deep, no deeper).
 */
public final class GgufFile implements TensorSource {

    /** "GGUF" read as a little-endian u32. */
    static final int MAGIC = 0x46554747;
    static final int DEFAULT_ALIGNMENT = 32;
    static final String ALIGNMENT_KEY = "general.alignment";
    /** Largest alignment accepted (llama.cpp has no limit; anything this large is surely corrupt). */
    static final long MAX_ALIGNMENT = 1L << 30;
    static final int MAX_DIMS = 4;
    /** Array elements in all the metadata together; bounds the memory a hostile file can make us use. */
    static final long MAX_METADATA_ELEMENTS = 1L << 24;
    /** How deep arrays may nest: an array of arrays of scalars, no deeper. */
    static final int MAX_ARRAY_DEPTH = 2;

    private final Path path;
    private final MappedFile mapped;
    private final int version;
    private final long alignment;
    private final Map<String, Object> metadata;
    private final Map<String, GgufValueType> types;
    private final Map<String, TensorInfo> tensors;

    private GgufFile(Path path, MappedFile mapped, int version, long alignment, Map<String, Object> metadata,
            Map<String, GgufValueType> types, Map<String, TensorInfo> tensors) {
        this.path = path;
        this.mapped = mapped;
        this.version = version;
        this.alignment = alignment;
        this.metadata = metadata;
        this.types = types;
        this.tensors = tensors;
    }

    /** Maps and validates a GGUF file, or throws a {@link CheckpointException} saying what is wrong. */
    public static GgufFile open(Path path) {
        MappedFile mapped = MappedFile.map(path);
        try {
            return parse(path, mapped);
        } catch (RuntimeException e) {
            mapped.close();
            throw e;
        }
    }

    private static GgufFile parse(Path path, MappedFile mapped) {
        String file = path.getFileName().toString();
        Reader in = new Reader(file, mapped.segment());
        in.section = "the header";
        if (in.size() < 4) {
            throw new CheckpointException(file + ": file is " + in.size() + " bytes, too short for a GGUF header");
        }
        int magic = (int) in.u32();
        if (magic != MAGIC) {
            throw new CheckpointException(file + ": not a GGUF file (magic " + String.format("0x%08x", magic)
                    + ", expected 0x46554747 \"GGUF\")");
        }
        long version = in.u32();
        if (version == 1) {
            throw new CheckpointException(file + ": GGUF version 1 is not supported (only 2 and 3); "
                    + "convert it with a recent llama.cpp");
        }
        if (version != 2 && version != 3) {
            if (Integer.reverseBytes((int) version) == 2 || Integer.reverseBytes((int) version) == 3) {
                throw new CheckpointException(file + ": big-endian GGUF files are not supported");
            }
            throw new CheckpointException(file + ": unsupported GGUF version " + version + " (only 2 and 3)");
        }
        long tensorCount = in.u64();
        long kvCount = in.u64();
        // Each metadata pair takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor info
        // at least 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset).
        if (kvCount < 0 || kvCount > in.remaining() / 13) {
            throw new CheckpointException(file + ": header claims " + Long.toUnsignedString(kvCount)
                    + " metadata entries, more than the " + in.size() + "-byte file can hold (corrupt or truncated)");
        }
        if (tensorCount < 0 || tensorCount > in.remaining() / 32) {
            throw new CheckpointException(file + ": header claims " + Long.toUnsignedString(tensorCount)
                    + " tensors, more than the " + in.size() + "-byte file can hold (corrupt or truncated)");
        }

        Map<String, Object> metadata = new LinkedHashMap<>();
        Map<String, GgufValueType> types = new LinkedHashMap<>();
        long[] budget = {MAX_METADATA_ELEMENTS};
        for (long i = 0; i < kvCount; i++) {
            in.section = "metadata entry " + i;
            String key = in.string("key");
            in.section = "metadata " + key;
            GgufValueType type = in.valueType("value type");
            Object value = readValue(in, type, 1, budget);
            if (metadata.containsKey(key)) {
                throw new CheckpointException(file + ": metadata key " + key + " appears twice");
            }
            metadata.put(key, value);
            types.put(key, type);
        }

        long alignment = DEFAULT_ALIGNMENT;
        if (metadata.containsKey(ALIGNMENT_KEY)) {
            if (types.get(ALIGNMENT_KEY) != GgufValueType.UINT32) {
                throw new CheckpointException(file + ": " + ALIGNMENT_KEY + " must be a UINT32, not "
                        + types.get(ALIGNMENT_KEY));
            }
            alignment = (Long) metadata.get(ALIGNMENT_KEY);
            if (alignment == 0 || Long.bitCount(alignment) != 1 || alignment > MAX_ALIGNMENT) {
                throw new CheckpointException(file + ": " + ALIGNMENT_KEY + " is " + alignment
                        + ", must be a power of two");
            }
        }

        List<Info> infos = new ArrayList<>();
        Map<String, Info> byName = new LinkedHashMap<>();
        for (long i = 0; i < tensorCount; i++) {
            in.section = "tensor info " + i;
            Info info = readInfo(in, file, alignment);
            if (byName.putIfAbsent(info.name, info) != null) {
                throw new CheckpointException(file + ": tensor " + info.name + " appears twice");
            }
            infos.add(info);
        }

        long dataStart = alignUp(in.pos, alignment);
        long dataSize = in.size() - dataStart;
        if (!infos.isEmpty() && dataSize < 0) {
            throw new CheckpointException(file + ": file ends at byte " + in.size()
                    + " before the data section that starts at " + dataStart + " (truncated)");
        }
        MemorySegment data = infos.isEmpty() ? MemorySegment.NULL.reinterpret(0)
                : in.seg.asSlice(dataStart, dataSize);
        for (Info t : infos) {
            if (t.offset > dataSize || t.bytes > dataSize - t.offset) {
                throw new CheckpointException(file + ": tensor " + t.name + " at data offset " + t.offset + " with "
                        + t.bytes + " bytes runs past the end of the " + dataSize + "-byte data section (truncated?)");
            }
        }
        List<Info> sorted = new ArrayList<>(infos);
        sorted.sort(Comparator.<Info>comparingLong(t -> t.offset).thenComparingLong(t -> t.bytes));
        for (int i = 1; i < sorted.size(); i++) {
            Info a = sorted.get(i - 1);
            Info b = sorted.get(i);
            if (b.offset < a.offset + a.bytes) {
                throw new CheckpointException(file + ": tensors " + a.name + " and " + b.name + " overlap in the file");
            }
        }
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        for (Info t : infos) {
            tensors.put(t.name, new TensorInfo(t.name, t.dtype, t.shape, data.asSlice(t.offset, t.bytes), file));
        }
        return new GgufFile(path, mapped, (int) version, alignment, Collections.unmodifiableMap(metadata),
                Collections.unmodifiableMap(types), Collections.unmodifiableMap(tensors));
    }

    private record Info(String name, DType dtype, long[] shape, long offset, long bytes) {}

    private static Info readInfo(Reader in, String file, long alignment) {
        String name = in.string("name");
        in.section = "tensor " + name;
        String where = file + ": tensor " + name;
        long nDims = in.u32();
        if (nDims < 1 || nDims > MAX_DIMS) {
            throw new CheckpointException(where + " has " + nDims + " dimensions (GGUF allows 1 to " + MAX_DIMS + ")");
        }
        long[] ne = new long[(int) nDims];
        for (int j = 0; j < ne.length; j++) {
            ne[j] = in.u64();
        }
        long[] shape = new long[ne.length];
        long elements = 1;
        for (int j = 0; j < ne.length; j++) {
            if (ne[j] <= 0) {
                throw new CheckpointException(where + " has dimension ne[" + j + "] = " + Long.toUnsignedString(ne[j])
                        + " (must be positive)");
            }
            shape[ne.length - 1 - j] = ne[j];
            if (elements > Long.MAX_VALUE / ne[j]) {
                throw new CheckpointException(where + " has dimensions " + neString(ne) + " whose product overflows");
            }
            elements *= ne[j];
        }
        long ggml = in.u32();
        DType dtype = dtypeOf(ggml);
        if (dtype == null) {
            throw new CheckpointException(where + " has ggml type " + ggml + " (" + ggmlTypeName(ggml)
                    + "), which is not supported (only F32, F16, BF16, Q8_0, Q4_0, F64, I8, I16, I32, I64)");
        }
        if (dtype.isQuantized() && ne[0] % dtype.blockSize() != 0) {
            throw new CheckpointException(where + " of " + dtype + " has ne[0] = " + ne[0]
                    + ", not a multiple of the block size " + dtype.blockSize());
        }
        long bytes = dtype.byteSize(shape);
        if (bytes < 0) {
            throw new CheckpointException(where + " has dimensions " + neString(ne) + " whose size overflows");
        }
        long offset = in.u64();
        if (offset < 0 || offset % alignment != 0) {
            throw new CheckpointException(where + " has data offset " + Long.toUnsignedString(offset)
                    + ", not a multiple of the alignment " + alignment);
        }
        return new Info(name, dtype, shape, offset, bytes);
    }

    private static Object readValue(Reader in, GgufValueType type, int depth, long[] budget) {
        return switch (type) {
            case UINT8 -> (long) Byte.toUnsignedInt(in.u8());
            case INT8 -> (long) in.u8();
            case UINT16 -> (long) Short.toUnsignedInt(in.i16());
            case INT16 -> (long) in.i16();
            case UINT32 -> in.u32();
            case INT32 -> (long) (int) in.u32();
            case UINT64 -> {
                long v = in.u64();
                if (v < 0) {
                    throw in.error("UINT64 value " + Long.toUnsignedString(v) + " does not fit in a signed 64-bit long");
                }
                yield v;
            }
            case INT64 -> in.u64();
            case FLOAT32 -> (double) Float.intBitsToFloat((int) in.u32());
            case FLOAT64 -> Double.longBitsToDouble(in.u64());
            case BOOL -> {
                byte b = in.u8();
                if (b != 0 && b != 1) {
                    throw in.error("BOOL value " + b + " is neither 0 nor 1");
                }
                yield b == 1;
            }
            case STRING -> in.string("string value");
            case ARRAY -> {
                GgufValueType element = in.valueType("array element type");
                if (element == GgufValueType.ARRAY && depth >= MAX_ARRAY_DEPTH) {
                    throw in.error("arrays nest deeper than " + MAX_ARRAY_DEPTH + " levels");
                }
                long count = in.u64();
                if (count < 0 || count > in.remaining() / element.minBytes()) {
                    throw in.error("array of " + Long.toUnsignedString(count) + " " + element
                            + " values does not fit in the " + in.remaining() + " bytes left in the file");
                }
                if (count > budget[0]) {
                    throw in.error("metadata arrays hold more than " + MAX_METADATA_ELEMENTS + " values in all");
                }
                budget[0] -= count;
                List<Object> list = new ArrayList<>((int) count);
                for (long i = 0; i < count; i++) {
                    list.add(readValue(in, element, depth + 1, budget));
                }
                yield Collections.unmodifiableList(list);
            }
        };
    }

    static long alignUp(long n, long alignment) {
        return (n + alignment - 1) / alignment * alignment;
    }

    private static String neString(long[] ne) {
        StringBuilder b = new StringBuilder("ne = [");
        for (int j = 0; j < ne.length; j++) {
            b.append(j == 0 ? "" : ", ").append(Long.toUnsignedString(ne[j]));
        }
        return b.append(']').toString();
    }

    /** The DType a ggml type number stands for, or null if it is not supported. */
    static DType dtypeOf(long ggml) {
        return switch ((int) Math.min(ggml, Integer.MAX_VALUE)) {
            case 0 -> DType.F32;
            case 1 -> DType.F16;
            case 2 -> DType.Q4_0;
            case 8 -> DType.Q8_0;
            case 24 -> DType.I8;
            case 25 -> DType.I16;
            case 26 -> DType.I32;
            case 27 -> DType.I64;
            case 28 -> DType.F64;
            case 30 -> DType.BF16;
            default -> null;
        };
    }

    /** The ggml type number of {@code type}, or −1 if GGUF has none (U8, BOOL). */
    static int ggmlType(DType type) {
        return switch (type) {
            case F32 -> 0;
            case F16 -> 1;
            case Q4_0 -> 2;
            case Q8_0 -> 8;
            case I8 -> 24;
            case I16 -> 25;
            case I32 -> 26;
            case I64 -> 27;
            case F64 -> 28;
            case BF16 -> 30;
            case U8, BOOL -> -1;
        };
    }

    private static final String[] GGML_NAMES = {
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
        "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16",
        "I32", "I64", "F64", "IQ1_M", "BF16", "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0", "IQ4_NL_4_4",
        "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4", "NVFP4", "Q1_0"
    };

    /** ggml's name for a type number, for messages. */
    static String ggmlTypeName(long ggml) {
        return ggml >= 0 && ggml < GGML_NAMES.length ? GGML_NAMES[(int) ggml] : "unknown";
    }

    // ---- accessors ----

    @Override
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    /** All metadata, in file order (unmodifiable). */
    public Map<String, Object> metadata() {
        return metadata;
    }

    /** The value type {@code key} has in the file, or empty if there is no such key. */
    public Optional<GgufValueType> valueType(String key) {
        return Optional.ofNullable(types.get(key));
    }

    public Optional<Object> get(String key) {
        return Optional.ofNullable(metadata.get(key));
    }

    /** The STRING value of {@code key}. */
    public String string(String key) {
        return require(key, String.class, "a string");
    }

    /** The value of {@code key}, which must be of an integer type. */
    public long integer(String key) {
        return require(key, Long.class, "an integer");
    }

    /** The value of {@code key}, which must be a number (float or integer). */
    public double number(String key) {
        Object v = metadata.get(key);
        if (v instanceof Long l) {
            return l;
        }
        return require(key, Double.class, "a number");
    }

    /** The BOOL value of {@code key}. */
    public boolean bool(String key) {
        return require(key, Boolean.class, "a boolean");
    }

    /** The ARRAY value of {@code key}. */
    @SuppressWarnings("unchecked")
    public List<Object> array(String key) {
        return require(key, List.class, "an array");
    }

    private <T> T require(String key, Class<T> type, String expected) {
        Object v = metadata.get(key);
        if (v == null) {
            throw new CheckpointException(path.getFileName() + ": metadata key " + key + " is missing (expected "
                    + expected + ")");
        }
        if (!type.isInstance(v)) {
            throw new CheckpointException(path.getFileName() + ": metadata key " + key + " is a "
                    + types.get(key) + ", expected " + expected);
        }
        return type.cast(v);
    }

    /** 2 or 3. */
    public int version() {
        return version;
    }

    /** Alignment of the data section and of every tensor in it ({@code general.alignment}, default 32). */
    public long alignment() {
        return alignment;
    }

    public Path path() {
        return path;
    }

    @Override
    public String describe() {
        return path.getFileName() + " (GGUF v" + version + ", " + tensors.size() + " tensors)";
    }

    @Override
    public void close() {
        mapped.close();
    }

    /** A bounds-checked little-endian cursor over the mapped file. */
    private static final class Reader {
        private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

        final String file;
        final MemorySegment seg;
        long pos;
        String section = "";

        Reader(String file, MemorySegment seg) {
            this.file = file;
            this.seg = seg;
        }

        long size() {
            return seg.byteSize();
        }

        long remaining() {
            return seg.byteSize() - pos;
        }

        CheckpointException error(String problem) {
            return new CheckpointException(file + ": " + section + ": " + problem);
        }

        private void need(long n, String what) {
            if (n > remaining()) {
                throw new CheckpointException(file + ": truncated in " + section + ": " + what + " needs " + n
                        + " bytes at offset " + pos + " but the file is " + size() + " bytes");
            }
        }

        byte u8() {
            need(1, "a byte");
            return seg.get(ValueLayout.JAVA_BYTE, pos++);
        }

        short i16() {
            need(2, "a 16-bit value");
            short v = seg.get(I16, pos);
            pos += 2;
            return v;
        }

        long u32() {
            need(4, "a 32-bit value");
            int v = seg.get(I32, pos);
            pos += 4;
            return Integer.toUnsignedLong(v);
        }

        long u64() {
            need(8, "a 64-bit value");
            long v = seg.get(I64, pos);
            pos += 8;
            return v;
        }

        String string(String what) {
            long length = u64();
            if (length < 0 || length > remaining()) {
                throw new CheckpointException(file + ": " + section + ": " + what + " has length "
                        + Long.toUnsignedString(length) + " but only " + remaining() + " bytes are left in the file");
            }
            if (length > Integer.MAX_VALUE - 16) {
                throw error(what + " of " + length + " bytes is too long");
            }
            byte[] bytes = seg.asSlice(pos, length).toArray(ValueLayout.JAVA_BYTE);
            pos += length;
            return new String(bytes, StandardCharsets.UTF_8);
        }

        GgufValueType valueType(String what) {
            long id = u32();
            GgufValueType t = GgufValueType.byId(id);
            if (t == null) {
                throw error("unknown " + what + " " + id);
            }
            return t;
        }
    }
}
