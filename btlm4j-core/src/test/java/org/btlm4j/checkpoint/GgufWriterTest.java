package org.btlm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** GgufWriter → GgufFile round trips, and the writer's refusals. */
class GgufWriterTest {
    @TempDir
    Path tmp;

    static byte[] bytes(long n, int seed) {
        byte[] b = new byte[(int) n];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** TensorData writing {@code b} in chunks of at most 7 bytes (streaming, several writes). */
    static GgufWriter.TensorData chunked(byte[] b) {
        return out -> {
            for (int i = 0; i < b.length; i += 7) {
                out.write(ByteBuffer.wrap(b, i, Math.min(7, b.length - i)));
            }
        };
    }

    @Test
    void roundTripsEveryMetadataType() {
        GgufWriter w = new GgufWriter();
        w.put("s", "héllo ☃");
        w.put("b", true);
        w.put("bf", false);
        w.put("i8", (byte) -5);
        w.put("i16", (short) -300);
        w.put("i32", -7);
        w.put("i64", Long.MIN_VALUE);
        w.put("f32", 1.5f);
        w.put("f64", Math.PI);
        w.put("u8", GgufValueType.UINT8, 255);
        w.put("u16", GgufValueType.UINT16, 65535);
        w.putU32("u32", 0xFFFF_FFFFL);
        w.putU64("u64", Long.MAX_VALUE);
        w.putF32("f32b", 0.1f);
        w.put("strings", List.of("a", "", "ü"));
        w.put("stringArray", new String[] {"x"});
        w.put("ints", new int[] {1, -2, 3});
        w.put("intList", List.of(4, 5));
        w.put("longs", new long[] {Long.MAX_VALUE});
        w.put("floats", new float[] {0.5f, -0.25f});
        w.put("doubles", new double[] {1e300});
        w.put("bools", new boolean[] {true, false});
        w.putArray("empty", GgufValueType.UINT8, List.of());
        w.putArray("u16s", GgufValueType.UINT16, List.of(1, 65535));
        w.put("nested", List.of(List.of(1, 2), List.of(3)));
        Path p = tmp.resolve("meta.gguf");
        w.write(p, null);
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(3, f.version());
            assertEquals(32, f.alignment());
            assertEquals("meta.gguf (GGUF v3, 0 tensors)", f.describe());
            Map<String, Object> m = f.metadata();
            assertEquals(List.of("s", "b", "bf", "i8", "i16", "i32", "i64", "f32", "f64", "u8", "u16", "u32", "u64",
                    "f32b", "strings", "stringArray", "ints", "intList", "longs", "floats", "doubles", "bools", "empty",
                    "u16s", "nested"), new ArrayList<>(m.keySet()));
            assertEquals("héllo ☃", f.string("s"));
            assertEquals(true, f.bool("b"));
            assertEquals(false, m.get("bf"));
            assertEquals(-5, f.integer("i8"));
            assertEquals(-300, f.integer("i16"));
            assertEquals(-7, f.integer("i32"));
            assertEquals(Long.MIN_VALUE, f.integer("i64"));
            assertEquals(1.5, f.number("f32"));
            assertEquals(Math.PI, f.number("f64"));
            assertEquals(255, f.integer("u8"));
            assertEquals(65535, f.integer("u16"));
            assertEquals(0xFFFF_FFFFL, f.integer("u32"));
            assertEquals(Long.MAX_VALUE, f.integer("u64"));
            assertEquals((double) 0.1f, f.number("f32b"));
            assertEquals(3.0, f.number("u8") - 252);
            assertEquals(List.of("a", "", "ü"), f.array("strings"));
            assertEquals(List.of("x"), m.get("stringArray"));
            assertEquals(List.of(1L, -2L, 3L), m.get("ints"));
            assertEquals(List.of(4L, 5L), m.get("intList"));
            assertEquals(List.of(Long.MAX_VALUE), m.get("longs"));
            assertEquals(List.of(0.5, -0.25), m.get("floats"));
            assertEquals(List.of(1e300), m.get("doubles"));
            assertEquals(List.of(true, false), m.get("bools"));
            assertEquals(List.of(), m.get("empty"));
            assertEquals(List.of(1L, 65535L), m.get("u16s"));
            assertEquals(List.of(List.of(1L, 2L), List.of(3L)), m.get("nested"));
            Map<String, GgufValueType> expectedTypes = new LinkedHashMap<>();
            expectedTypes.put("s", GgufValueType.STRING);
            expectedTypes.put("b", GgufValueType.BOOL);
            expectedTypes.put("i8", GgufValueType.INT8);
            expectedTypes.put("i16", GgufValueType.INT16);
            expectedTypes.put("i32", GgufValueType.INT32);
            expectedTypes.put("i64", GgufValueType.INT64);
            expectedTypes.put("f32", GgufValueType.FLOAT32);
            expectedTypes.put("f64", GgufValueType.FLOAT64);
            expectedTypes.put("u8", GgufValueType.UINT8);
            expectedTypes.put("u16", GgufValueType.UINT16);
            expectedTypes.put("u32", GgufValueType.UINT32);
            expectedTypes.put("u64", GgufValueType.UINT64);
            expectedTypes.put("ints", GgufValueType.ARRAY);
            expectedTypes.forEach((k, t) -> assertEquals(t, f.valueType(k).orElseThrow(), k));
            assertTrue(f.get("nope").isEmpty());
            assertEquals("héllo ☃", f.get("s").orElseThrow());
            assertThrows(UnsupportedOperationException.class, () -> m.put("x", 1L));
        }
    }

