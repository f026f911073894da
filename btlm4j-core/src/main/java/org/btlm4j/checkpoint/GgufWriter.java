package org.btlm4j.checkpoint;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.LongConsumer;

/**
 * Writes a GGUF v3 file (see {@link GgufFile} for the layout) without holding tensor data in
 * memory: metadata and tensor descriptions are collected first, then {@link #write} streams every
 * tensor's bytes from its {@link TensorData} into the file, each tensor starting at a multiple of
 * the alignment ({@code general.alignment}, default 32). The file is written under
 * {@code name.partial} and renamed when complete, so a failed run never leaves a truncated file
 * under the real name.
 *
 * <p>Metadata types from Java values ({@link #put(String, Object)}): String → STRING, Boolean →
 * BOOL, Byte → INT8, Short → INT16, Integer → INT32, Long → INT64, Float → FLOAT32, Double →
 * FLOAT64; {@code int[]}, {@code long[]}, {@code float[]}, {@code double[]}, {@code boolean[]},
 * {@code String[]} and non-empty {@code List}s of one of those types (or of such lists: one level of
 * nesting) → ARRAY. Other types are set explicitly with {@link #put(String, GgufValueType, Object)},
 * {@link #putArray}, {@link #putU32}, {@link #putU64}, {@link #putF32}. {@code general.alignment} is
 * always written as a UINT32 and must be a power of two.
 *
 * <p>Not thread-safe. Misuse of the API (bad values, bad shapes, duplicate tensors) throws
 * {@link IllegalArgumentException}; a {@link TensorData} that writes the wrong number of bytes makes
 * {@link #write} throw a {@link CheckpointException}, as do I/O errors.
 */
public final class GgufWriter {

    /** Writes one tensor's data: exactly {@code type.byteSize(shape)} bytes, little-endian, row-major. */
    @FunctionalInterface
    public interface TensorData {
        void write(WritableByteChannel out) throws IOException;
    }

    /** llama.cpp's GGML_MAX_NAME: tensor names must be shorter than this many UTF-8 bytes. */
    static final int MAX_NAME_BYTES = 64;

    /** A typed metadata value; for ARRAY, {@code value} is a {@code List<Value>} of {@code elementType}. */
    private record Value(GgufValueType type, GgufValueType elementType, Object value) {}

    private record Tensor(String name, DType type, long[] shape, long bytes, TensorData data) {}

    private final Map<String, Value> metadata = new LinkedHashMap<>();
    private final Map<String, Tensor> tensors = new LinkedHashMap<>();
    private long alignment = GgufFile.DEFAULT_ALIGNMENT;

    public GgufWriter() {}

    /** Sets {@code key} to {@code value}, its GGUF type chosen from its Java type (see the class doc). */
    public GgufWriter put(String key, Object value) {
        Objects.requireNonNull(key, "key");
        if (key.equals(GgufFile.ALIGNMENT_KEY)) {
            return put(key, GgufValueType.UINT32, value);
        }
        return set(key, infer(key, value));
    }

    /** Sets {@code key} to {@code value} as a {@code type}; for ARRAY the element type is inferred. */
    public GgufWriter put(String key, GgufValueType type, Object value) {
        Objects.requireNonNull(key, "key");
        return set(key, convert(key, type, value));
    }

    /** Sets {@code key} to an ARRAY of {@code elementType}; may be empty. */
    public GgufWriter putArray(String key, GgufValueType elementType, List<?> values) {
        Objects.requireNonNull(key, "key");
        return set(key, array(key, elementType, values));
    }

    public GgufWriter putU32(String key, long value) {
        return put(key, GgufValueType.UINT32, value);
    }

    public GgufWriter putU64(String key, long value) {
        return put(key, GgufValueType.UINT64, value);
    }

    public GgufWriter putF32(String key, float value) {
        return put(key, GgufValueType.FLOAT32, value);
    }

    private GgufWriter set(String key, Value v) {
        if (key.equals(GgufFile.ALIGNMENT_KEY)) {
            if (v.type != GgufValueType.UINT32) {
                throw new IllegalArgumentException(key + " must be a UINT32, not " + v.type);
            }
            long a = (Long) v.value;
            if (a == 0 || Long.bitCount(a) != 1 || a > GgufFile.MAX_ALIGNMENT) {
                throw new IllegalArgumentException(key + " must be a power of two, not " + a);
            }
            alignment = a;
        }
        metadata.put(key, v);
        return this;
    }

