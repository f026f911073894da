package org.btlm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Files written by llama.cpp's own Python {@code gguf} package (tools/make_gguf_test_files.py) read
 * as that package wrote them: every metadata type, F32/F16/Q8_0/Q4_0 tensors, alignment 32 and 64.
 */
class GgufInteropTest {

    static Path resource(String name) throws URISyntaxException {
        return Path.of(GgufInteropTest.class.getResource("/gguf/" + name).toURI());
    }

    @Test
    void readsFilesWrittenByLlamaCppsGgufPackage() throws Exception {
        JsonNode expected = new ObjectMapper().readTree(resource("llamacpp.json").toFile());
        int files = 0;
        for (Map.Entry<String, JsonNode> file : expected.get("files").properties()) {
            files++;
            check(resource(file.getKey()), file.getValue().asLong(), expected);
        }
        assertEquals(2, files);
    }

    private static void check(Path path, long alignment, JsonNode expected) throws IOException {
        String where = path.getFileName().toString();
        try (GgufFile f = GgufFile.open(path)) {
            assertEquals(3, f.version(), where);
            assertEquals(alignment, f.alignment(), where);
            List<String> keys = new ArrayList<>(f.metadata().keySet());
            keys.remove("general.alignment");
            List<String> expectedKeys = new ArrayList<>();
            expected.get("metadata").fieldNames().forEachRemaining(expectedKeys::add);
            assertEquals(expectedKeys, keys, where);
            for (Map.Entry<String, JsonNode> m : expected.get("metadata").properties()) {
                String key = m.getKey();
                GgufValueType type = GgufValueType.valueOf(m.getValue().get("type").asText());
                assertEquals(type, f.valueType(key).orElseThrow(), where + " " + key);
                assertValue(m.getValue().get("value"), f.metadata().get(key), where + " " + key);
            }
            assertEquals("btlm", f.string("general.architecture"));
            assertEquals(4000000000L, f.integer("test.uint32"));
            assertEquals(0.25, f.number("test.float32"));

            List<String> names = new ArrayList<>();
            expected.get("tensors").fieldNames().forEachRemaining(names::add);
            assertEquals(names, new ArrayList<>(f.tensors().keySet()), where);
            for (Map.Entry<String, JsonNode> t : expected.get("tensors").properties()) {
                TensorInfo info = f.tensors().get(t.getKey());
                String what = where + " " + t.getKey();
                assertEquals(DType.valueOf(t.getValue().get("type").asText()), info.dtype(), what);
                long[] shape = new long[t.getValue().get("shape").size()];
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = t.getValue().get("shape").get(i).asLong();
                }
                assertArrayEquals(shape, info.shape(), what);
                assertArrayEquals(HexFormat.of().parseHex(t.getValue().get("hex").asText()),
                        info.data().toArray(ValueLayout.JAVA_BYTE), what);
                assertEquals(0, info.data().address() % alignment, what);
            }
            assertTrue(f.describe().endsWith("(GGUF v3, 5 tensors)"), f.describe());
        }
    }

    private static void assertValue(JsonNode expected, Object actual, String what) {
        if (expected.isArray()) {
            List<?> list = (List<?>) actual;
            assertEquals(expected.size(), list.size(), what);
            for (int i = 0; i < list.size(); i++) {
                assertValue(expected.get(i), list.get(i), what + "[" + i + "]");
            }
        } else if (expected.isBoolean()) {
            assertEquals(expected.asBoolean(), actual, what);
        } else if (expected.isIntegralNumber()) {
            assertEquals(expected.asLong(), actual, what);
        } else if (expected.isNumber()) {
            assertEquals(expected.asDouble(), (Double) actual, 0.0, what); // every float here is exact in FLOAT32
        } else {
            assertEquals(expected.asText(), actual, what);
        }
    }
}