    @Test
    void gettersNameTheKeyAndTheExpectedType() {
        Path p = tmp.resolve("g.gguf");
        new GgufWriter().put("s", "x").put("n", 3).write(p, null);
        try (GgufFile f = GgufFile.open(p)) {
            String msg = assertThrows(CheckpointException.class, () -> f.integer("s")).getMessage();
            assertTrue(msg.contains("g.gguf") && msg.contains("key s") && msg.contains("STRING")
                    && msg.contains("an integer"), msg);
            msg = assertThrows(CheckpointException.class, () -> f.string("n")).getMessage();
            assertTrue(msg.contains("key n") && msg.contains("INT32") && msg.contains("a string"), msg);
            msg = assertThrows(CheckpointException.class, () -> f.number("missing")).getMessage();
            assertTrue(msg.contains("missing") && msg.contains("is missing"), msg);
            assertEquals(3.0, f.number("n"));
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {32, 64})
    void roundTripsTensorsOfEveryWeightType(int alignment) {
        record T(String name, DType type, long[] shape) {}
        List<T> specs = List.of(
                new T("f32", DType.F32, new long[] {2, 3}),
                new T("f16.vector", DType.F16, new long[] {5}),
                new T("bf16.cube", DType.BF16, new long[] {2, 3, 4}),
                new T("q8", DType.Q8_0, new long[] {2, 64}),
                new T("q4", DType.Q4_0, new long[] {3, 32}),
                new T("q8.4d", DType.Q8_0, new long[] {1, 2, 1, 32}),
                new T("i32", DType.I32, new long[] {3}),
                new T("f64", DType.F64, new long[] {1}));
        GgufWriter w = new GgufWriter();
        w.put("general.architecture", "test");
        if (alignment != 32) {
            w.put("general.alignment", alignment);
        }
        Map<String, byte[]> data = new LinkedHashMap<>();
        int seed = 0;
        for (T t : specs) {
            byte[] b = bytes(t.type.byteSize(t.shape), seed++);
            data.put(t.name, b);
            w.addTensor(t.name, t.type, t.shape, chunked(b));
        }
        assertEquals(specs.size(), w.tensorCount());
        Path p = tmp.resolve("t" + alignment + ".gguf");
        List<Long> progress = new ArrayList<>();
        w.write(p, progress::add);
        assertFalse(Files.exists(tmp.resolve("t" + alignment + ".gguf.partial")));
        for (int i = 1; i < progress.size(); i++) {
            assertTrue(progress.get(i) >= progress.get(i - 1));
        }
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(progress.getLast(), f.path().toFile().length());
            assertEquals(alignment, f.alignment());
            if (alignment != 32) {
                assertEquals(GgufValueType.UINT32, f.valueType("general.alignment").orElseThrow());
                assertEquals(alignment, f.integer("general.alignment"));
            }
            assertEquals("t" + alignment + ".gguf (GGUF v3, 8 tensors)", f.describe());
            assertEquals(specs.stream().map(T::name).toList(), new ArrayList<>(f.tensors().keySet()));
            MemorySegment first = null;
            for (T t : specs) {
                TensorInfo info = f.tensors().get(t.name);
                assertEquals(t.type, info.dtype(), t.name);
                assertArrayEquals(t.shape, info.shape(), t.name);
                assertArrayEquals(data.get(t.name), info.data().toArray(ValueLayout.JAVA_BYTE), t.name);
                if (first == null) {
                    first = info.data();
                }
                assertEquals(0, (info.data().address() - first.address()) % alignment, t.name);
                assertEquals(0, info.data().address() % alignment, t.name + " (mapping is page-aligned)");
            }
        }
    }

