package org.btlm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.btlm4j.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsFileTest {
    @TempDir
    Path tmp;

    /** A safetensors file with the given header JSON and {@code dataBytes} bytes of data. */
    Path file(String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).array());
        out.write(h);
        for (int i = 0; i < dataBytes; i++) {
            out.write(i * 7 + 1);
        }
        Path p = tmp.resolve("model.safetensors");
        Files.write(p, out.toByteArray());
        return p;
    }

    String error(Path p) {
        return assertThrows(CheckpointException.class, () -> SafetensorsFile.open(p).close()).getMessage();
    }

    @Test
    void readsTheTinyFixture() {
        try (SafetensorsFile f = SafetensorsFile.open(Fixtures.tiny().resolve("model.safetensors"))) {
            TensorInfo wte = f.tensors().get("transformer.wte.weight");
            assertEquals(DType.BF16, wte.dtype());
            assertArrayEquals(new long[] {50257, 64}, wte.shape());
            assertEquals(50257L * 64 * 2, wte.data().byteSize());
            assertFalse(f.tensors().containsKey("lm_head.weight"));
            assertTrue(f.describe().contains("safetensors"));
        }
    }

    @Test
    void readsF32ValuesInPlace() throws IOException {
        Path p = file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"__metadata__\":{\"format\":\"pt\"}}", 0);
        byte[] bytes = Files.readAllBytes(p);
        byte[] withData = java.util.Arrays.copyOf(bytes, bytes.length + 8);
        ByteBuffer.wrap(withData, bytes.length, 8).order(ByteOrder.LITTLE_ENDIAN).putFloat(1.5f).putFloat(-2f);
        Files.write(p, withData);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            TensorInfo a = f.tensors().get("a");
            assertEquals(1.5f, a.data().get(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, 0));
            assertEquals("pt", f.metadata().get("format"));
        }
    }

    @Test
    void rejectsTruncatedFiles() throws IOException {
        Path p = tmp.resolve("short.safetensors");
        Files.write(p, new byte[] {1, 2, 3});
        assertTrue(error(p).contains("too short"));
        p = file("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
        assertTrue(error(p).contains("outside the 8 bytes of data"), error(p));
        Files.write(p, java.util.Arrays.copyOf(Files.readAllBytes(p), 20));
        assertTrue(error(p).contains("runs past the end"), error(p));
    }

    @Test
    void rejectsHeadersThatLie() throws IOException {
        assertTrue(error(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8))
                .contains("needs 12 bytes but data_offsets give 8"));
        assertTrue(error(file("{\"a\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8))
                .contains("unsupported dtype \"Q9\""));
        assertTrue(error(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12)).contains("overlap"));
        assertTrue(error(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8))
                .contains("too large"));
        assertTrue(error(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8))
                .contains("invalid dimension"));
        assertTrue(error(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8))
                .contains("data_offsets [8, 0]"));
        assertTrue(error(file("{\"a\": 5}", 0)).contains("not an object"));
        assertTrue(error(file("not json at all", 0)).contains("not valid JSON"));
        assertTrue(error(file("[1,2]", 0)).contains("not a JSON object"));
    }

    @Test
    void rejectsAbsurdHeaderLength() throws IOException {
        Path p = tmp.resolve("big.safetensors");
        Files.write(p, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(Long.MAX_VALUE).array());
        assertTrue(error(p).contains("header length"));
    }

    @Test
    void missingFileIsAClearError() {
        assertTrue(error(tmp.resolve("absent.safetensors")).contains("file not found"));
    }
}