    /**
     * Adds a tensor of {@code rowMajorShape} (1 to 4 positive dimensions; for Q8_0/Q4_0 the last
     * must be a multiple of 32) whose bytes {@code data} will write when the file is written.
     */
    public GgufWriter addTensor(String name, DType type, long[] rowMajorShape, TensorData data) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(data, "data");
        long[] shape = rowMajorShape.clone();
        String where = "tensor " + name;
        int nameBytes = name.getBytes(StandardCharsets.UTF_8).length;
        if (nameBytes == 0 || nameBytes >= MAX_NAME_BYTES) {
            throw new IllegalArgumentException(where + ": name must be 1 to " + (MAX_NAME_BYTES - 1)
                    + " UTF-8 bytes (llama.cpp's limit), is " + nameBytes);
        }
        if (tensors.containsKey(name)) {
            throw new IllegalArgumentException(where + " is added twice");
        }
        if (GgufFile.ggmlType(type) < 0) {
            throw new IllegalArgumentException(where + ": GGUF has no type for " + type);
        }
        if (shape.length < 1 || shape.length > GgufFile.MAX_DIMS) {
            throw new IllegalArgumentException(where + ": shape " + Arrays.toString(shape) + " must have 1 to "
                    + GgufFile.MAX_DIMS + " dimensions");
        }
        for (long d : shape) {
            if (d <= 0) {
                throw new IllegalArgumentException(where + ": shape " + Arrays.toString(shape)
                        + " has a dimension that is not positive");
            }
        }
        if (type.isQuantized() && shape[shape.length - 1] % type.blockSize() != 0) {
            throw new IllegalArgumentException(where + ": last dimension of " + Arrays.toString(shape) + " of " + type
                    + " must be a multiple of " + type.blockSize());
        }
        long elements = 1;
        for (long d : shape) {
            if (elements > Long.MAX_VALUE / d) {
                elements = -1;
                break;
            }
            elements *= d;
        }
        long bytes = type.byteSize(shape);
        if (elements < 0 || bytes < 0) {
            throw new IllegalArgumentException(where + ": shape " + Arrays.toString(shape) + " is too large");
        }
        tensors.put(name, new Tensor(name, type, shape, bytes, data));
        return this;
    }

    /** Size of the file {@link #write} will write: header, padding and the aligned tensor data. */
    public long fileBytes() {
        long size = GgufFile.alignUp(header().length, alignment);
        for (Tensor t : tensors.values()) {
            size = GgufFile.alignUp(size + t.bytes, alignment);
        }
        return size;
    }

    /** Number of tensors added. */
    public int tensorCount() {
        return tensors.size();
    }

    /**
     * Writes the file, replacing any file already there; on any failure nothing is left under
     * {@code file} or {@code file.partial} (a file already at {@code file} stays as it was).
     *
     * @param progressBytes told the total number of bytes written to the file so far, after the
     *     header and after every chunk of tensor data; may be null
     * @throws CheckpointException if the file cannot be written or a tensor's {@link TensorData}
     *     fails or writes the wrong number of bytes (the message names the file and tensor)
     */
    public void write(Path file, LongConsumer progressBytes) {
        LongConsumer progress = progressBytes == null ? n -> {} : progressBytes;
        Path partial = file.resolveSibling(file.getFileName() + ".partial");
        String name = file.getFileName().toString();
        byte[] header = header();
        boolean done = false;
        String tensor = null;
        try {
            try (FileChannel ch = FileChannel.open(partial, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                long[] written = {0};
                writeFully(ch, ByteBuffer.wrap(header), written);
                pad(ch, written);
                progress.accept(written[0]);
                for (Tensor t : tensors.values()) {
                    tensor = t.name;
                    long before = written[0];
                    TensorChannel out = new TensorChannel(ch, written, before + t.bytes, progress);
                    t.data.write(out);
                    out.closed = true;
                    if (written[0] - before != t.bytes) {
                        throw new CheckpointException(name + ": tensor " + t.name + " (" + t.type
                                + Arrays.toString(t.shape) + ") wrote " + (written[0] - before)
                                + " bytes, expected " + t.bytes);
                    }
                    pad(ch, written);
                    progress.accept(written[0]);
                }
                tensor = null;
                ch.force(true);
            }
            try {
                Files.move(partial, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(partial, file, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
        } catch (IOException e) {
            throw new CheckpointException(name + ": cannot write" + (tensor == null ? "" : " tensor " + tensor)
                    + " (" + e + ")", e);
        } finally {
            if (!done) {
                try {
                    Files.deleteIfExists(partial);
                } catch (IOException ignored) {
                    // the original failure is what matters
                }
            }
        }
    }

    private void pad(FileChannel ch, long[] written) throws IOException {
        long padding = GgufFile.alignUp(written[0], alignment) - written[0];
        if (padding > 0) {
            writeFully(ch, ByteBuffer.allocate((int) padding), written);
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf, long[] written) throws IOException {
        while (buf.hasRemaining()) {
            written[0] += ch.write(buf);
        }
    }

    /** What a TensorData writes to: counts the bytes, refuses more than the tensor's size, reports progress. */
    private static final class TensorChannel implements WritableByteChannel {
        private final FileChannel ch;
        private final long[] written;
        private final long limit;
        private final LongConsumer progress;
        boolean closed;

        TensorChannel(FileChannel ch, long[] written, long limit, LongConsumer progress) {
            this.ch = ch;
            this.written = written;
            this.limit = limit;
            this.progress = progress;
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            if (closed) {
                throw new ClosedChannelException();
            }
            int n = src.remaining();
            if (n > limit - written[0]) {
                throw new IOException("tensor data runs " + (n - (limit - written[0])) + " bytes past its size");
            }
            writeFully(ch, src, written);
            progress.accept(written[0]);
            return n;
        }

        @Override
        public boolean isOpen() {
            return !closed;
        }

        /** Does nothing: the file stays open for the next tensor. */
        @Override
        public void close() {}
    }

    // ---- header ----

    private byte[] header() {
        Out out = new Out();
        out.u32(GgufFile.MAGIC);
        out.u32(3);
        out.u64(tensors.size());
        out.u64(metadata.size());
        for (Map.Entry<String, Value> e : metadata.entrySet()) {
            out.string(e.getKey());
            out.u32(e.getValue().type.id());
            writeValue(out, e.getValue());
        }
        long offset = 0;
        for (Tensor t : tensors.values()) {
            out.string(t.name);
            out.u32(t.shape.length);
            for (int j = t.shape.length - 1; j >= 0; j--) {
                out.u64(t.shape[j]);
            }
            out.u32(GgufFile.ggmlType(t.type));
            out.u64(offset);
            offset = GgufFile.alignUp(offset + t.bytes, alignment);
        }
        return out.toByteArray();
    }

    @SuppressWarnings("unchecked")
    private static void writeValue(Out out, Value v) {
        switch (v.type) {
            case UINT8, INT8 -> out.write((int) (long) (Long) v.value);
            case UINT16, INT16 -> out.u16((int) (long) (Long) v.value);
            case UINT32, INT32 -> out.u32((int) (long) (Long) v.value);
            case UINT64, INT64 -> out.u64((Long) v.value);
            case FLOAT32 -> out.u32(Float.floatToRawIntBits((float) (double) (Double) v.value));
            case FLOAT64 -> out.u64(Double.doubleToRawLongBits((Double) v.value));
            case BOOL -> out.write((Boolean) v.value ? 1 : 0);
            case STRING -> out.string((String) v.value);
            case ARRAY -> {
                List<Value> items = (List<Value>) v.value;
                out.u32(v.elementType.id());
                out.u64(items.size());
                for (Value item : items) {
                    writeValue(out, item);
                }
            }
        }
    }

    private static final class Out extends ByteArrayOutputStream {
        private final ByteBuffer scratch = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

        void u16(int v) {
            write(scratch.clear().putShort((short) v).array(), 0, 2);
        }

        void u32(int v) {
            write(scratch.clear().putInt(v).array(), 0, 4);
        }

        void u64(long v) {
            write(scratch.clear().putLong(v).array(), 0, 8);
        }

        void string(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            write(b, 0, b.length);
        }
    }

    // ---- value conversion ----

    private static Value infer(String key, Object value) {
        return switch (value) {
            case null -> throw new IllegalArgumentException("metadata " + key + ": value is null");
            case String s -> new Value(GgufValueType.STRING, null, s);
            case Boolean b -> new Value(GgufValueType.BOOL, null, b);
            case Byte b -> new Value(GgufValueType.INT8, null, (long) b);
            case Short s -> new Value(GgufValueType.INT16, null, (long) s);
            case Integer i -> new Value(GgufValueType.INT32, null, (long) i);
            case Long l -> new Value(GgufValueType.INT64, null, l);
            case Float f -> new Value(GgufValueType.FLOAT32, null, (double) f);
            case Double d -> new Value(GgufValueType.FLOAT64, null, d);
            case int[] a -> array(key, GgufValueType.INT32, Arrays.stream(a).boxed().toList());
            case long[] a -> array(key, GgufValueType.INT64, Arrays.stream(a).boxed().toList());
            case double[] a -> array(key, GgufValueType.FLOAT64, Arrays.stream(a).boxed().toList());
            case float[] a -> {
                List<Object> list = new ArrayList<>(a.length);
                for (float f : a) {
                    list.add(f);
                }
                yield array(key, GgufValueType.FLOAT32, list);
            }
            case boolean[] a -> {
                List<Object> list = new ArrayList<>(a.length);
                for (boolean b : a) {
                    list.add(b);
                }
                yield array(key, GgufValueType.BOOL, list);
            }
            case String[] a -> array(key, GgufValueType.STRING, Arrays.asList(a));
            case List<?> list -> {
                if (list.isEmpty()) {
                    throw new IllegalArgumentException("metadata " + key
                            + ": the element type of an empty list is unknown; use putArray");
                }
                yield array(key, infer(key, list.getFirst()).type, list);
            }
            default -> throw new IllegalArgumentException("metadata " + key + ": cannot store a "
                    + value.getClass().getName() + " in GGUF");
        };
    }

    private static Value array(String key, GgufValueType elementType, List<?> values) {
        Objects.requireNonNull(elementType, "elementType");
        List<Value> items = new ArrayList<>(values.size());
        for (Object o : values) {
            Value item = convert(key, elementType, o);
            if (item.type == GgufValueType.ARRAY && item.elementType == GgufValueType.ARRAY) {
                throw new IllegalArgumentException("metadata " + key + ": arrays may nest only one level deep");
            }
            items.add(item);
        }
        return new Value(GgufValueType.ARRAY, elementType, List.copyOf(items));
    }

    private static Value convert(String key, GgufValueType type, Object value) {
        Objects.requireNonNull(type, "type");
        String where = "metadata " + key + ": ";
        if (value == null) {
            throw new IllegalArgumentException(where + "value is null");
        }
        if (type.isInteger()) {
            if (!(value instanceof Long || value instanceof Integer || value instanceof Short || value instanceof Byte)) {
                throw new IllegalArgumentException(where + "a " + type + " needs an integer, not a "
                        + value.getClass().getSimpleName());
            }
            long v = ((Number) value).longValue();
            long min;
            long max;
            switch (type) {
                case UINT8 -> { min = 0; max = 0xFF; }
                case INT8 -> { min = Byte.MIN_VALUE; max = Byte.MAX_VALUE; }
                case UINT16 -> { min = 0; max = 0xFFFF; }
                case INT16 -> { min = Short.MIN_VALUE; max = Short.MAX_VALUE; }
                case UINT32 -> { min = 0; max = 0xFFFF_FFFFL; }
                case INT32 -> { min = Integer.MIN_VALUE; max = Integer.MAX_VALUE; }
                case UINT64 -> { min = 0; max = Long.MAX_VALUE; }
                default -> { min = Long.MIN_VALUE; max = Long.MAX_VALUE; }
            }
            if (v < min || v > max) {
                throw new IllegalArgumentException(where + v + " is out of range for " + type);
            }
            return new Value(type, null, v);
        }
        return switch (type) {
            case FLOAT32, FLOAT64 -> {
                if (!(value instanceof Number n)) {
                    throw new IllegalArgumentException(where + "a " + type + " needs a number, not a "
                            + value.getClass().getSimpleName());
                }
                double d = type == GgufValueType.FLOAT32 ? (double) n.floatValue() : n.doubleValue();
                yield new Value(type, null, d);
            }
            case BOOL -> {
                if (!(value instanceof Boolean b)) {
                    throw new IllegalArgumentException(where + "a BOOL needs a Boolean, not a "
                            + value.getClass().getSimpleName());
                }
                yield new Value(type, null, b);
            }
            case STRING -> {
                if (!(value instanceof String s)) {
                    throw new IllegalArgumentException(where + "a STRING needs a String, not a "
                            + value.getClass().getSimpleName());
                }
                yield new Value(type, null, s);
            }
            case ARRAY -> {
                Value v = infer(key, value);
                if (v.type != GgufValueType.ARRAY) {
                    throw new IllegalArgumentException(where + "an ARRAY needs a list or array, not a "
                            + value.getClass().getSimpleName());
                }
                yield v;
            }
            default -> throw new AssertionError(type);
        };
    }
}
