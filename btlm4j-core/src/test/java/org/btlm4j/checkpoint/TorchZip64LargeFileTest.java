package org.btlm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real checkpoint over 4 GB, as a sparse file: its big storage is a hole, so it takes a few
 * kilobytes of disk. Offsets and sizes past 4 GB exist only in ZIP64 fields, as in BTLM-3B's
 * 5.3 GB {@code pytorch_model.bin}.
 */
class TorchZip64LargeFileTest {

    private static final long BIG = 4_500_000_000L;

    /** Pickle opcodes for a torch state dict, written by hand. */
    private static final class Pickle {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Pickle op(int... bytes) {
            for (int b : bytes) {
                out.write(b);
            }
            return this;
        }

        Pickle str(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            op('X').le(b.length, 4);
            out.writeBytes(b);
            return this;
        }

        Pickle integer(long v) {
            return op(0x8a, 8).le(v, 8); // LONG1 of 8 bytes
        }

        Pickle global(String module, String name) {
            out.writeBytes(("c" + module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
            return this;
        }

        Pickle le(long v, int n) {
            for (int i = 0; i < n; i++) {
                out.write((int) (v >>> (8 * i)));
            }
            return this;
        }

        /** name: _rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, (size,), (1,), False, OrderedDict()) */
        Pickle tensor(String name, String storageType, String key, long numel, long offset, long size) {
            str(name).global("torch._utils", "_rebuild_tensor_v2").op('(');
            op('(').str("storage").global("torch", storageType).str(key).str("cpu").integer(numel).op('t', 'Q');
            integer(offset).integer(size).op(0x85).integer(1).op(0x85).op(0x89);
            global("collections", "OrderedDict").op(')', 'R');
            return op('t', 'R');
        }
    }

    private record Entry(String name, long offset, long size, int crc) {}

    @Test
    void readsCheckpointLargerThan4GB(@TempDir Path dir) throws IOException {
        assumeTrue(Files.getFileStore(dir).getUsableSpace() > 2 * BIG, "needs room in case sparse files are not");
        Pickle p = new Pickle().op(0x80, 2, '}', '(');
        p.tensor("big", "ByteStorage", "0", BIG, 0, BIG);
        p.tensor("big_tail", "ByteStorage", "0", BIG, BIG - 4, 4);
        p.tensor("small", "FloatStorage", "1", 4, 0, 4);
        p.op('u', '.');
        byte[] pickle = p.out.toByteArray();
        ByteBuffer small = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putFloat(1).putFloat(2).putFloat(3)
                .putFloat(4).flip();

        Path file = dir.resolve("big.bin");
        List<Entry> entries = new ArrayList<>();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
                StandardOpenOption.SPARSE)) {
            entries.add(local(ch, "big/data.pkl", ByteBuffer.wrap(pickle), pickle.length));
            Entry big = local(ch, "big/data/0", null, BIG); // a hole ...
            ch.write(ByteBuffer.wrap(new byte[] {1, 2, 3, 4}), big.offset() + 30 + 10 + 20 + BIG - 4); // ... but its end
            ch.position(big.offset() + 30 + 10 + 20 + BIG);
            entries.add(big);
            entries.add(local(ch, "big/data/1", small, 16));
            entries.add(local(ch, "big/version", ByteBuffer.wrap("3\n".getBytes(StandardCharsets.US_ASCII)), 2));
            long cdOffset = ch.position();
            for (Entry e : entries) {
                byte[] name = e.name().getBytes(StandardCharsets.UTF_8);
                ByteBuffer h = le(46 + name.length + 28);
                h.putInt(0x02014b50).putShort((short) 45).putShort((short) 45).putShort((short) 0).putShort((short) 0)
                        .putInt(0).putInt(e.crc()).putInt(-1).putInt(-1).putShort((short) name.length)
                        .putShort((short) 28).putShort((short) 0).putShort((short) 0).putShort((short) 0).putInt(0)
                        .putInt(-1).put(name)
                        .putShort((short) 1).putShort((short) 24).putLong(e.size()).putLong(e.size()).putLong(e.offset());
                write(ch, h);
            }
            long cdSize = ch.position() - cdOffset;
            long zip64Eocd = ch.position();
            ByteBuffer end = le(56 + 20 + 22);
            end.putInt(0x06064b50).putLong(44).putShort((short) 45).putShort((short) 45).putInt(0).putInt(0)
                    .putLong(entries.size()).putLong(entries.size()).putLong(cdSize).putLong(cdOffset);
            end.putInt(0x07064b50).putInt(0).putLong(zip64Eocd).putInt(1);
            end.putInt(0x06054b50).putShort((short) 0).putShort((short) 0).putShort((short) -1).putShort((short) -1)
                    .putInt(-1).putInt(-1).putShort((short) 0);
            write(ch, end);
        }
        assertEquals(true, Files.size(file) > BIG);

        try (TorchCheckpoint ckpt = TorchCheckpoint.open(file)) {
            Map<String, TensorInfo> t = ckpt.tensors();
            assertEquals(List.of("big", "big_tail", "small"), new ArrayList<>(t.keySet()));
            TensorInfo big = t.get("big");
            assertEquals(DType.U8, big.dtype());
            assertArrayEquals(new long[] {BIG}, big.shape());
            assertEquals(BIG, big.data().byteSize());
            assertEquals(0, big.data().get(ValueLayout.JAVA_BYTE, 3_000_000_000L));
            assertEquals(4, big.data().get(ValueLayout.JAVA_BYTE, BIG - 1));
            assertArrayEquals(new byte[] {1, 2, 3, 4}, t.get("big_tail").data().toArray(ValueLayout.JAVA_BYTE));
            float[] values = t.get("small").data().toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
            assertArrayEquals(new float[] {1, 2, 3, 4}, values);
            assertEquals(true, t.get("small").data().address() - big.data().address() > BIG);
        }
    }

    private static ByteBuffer le(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static void write(FileChannel ch, ByteBuffer b) throws IOException {
        b.flip();
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    /** A local header with a ZIP64 extra field, then the data (or, for null, a hole of that size). */
    private static Entry local(FileChannel ch, String name, ByteBuffer data, long size) throws IOException {
        long offset = ch.position();
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        ByteBuffer h = le(30 + n.length + 20);
        h.putInt(0x04034b50).putShort((short) 45).putShort((short) 0).putShort((short) 0).putInt(0).putInt(0)
                .putInt(-1).putInt(-1).putShort((short) n.length).putShort((short) 20).put(n)
                .putShort((short) 1).putShort((short) 16).putLong(size).putLong(size);
        write(ch, h);
        if (data != null) {
            while (data.hasRemaining()) {
                ch.write(data);
            }
        }
        return new Entry(name, offset, size, 0);
    }
}
