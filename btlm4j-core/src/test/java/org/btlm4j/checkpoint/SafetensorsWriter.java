package org.btlm4j.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Writes safetensors files for tests (e.g. a fixture with one tensor changed). */
public final class SafetensorsWriter {
    private SafetensorsWriter() {
    }

    /** One tensor to write: name, dtype name as safetensors spells it, shape, raw bytes. */
    public record Entry(String name, String dtype, long[] shape, byte[] bytes) {
        public static Entry of(TensorInfo t) {
            return new Entry(t.name(), t.dtype().name(), t.shape(), t.data().toArray(ValueLayout.JAVA_BYTE));
        }
    }

    public static void write(Path file, List<Entry> entries) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        long offset = 0;
        for (Entry e : entries) {
            ObjectNode t = header.putObject(e.name());
            t.put("dtype", e.dtype());
            var shape = t.putArray("shape");
            for (long d : e.shape()) {
                shape.add(d);
            }
            t.putArray("data_offsets").add(offset).add(offset + e.bytes().length);
            offset += e.bytes().length;
        }
        byte[] h = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (h.length + 7) / 8 * 8;
        try (OutputStream out = Files.newOutputStream(file)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).array());
            out.write(h);
            for (int i = h.length; i < padded; i++) {
                out.write(' ');
            }
            for (Entry e : entries) {
                out.write(e.bytes());
            }
        }
    }
}