    @Test
    void writesNe0FirstOnDisk() throws IOException {
        Path p = tmp.resolve("ne.gguf");
        new GgufWriter().addTensor("w", DType.F32, new long[] {2, 3, 5}, chunked(new byte[120])).write(p, null);
        byte[] b = Files.readAllBytes(p);
        ByteBuffer buf = ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        // header 24 bytes, no metadata, then name (8 + 1), n_dims 4, ne...
        assertEquals(0x46554747, buf.getInt(0));
        assertEquals(3, buf.getInt(4));
        assertEquals(3, buf.getInt(24 + 9));
        assertEquals(5, buf.getLong(24 + 13));
        assertEquals(3, buf.getLong(24 + 21));
        assertEquals(2, buf.getLong(24 + 29));
        assertEquals(0, buf.getInt(24 + 37)); // F32
        assertEquals(0, buf.getLong(24 + 41)); // offset
        assertEquals(96 + 128, b.length); // header 73 bytes padded to 96, data 120 padded to 128
    }

    @Test
    void aTensorWritingTooFewOrTooManyBytesLeavesNoFile() throws IOException {
        Path p = tmp.resolve("bad.gguf");
        Files.writeString(p, "previous");
        GgufWriter w = new GgufWriter().addTensor("ok", DType.F32, new long[] {4}, chunked(new byte[16]))
                .addTensor("short", DType.F32, new long[] {4}, chunked(new byte[12]));
        String msg = assertThrows(CheckpointException.class, () -> w.write(p, null)).getMessage();
        assertTrue(msg.contains("bad.gguf") && msg.contains("short") && msg.contains("wrote 12 bytes, expected 16"), msg);
        assertEquals("previous", Files.readString(p));
        assertFalse(Files.exists(tmp.resolve("bad.gguf.partial")));

        GgufWriter w2 = new GgufWriter().addTensor("long", DType.F16, new long[] {4}, chunked(new byte[9]));
        msg = assertThrows(CheckpointException.class, () -> w2.write(p, null)).getMessage();
        assertTrue(msg.contains("long") && msg.contains("past its size"), msg);
        assertEquals("previous", Files.readString(p));
        assertFalse(Files.exists(tmp.resolve("bad.gguf.partial")));

        GgufWriter w3 = new GgufWriter().addTensor("boom", DType.F16, new long[] {4}, out -> {
            throw new IOException("source vanished");
        });
        msg = assertThrows(CheckpointException.class, () -> w3.write(p, null)).getMessage();
        assertTrue(msg.contains("boom") && msg.contains("source vanished"), msg);
        assertFalse(Files.exists(tmp.resolve("bad.gguf.partial")));

        GgufWriter w4 = new GgufWriter().addTensor("rt", DType.F16, new long[] {4}, out -> {
            throw new IllegalStateException("bug");
        });
        assertThrows(IllegalStateException.class, () -> w4.write(p, null));
        assertFalse(Files.exists(tmp.resolve("bad.gguf.partial")));
        assertEquals("previous", Files.readString(p));
    }

