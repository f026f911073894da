package org.btlm4j.checkpoint;

import static org.btlm4j.HostileInput.refusalOf;
import static org.btlm4j.HostileInput.touchTensors;
import static org.btlm4j.HostileInput.write;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Coverage-guided fuzzing of the checkpoint readers (Jazzer). In a plain {@code mvn test} each
 * target runs once over its saved inputs in {@code src/test/resources/org/btlm4j/checkpoint/
 * CheckpointFuzzTestInputs/<target>/} (seeds made from the valid test files, and every crash the
 * fuzzer found); with {@code JAZZER_FUZZ=1} one target fuzzes for {@code maxDuration}. The
 * contract: a file is either read, with every tensor a readable slice of the file, or refused with
 * a {@link CheckpointException} that names the problem; nothing else escapes (see
 * {@link org.btlm4j.HostileInput}). Jazzer itself reports a hang (over 10 s per input in fuzzing
 * mode) and an OutOfMemoryError as findings.
 */
class CheckpointFuzzTest {

    private static Path dir;

    @BeforeAll
    static void createDirectory() throws IOException {
        dir = Files.createTempDirectory("btlm4j-fuzz");
    }

    @AfterAll
    static void deleteDirectory() throws IOException {
        try (var files = Files.list(dir)) {
            for (Path f : files.toList()) {
                Files.delete(f);
            }
        }
        Files.delete(dir);
    }

    @FuzzTest(maxDuration = "60s")
    void safetensors(byte[] bytes) {
        Path file = write(dir.resolve("fuzz.safetensors"), bytes);
        refusalOf(() -> {
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                touchTensors(f.tensors(), bytes.length, true);
            }
        });
    }

    @FuzzTest(maxDuration = "60s")
    void gguf(byte[] bytes) {
        Path file = write(dir.resolve("fuzz.gguf"), bytes);
        refusalOf(() -> {
            try (GgufFile f = GgufFile.open(file)) {
                touchTensors(f.tensors(), bytes.length, true);
                f.metadata().values().forEach(String::valueOf);
            }
        });
    }

    /** The whole {@code .bin} file: zip directory, local headers, pickle and storages. */
    @FuzzTest(maxDuration = "60s")
    void torchFile(byte[] bytes) {
        Path file = write(dir.resolve("fuzz.bin"), bytes);
        refusalOf(() -> {
            try (TorchCheckpoint c = TorchCheckpoint.open(file)) {
                touchTensors(c.tensors(), bytes.length, false);
            }
        });
    }

    /** The zip reader alone, and the stored data of every entry it accepts. */
    @FuzzTest(maxDuration = "60s")
    void zipDirectory(byte[] bytes) {
        MemorySegment file = MemorySegment.ofArray(bytes);
        refusalOf(() -> {
            ZipDirectory zip = ZipDirectory.read(file, "fuzz.zip");
            for (ZipDirectory.Entry e : zip.entries().values()) {
                refusalOf(() -> zip.storedData(e, "an entry").byteSize());
            }
        });
    }

    /**
     * The unpickler: the input is {@code data.pkl} of an otherwise well-formed archive with
     * storages 0 to 3 of 64 bytes each, so that every mutation reaches the pickle machine and the
     * hooks that turn its values into tensors.
     */
    @FuzzTest(maxDuration = "60s")
    void pickle(byte[] pickle) {
        byte[] archive = archiveWith(pickle);
        Path file = write(dir.resolve("fuzz-pickle.bin"), archive);
        refusalOf(() -> {
            try (TorchCheckpoint c = TorchCheckpoint.open(file)) {
                touchTensors(c.tensors(), archive.length, false);
            }
        });
    }

    /** A torch.save-like zip (stored entries) around {@code pickle}. */
    static byte[] archiveWith(byte[] pickle) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            try (ZipOutputStream zip = new ZipOutputStream(out)) {
                stored(zip, "archive/data.pkl", pickle);
                stored(zip, "archive/byteorder", "little".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                for (int i = 0; i < 4; i++) {
                    byte[] storage = new byte[64];
                    for (int j = 0; j < storage.length; j++) {
                        storage[j] = (byte) (i * 64 + j);
                    }
                    stored(zip, "archive/data/" + i, storage);
                }
                stored(zip, "archive/version", "3\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            }
            return out.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void stored(ZipOutputStream zip, String name, byte[] bytes) throws IOException {
        ZipEntry e = new ZipEntry(name);
        e.setMethod(ZipEntry.STORED);
        e.setSize(bytes.length);
        e.setCompressedSize(bytes.length);
        CRC32 crc = new CRC32();
        crc.update(bytes);
        e.setCrc(crc.getValue());
        zip.putNextEntry(e);
        zip.write(bytes);
        zip.closeEntry();
    }
}
