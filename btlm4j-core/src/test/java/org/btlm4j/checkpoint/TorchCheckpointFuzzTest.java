package org.btlm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Damaged copies of valid checkpoints: each either opens or fails with a CheckpointException, nothing else. */
class TorchCheckpointFuzzTest {

    @TempDir
    Path dir;

    private int opened;
    private int refused;

    private void tryOpen(byte[] bytes, String what) throws IOException {
        Path file = dir.resolve("fuzz.pt");
        Files.write(file, bytes);
        try (TorchCheckpoint ckpt = TorchCheckpoint.open(file)) {
            for (TensorInfo t : ckpt.tensors().values()) {
                MemorySegment d = t.data();
                if (d.byteSize() > 0) { // every slice lies inside the mapping
                    d.get(ValueLayout.JAVA_BYTE, 0);
                    d.get(ValueLayout.JAVA_BYTE, d.byteSize() - 1);
                }
            }
            opened++;
        } catch (CheckpointException e) {
            assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
            if (e.getMessage().contains("malformed PyTorch checkpoint (")) {
                fail(what + ": an unexpected exception escaped the checks: " + e.getMessage(), e.getCause());
            }
            refused++;
        } catch (Throwable t) {
            fail(what + ": " + t, t);
        }
    }

    @Test
    void everyTruncation() throws IOException {
        for (String name : new String[] {"zip64.pt", "shared.pt"}) {
            byte[] good = Files.readAllBytes(TorchCheckpointTest.torchFile(name));
            int step = name.equals("zip64.pt") ? 1 : 3;
            for (int n = 0; n < good.length; n += step) {
                tryOpen(Arrays.copyOf(good, n), name + " cut to " + n);
            }
        }
        assertTrue(refused > 0);
    }

    @Test
    void randomByteChanges() throws IOException {
        Random random = new Random(20240611);
        for (String name : new String[] {"dtypes.pt", "shared.pt", "zip64.pt", "protocol4.pt", "module_state.pt",
                "parameter.pt", "views.pt"}) {
            byte[] good = Files.readAllBytes(TorchCheckpointTest.torchFile(name));
            for (int round = 0; round < 100; round++) {
                byte[] bad = good.clone();
                int changes = 1 + random.nextInt(4);
                for (int i = 0; i < changes; i++) {
                    int at = random.nextInt(bad.length);
                    bad[at] = switch (random.nextInt(4)) {
                        case 0 -> (byte) random.nextInt(256);
                        case 1 -> (byte) 0xff;
                        case 2 -> 0;
                        default -> (byte) (bad[at] + 1);
                    };
                }
                tryOpen(bad, name + " round " + round);
            }
        }
        assertTrue(opened > 0 && refused > 0, opened + " opened, " + refused + " refused");
    }

    @Test
    void randomPickleChanges() throws IOException {
        // damage only the pickle of a stored-entry archive, so that the unpickler sees the damage
        Random random = new Random(7);
        byte[] good = Files.readAllBytes(TorchCheckpointTest.torchFile("dtypes.pt"));
        ZipDirectory zip = ZipDirectory.read(MemorySegment.ofArray(good), "dtypes.pt");
        ZipDirectory.Entry pkl = zip.get("dtypes/data.pkl");
        for (int round = 0; round < 800; round++) {
            byte[] bad = good.clone();
            int at = (int) (pkl.dataOffset() + random.nextInt((int) pkl.size()));
            bad[at] = (byte) random.nextInt(256);
            if (random.nextBoolean()) {
                int at2 = (int) (pkl.dataOffset() + random.nextInt((int) pkl.size()));
                bad[at2] = (byte) random.nextInt(256);
            }
            tryOpen(bad, "pickle round " + round);
        }
        assertTrue(opened > 0 && refused > 0, opened + " opened, " + refused + " refused");
    }
}