    @Test
    void refusesValuesAndTensorsGgufCannotHold() {
        GgufWriter w = new GgufWriter();
        assertThrows(IllegalArgumentException.class, () -> w.put("x", new Object()));
        assertThrows(IllegalArgumentException.class, () -> w.put("x", (Object) null));
        assertThrows(IllegalArgumentException.class, () -> w.put("x", List.of()));
        assertThrows(IllegalArgumentException.class, () -> w.put("x", List.of(List.of(List.of(1)))));
        assertThrows(IllegalArgumentException.class, () -> w.put("x", GgufValueType.UINT8, 256));
        assertThrows(IllegalArgumentException.class, () -> w.put("x", GgufValueType.INT8, -129));
        assertThrows(IllegalArgumentException.class, () -> w.putU32("x", -1));
        assertThrows(IllegalArgumentException.class, () -> w.putU64("x", -1));
        assertThrows(IllegalArgumentException.class, () -> w.put("x", GgufValueType.INT32, 1.5));
        assertThrows(IllegalArgumentException.class, () -> w.put("x", GgufValueType.STRING, 1));
        assertThrows(IllegalArgumentException.class, () -> w.put("x", GgufValueType.ARRAY, "s"));
        assertThrows(IllegalArgumentException.class, () -> w.put("x", List.of(1, "a")));
        assertThrows(IllegalArgumentException.class, () -> w.put("general.alignment", 48));
        assertThrows(IllegalArgumentException.class, () -> w.put("general.alignment", 0));
        assertThrows(IllegalArgumentException.class, () -> w.put("general.alignment", GgufValueType.UINT64, 64));
        GgufWriter.TensorData none = out -> {};
        assertThrows(IllegalArgumentException.class, () -> w.addTensor("u8", DType.U8, new long[] {4}, none));
        assertThrows(IllegalArgumentException.class, () -> w.addTensor("s", DType.F32, new long[] {}, none));
        assertThrows(IllegalArgumentException.class, () -> w.addTensor("s", DType.F32, new long[] {1, 1, 1, 1, 1}, none));
        assertThrows(IllegalArgumentException.class, () -> w.addTensor("s", DType.F32, new long[] {2, 0}, none));
        assertThrows(IllegalArgumentException.class, () -> w.addTensor("q", DType.Q8_0, new long[] {2, 48}, none));
        assertThrows(IllegalArgumentException.class, () -> w.addTensor("", DType.F32, new long[] {1}, none));
        assertThrows(IllegalArgumentException.class, () -> w.addTensor("n".repeat(64), DType.F32, new long[] {1}, none));
        assertThrows(IllegalArgumentException.class,
                () -> w.addTensor("big", DType.F32, new long[] {1L << 32, 1L << 32}, none));
        w.addTensor("a", DType.F32, new long[] {1}, none);
        String msg = assertThrows(IllegalArgumentException.class,
                () -> w.addTensor("a", DType.F32, new long[] {1}, none)).getMessage();
        assertTrue(msg.contains("tensor a"), msg);
        assertEquals(1, w.tensorCount());
    }

    @Test
    void laterPutReplacesAValueInPlace() {
        Path p = tmp.resolve("r.gguf");
        new GgufWriter().put("a", 1).put("b", 2).put("a", "one").write(p, null);
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(List.of("a", "b"), new ArrayList<>(f.metadata().keySet()));
            assertEquals("one", f.string("a"));
        }
    }

    @Test
    void emptyFileWithoutMetadataOrTensors() {
        Path p = tmp.resolve("empty.gguf");
        new GgufWriter().write(p, null);
        try (GgufFile f = GgufFile.open(p)) {
            assertTrue(f.metadata().isEmpty());
            assertTrue(f.tensors().isEmpty());
            assertEquals(32, p.toFile().length());
        }
    }
}
