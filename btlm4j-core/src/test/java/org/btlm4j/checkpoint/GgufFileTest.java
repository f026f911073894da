package org.btlm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** GgufFile against hand-made broken and hostile files: each must fail with a CheckpointException that says why. */
class GgufFileTest {
    @TempDir
    Path tmp;

    /** Little-endian byte builder for hand-made GGUF files. */
    static final class Raw {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Raw u8(int v) {
            out.write(v);
            return this;
        }

        Raw u32(long v) {
            out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v).array());
            return this;
        }

        Raw u64(long v) {
            out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
            return this;
        }

        Raw str(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            out.writeBytes(b);
            return this;
        }

        /** Magic, version 3 and the two counts. */
        Raw header(long tensors, long kvs) {
            return u32(0x46554747).u32(3).u64(tensors).u64(kvs);
        }

        /** A tensor info: name, ne (innermost first), ggml type, offset. */
        Raw tensor(String name, long[] ne, int ggml, long offset) {
            str(name).u32(ne.length);
            for (long d : ne) {
                u64(d);
            }
            return u32(ggml).u64(offset);
        }

        /** Zero padding up to a multiple of {@code a}. */
        Raw pad(int a) {
            while (out.size() % a != 0) {
                out.write(0);
            }
            return this;
        }

        Raw zeros(int n) {
            out.writeBytes(new byte[n]);
            return this;
        }

        byte[] bytes() {
            return out.toByteArray();
        }
    }

    Path write(byte[] b) throws IOException {
        Path p = tmp.resolve("model.gguf");
        Files.write(p, b);
        return p;
    }

    String error(byte[] b) throws IOException {
        Path p = write(b);
        String msg = assertThrows(CheckpointException.class, () -> GgufFile.open(p).close()).getMessage();
        assertTrue(msg.startsWith("model.gguf: "), msg);
        return msg;
    }

    void assertError(byte[] b, String... parts) throws IOException {
        String msg = error(b);
        for (String part : parts) {
            assertTrue(msg.contains(part), "expected \"" + part + "\" in: " + msg);
        }
    }

    @Test
    void readsAHandMadeVersion2File() throws IOException {
        byte[] b = new Raw().u32(0x46554747).u32(2).u64(2).u64(1)
                .str("general.alignment").u32(4).u32(16)
                .tensor("a", new long[] {3, 2}, 0, 0)
                .tensor("b", new long[] {32}, 8, 32)
                .pad(16).zeros(32 + 34).bytes();
        Path p = write(b);
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(2, f.version());
            assertEquals(16, f.alignment());
            assertArrayEquals(new long[] {2, 3}, f.tensors().get("a").shape());
            assertEquals(DType.Q8_0, f.tensors().get("b").dtype());
            assertEquals(34, f.tensors().get("b").data().byteSize());
            assertEquals("model.gguf (GGUF v2, 2 tensors)", f.describe());
        }
    }

    @Test
    void rejectsWhatIsNotGgufOrNotThisVersion() throws IOException {
        assertError(new byte[0], "0 bytes, too short");
        assertError("GGML\3\0\0\0".getBytes(StandardCharsets.ISO_8859_1), "not a GGUF file", "0x4c4d4747");
        assertError(new Raw().u32(0x46554747).u32(1).u32(0).u32(0).bytes(), "version 1 is not supported");
        assertError(new Raw().u32(0x46554747).u32(4).u64(0).u64(0).bytes(), "unsupported GGUF version 4");
        assertError(new Raw().u32(0x46554747).u32(0x03000000).u64(0).u64(0).bytes(), "big-endian");
    }

    @Test
    void rejectsEveryTruncation() throws IOException {
        Path good = tmp.resolve("good.gguf");
        new GgufWriter().put("general.architecture", "btlm").put("list", List.of("ab", "cd")).put("n", 5)
                .addTensor("x", DType.F32, new long[] {2, 4}, out -> out.write(ByteBuffer.allocate(32)))
                .addTensor("q", DType.Q4_0, new long[] {1, 32}, out -> out.write(ByteBuffer.allocate(18)))
                .write(good, null);
        byte[] b = Files.readAllBytes(good);
        // q (18 bytes) is the last tensor, followed by 14 bytes of padding: every shorter prefix is missing something.
        int needed = b.length - 14;
        try (GgufFile f = GgufFile.open(good)) {
            assertEquals(2, f.tensors().size());
        }
        try (GgufFile f = GgufFile.open(write(Arrays.copyOf(b, needed)))) {
            assertEquals(18, f.tensors().get("q").data().byteSize());
        }
        for (int n = 0; n < needed; n++) {
            String msg = error(Arrays.copyOf(b, n));
            assertTrue(msg.contains("truncated") || msg.contains("too short") || msg.contains("more than the")
                    || msg.contains("bytes are left") || msg.contains("does not fit"), n + ": " + msg);
        }
    }

    @Test
    void rejectsCountsLargerThanTheFile() throws IOException {
        assertError(new Raw().header(1L << 40, 0).bytes(), "claims 1099511627776 tensors");
        assertError(new Raw().header(0, 1L << 40).bytes(), "claims 1099511627776 metadata entries");
        assertError(new Raw().header(0, -1).bytes(), "claims 18446744073709551615 metadata entries");
        assertError(new Raw().header(-1, 0).bytes(), "claims 18446744073709551615 tensors");
        assertError(new Raw().header(0, 1).str("a").u32(9).u32(0).u64(1L << 40).bytes(),
                "metadata a", "array of 1099511627776 UINT8 values does not fit");
        assertError(new Raw().header(0, 1).str("a").u32(9).u32(8).u64(-1).bytes(), "array of 18446744073709551615");
    }

    @Test
    void rejectsHugeStringLengths() throws IOException {
        assertError(new Raw().header(0, 1).u64(1L << 62).zeros(16).bytes(), "metadata entry 0", "key has length "
                + (1L << 62));
        assertError(new Raw().header(0, 1).u64(-1).zeros(16).bytes(), "length 18446744073709551615");
        assertError(new Raw().header(0, 1).str("k").u32(8).u64(100).zeros(16).bytes(), "metadata k",
                "string value has length 100");
        assertError(new Raw().header(1, 0).u64(1000).zeros(40).bytes(), "tensor info 0", "name has length 1000");
    }

    @Test
    void rejectsBadMetadata() throws IOException {
        assertError(new Raw().header(0, 1).str("k").u32(13).zeros(16).bytes(), "metadata k", "unknown value type 13");
        assertError(new Raw().header(0, 1).str("k").u32(9).u32(77).u64(0).bytes(), "unknown array element type 77");
        assertError(new Raw().header(0, 2).str("k").u32(4).u32(1).str("k").u32(4).u32(2).bytes(), "key k appears twice");
        assertError(new Raw().header(0, 1).str("k").u32(7).u8(2).zeros(16).bytes(), "BOOL value 2");
        assertError(new Raw().header(0, 1).str("k").u32(10).u64(-1).bytes(), "UINT64 value 18446744073709551615");
        // arrays of arrays: one level fine, two refused
        byte[] ok = new Raw().header(0, 1).str("k").u32(9).u32(9).u64(1).u32(5).u64(1).u32(7).bytes();
        try (GgufFile f = GgufFile.open(write(ok))) {
            assertEquals(List.of(List.of(7L)), f.metadata().get("k"));
        }
        assertError(new Raw().header(0, 1).str("k").u32(9).u32(9).u64(1).u32(9).u64(1).u32(5).u64(1).u32(7).bytes(),
                "nest deeper");
        assertError(new Raw().header(0, 1).str("general.alignment").u32(5).u32(32).bytes(), "must be a UINT32");
        assertError(new Raw().header(0, 1).str("general.alignment").u32(4).u32(48).bytes(), "48, must be a power of two");
        assertError(new Raw().header(0, 1).str("general.alignment").u32(4).u32(0).bytes(), "must be a power of two");
    }

    @Test
    void rejectsBadTensorInfos() throws IOException {
        assertError(new Raw().header(1, 0).tensor("t", new long[] {}, 0, 0).zeros(64).bytes(),
                "tensor t has 0 dimensions");
        assertError(new Raw().header(1, 0).tensor("t", new long[] {1, 1, 1, 1, 1}, 0, 0).zeros(64).bytes(),
                "tensor t has 5 dimensions");
        assertError(new Raw().header(1, 0).tensor("t", new long[] {4, 0}, 0, 0).zeros(64).bytes(),
                "ne[1] = 0");
        assertError(new Raw().header(1, 0).tensor("t", new long[] {-1}, 0, 0).zeros(64).bytes(),
                "ne[0] = 18446744073709551615");
        assertError(new Raw().header(1, 0).tensor("t", new long[] {1L << 32, 1L << 32}, 0, 0).zeros(64).bytes(),
                "tensor t", "product overflows");
        assertError(new Raw().header(1, 0).tensor("t", new long[] {1L << 31, 1L << 31}, 0, 0).zeros(64).bytes(),
                "tensor t", "size overflows");
        assertError(new Raw().header(1, 0).tensor("t", new long[] {32}, 12, 0).zeros(64).bytes(),
                "tensor t has ggml type 12 (Q4_K)");
        assertError(new Raw().header(1, 0).tensor("t", new long[] {32}, 999, 0).zeros(64).bytes(),
                "ggml type 999 (unknown)");
        assertError(new Raw().header(1, 0).tensor("t", new long[] {48}, 8, 0).zeros(64).bytes(),
                "ne[0] = 48", "block size 32");
    }

    @Test
    void rejectsBadOffsets() throws IOException {
        assertError(new Raw().header(1, 0).tensor("t", new long[] {1}, 0, 4).pad(32).zeros(64).bytes(),
                "tensor t", "offset 4, not a multiple of the alignment 32");
        assertError(new Raw().header(1, 0).tensor("t", new long[] {4}, 0, 1 << 20).pad(32).zeros(64).bytes(),
                "tensor t", "runs past the end of the 64-byte data section");
        assertError(new Raw().header(1, 0).tensor("t", new long[] {4}, 0, -32).pad(32).zeros(64).bytes(),
                "offset 18446744073709551584");
        assertError(new Raw().header(1, 0).tensor("t", new long[] {20}, 0, 0).pad(32).zeros(64).bytes(),
                "with 80 bytes runs past the end");
        assertError(new Raw().header(2, 0).tensor("a", new long[] {16}, 0, 0).tensor("b", new long[] {4}, 0, 32)
                .pad(32).zeros(128).bytes(), "tensors a and b overlap");
        assertError(new Raw().header(2, 0).tensor("a", new long[] {4}, 0, 0).tensor("b", new long[] {4}, 0, 0)
                .pad(32).zeros(128).bytes(), "overlap");
        assertError(new Raw().header(2, 0).tensor("a", new long[] {4}, 0, 0).tensor("a", new long[] {4}, 0, 32)
                .pad(32).zeros(128).bytes(), "tensor a appears twice");
        // the data section must exist when there are tensors
        assertError(new Raw().header(1, 0).tensor("t", new long[] {1}, 0, 0).bytes(), "truncated");
    }

    @Test
    void refusesAbsurdMetadataVolume() throws IOException {
        // 2^24 + 1 one-byte values would fit the file but exceed the element budget
        Raw r = new Raw().header(0, 1).str("k").u32(9).u32(0).u64(GgufFile.MAX_METADATA_ELEMENTS + 1);
        r.zeros((int) GgufFile.MAX_METADATA_ELEMENTS + 1);
        assertError(r.bytes(), "more than 16777216 values");
    }

    @Test
    void openingADirectoryOrMissingFileFails() {
        assertThrows(CheckpointException.class, () -> GgufFile.open(tmp));
        assertThrows(CheckpointException.class, () -> GgufFile.open(tmp.resolve("nope.gguf")));
    }
}
