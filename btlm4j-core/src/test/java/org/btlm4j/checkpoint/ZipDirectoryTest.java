package org.btlm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;

class ZipDirectoryTest {

    static ZipDirectory read(byte[] bytes) {
        return ZipDirectory.read(MemorySegment.ofArray(bytes), "test.zip");
    }

    /** Entry names and bytes as java.util.zip sees them, against ours. */
    static void sameAsJavaUtilZip(Path file) throws IOException {
        ZipDirectory ours = read(Files.readAllBytes(file));
        List<String> names = new ArrayList<>();
        try (ZipFile zip = new ZipFile(file.toFile())) {
            for (ZipEntry e : Collections.list(zip.entries())) {
                names.add(e.getName());
                byte[] want = zip.getInputStream(e).readAllBytes();
                ZipDirectory.Entry entry = ours.get(e.getName());
                assertEquals(want.length, entry.size(), file + " " + e.getName());
                byte[] got = ours.storedData(entry, "test").toArray(ValueLayout.JAVA_BYTE);
                assertEquals(-1, MemorySegment.ofArray(want).mismatch(MemorySegment.ofArray(got)), e.getName());
            }
        }
        assertEquals(names, new ArrayList<>(ours.entries().keySet()), file.toString());
    }

    @Test
    void readsWhatJavaUtilZipReads() throws IOException {
        sameAsJavaUtilZip(TorchCheckpointTest.resource("fixtures/btlm-tiny-bin/pytorch_model.bin"));
        for (String f : List.of("dtypes.pt", "views.pt", "shared.pt", "protocol4.pt", "buffer_saved.pt",
                "handmade_ok.pt", "zip64.pt", "zip64_local.pt")) {
            sameAsJavaUtilZip(TorchCheckpointTest.torchFile(f));
        }
    }

    @Test
    void torchAlignsStorageData() throws IOException {
        ZipDirectory zip = read(Files.readAllBytes(TorchCheckpointTest.resource("fixtures/btlm-tiny-bin/pytorch_model.bin")));
        for (ZipDirectory.Entry e : zip.entries().values()) {
            assertEquals(ZipDirectory.STORED, e.method(), e.name());
            assertEquals(0, e.dataOffset() % 64, e.name());
        }
    }

    @Test
    void zip64FieldsAreUsed() throws IOException {
        // every size and offset of zip64.pt's central directory is 0xFFFFFFFF, the real values in ZIP64 extras
        byte[] bytes = Files.readAllBytes(TorchCheckpointTest.torchFile("zip64.pt"));
        ZipDirectory zip = read(bytes);
        assertTrue(zip.entries().size() >= 3);
        ZipDirectory.Entry pkl = zip.get("archive/data.pkl");
        assertEquals(0, pkl.localHeaderOffset());
        assertEquals(0, pkl.dataOffset() % 64);
        ZipDirectory.Entry data = zip.get("archive/data/0");
        assertTrue(data.localHeaderOffset() > 0);
        assertEquals(12, data.size()); // 6 float16 values
    }

    @Test
    void brokenZip64Records() throws IOException {
        byte[] good = Files.readAllBytes(TorchCheckpointTest.torchFile("zip64.pt"));
        int eocd = good.length - 22;
        int locator = eocd - 20;

        byte[] noLocator = good.clone();
        noLocator[locator] = 'X';
        CheckpointException e = assertThrows(CheckpointException.class, () -> read(noLocator));
        assertTrue(e.getMessage().contains("needs ZIP64 values but there is no ZIP64 locator"), e.getMessage());

        byte[] badTarget = good.clone();
        ByteBuffer.wrap(badTarget).order(ByteOrder.LITTLE_ENDIAN).putLong(locator + 8, 10);
        e = assertThrows(CheckpointException.class, () -> read(badTarget));
        assertTrue(e.getMessage().contains("no ZIP64 end-of-central-directory record at offset 10"), e.getMessage());

        byte[] pastEnd = good.clone();
        ByteBuffer.wrap(pastEnd).order(ByteOrder.LITTLE_ENDIAN).putLong(locator + 8, Long.MIN_VALUE);
        e = assertThrows(CheckpointException.class, () -> read(pastEnd));
        assertTrue(e.getMessage().contains("ZIP64 end-of-central-directory offset 9223372036854775808 is beyond"),
                e.getMessage());

        byte[] manyEntries = good.clone();
        long zip64Eocd = ByteBuffer.wrap(good).order(ByteOrder.LITTLE_ENDIAN).getLong(locator + 8);
        ByteBuffer.wrap(manyEntries).order(ByteOrder.LITTLE_ENDIAN)
                .putLong((int) zip64Eocd + 24, 1000).putLong((int) zip64Eocd + 32, 1000);
        e = assertThrows(CheckpointException.class, () -> read(manyEntries));
        assertTrue(e.getMessage().contains("cannot hold the 1000 entries it claims"), e.getMessage());
    }

    @Test
    void commentsAndCompressedEntries() throws IOException {
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        try (ZipOutputStream zip = new ZipOutputStream(buffer)) {
            zip.putNextEntry(new ZipEntry("a/deflated"));
            zip.write("hello hello hello hello".getBytes(StandardCharsets.US_ASCII));
            zip.closeEntry();
            // a comment that itself looks like the start of an end-of-central-directory record
            zip.setComment("PK\u0005\u0006 not the real one " + "x".repeat(1000));
        }
        ZipDirectory dir = read(buffer.toByteArray());
        ZipDirectory.Entry e = dir.get("a/deflated");
        assertEquals(8, e.method());
        assertEquals(23, e.size());
        CheckpointException x = assertThrows(CheckpointException.class, () -> dir.storedData(e, "greeting"));
        assertEquals("test.zip: entry a/deflated (greeting) is compressed (zip method 8); only stored entries are"
                + " supported, as torch.save writes them: re-save the checkpoint with torch.save instead of"
                + " re-zipping it", x.getMessage());
    }

    @Test
    void notZips() {
        assertTrue(assertThrows(CheckpointException.class, () -> read(new byte[10])).getMessage()
                .contains("too short to be a zip archive"));
        assertTrue(assertThrows(CheckpointException.class, () -> read(new byte[100])).getMessage()
                .contains("no zip end-of-central-directory record"));
        byte[] emptyZip = {'P', 'K', 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        assertEquals(0, read(emptyZip).entries().size());
        byte[] lying = emptyZip.clone();
        lying[8] = lying[10] = 5; // five entries in a zero-byte directory
        assertTrue(assertThrows(CheckpointException.class, () -> read(lying)).getMessage()
                .contains("cannot hold the 5 entries it claims"));
    }
}
