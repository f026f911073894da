package org.btlm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.URISyntaxException;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

class TorchCheckpointTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static Path resource(String name) {
        try {
            var url = TorchCheckpointTest.class.getResource("/" + name);
            assertNotNull(url, "missing test resource " + name);
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new AssertionError(e);
        }
    }

    static Path torchFile(String name) {
        return resource("torch/" + name);
    }

    static JsonNode expected() throws IOException {
        return JSON.readTree(torchFile("expected.json").toFile());
    }

    private static Path sentinel() throws IOException {
        return Path.of(expected().get("sentinel").asText());
    }

    @BeforeAll
    static void noSentinelYet() throws IOException {
        Files.deleteIfExists(sentinel());
    }

    @AfterAll
    static void sentinelNeverCreated() throws IOException {
        assertFalse(Files.exists(sentinel()), "a hostile pickle created " + sentinel());
    }

    // ---- the BTLM fixture: a real torch.save of the tiny model, against its safetensors twin ------

    @Test
    void fixtureMatchesSafetensorsByteForByte() throws IOException {
        Path bin = resource("fixtures/btlm-tiny-bin/pytorch_model.bin");
        byte[] st = Files.readAllBytes(resource("fixtures/btlm-tiny/model.safetensors"));
        MemorySegment stSeg = MemorySegment.ofArray(st);
        long headerLength = stSeg.get(I64, 0);
        JsonNode header = JSON.readTree(new String(st, 8, (int) headerLength, StandardCharsets.UTF_8));
        long dataStart = 8 + headerLength;

        try (TorchCheckpoint ckpt = TorchCheckpoint.open(bin)) {
            Map<String, TensorInfo> tensors = ckpt.tensors();
            int compared = 0;
            for (Map.Entry<String, JsonNode> e : header.properties()) {
                if (e.getKey().equals("__metadata__")) {
                    continue;
                }
                JsonNode spec = e.getValue();
                TensorInfo t = tensors.get(e.getKey());
                assertNotNull(t, e.getKey());
                assertEquals(spec.get("dtype").asText(), t.dtype().name(), e.getKey());
                long[] shape = new long[spec.get("shape").size()];
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = spec.get("shape").get(i).asLong();
                }
                assertArrayEquals(shape, t.shape(), e.getKey());
                long begin = spec.get("data_offsets").get(0).asLong();
                long end = spec.get("data_offsets").get(1).asLong();
                MemorySegment want = stSeg.asSlice(dataStart + begin, end - begin);
                assertEquals(-1, want.mismatch(t.data()), "bytes of " + e.getKey());
                assertEquals(bin.toString(), t.source());
                compared++;
            }
            assertEquals(compared + 1, tensors.size(), "safetensors tensors plus the tied lm_head.weight");
            assertEquals("pytorch_model.bin (PyTorch zip checkpoint, " + tensors.size() + " tensors)", ckpt.describe());

            TensorInfo wte = tensors.get("transformer.wte.weight");
            TensorInfo lmHead = tensors.get("lm_head.weight");
            assertNotNull(lmHead);
            assertEquals(wte.dtype(), lmHead.dtype());
            assertArrayEquals(wte.shape(), lmHead.shape());
            assertEquals(-1, wte.data().mismatch(lmHead.data()));
            assertEquals(wte.data().address(), lmHead.data().address(), "tied weights share the mapped storage");

            assertEquals("transformer.h.0.attn.c_attn.bias", tensors.keySet().iterator().next(), "pickle order");
            assertEquals("lm_head.weight", new ArrayList<>(tensors.keySet()).getLast());
            assertThrows(UnsupportedOperationException.class, () -> tensors.put("x", wte));
        }
    }

    @Test
    void closeUnmapsAndIsIdempotent() {
        TorchCheckpoint ckpt = TorchCheckpoint.open(torchFile("dtypes.pt"));
        MemorySegment data = ckpt.tensors().get("f32").data();
        assertEquals(6 * 4, data.byteSize());
        data.get(F32, 0);
        ckpt.close();
        ckpt.close();
        assertThrows(IllegalStateException.class, () -> data.get(F32, 0));
    }

    // ---- small checkpoints written by torch.save (tools/make_torch_test_files.py) -------------------

    static Stream<String> validFiles() throws IOException {
        List<String> names = new ArrayList<>();
        expected().get("files").fieldNames().forEachRemaining(names::add);
        assertTrue(names.size() >= 10, names.toString());
        return names.stream();
    }

    @ParameterizedTest
    @MethodSource("validFiles")
    void decodesWhatTorchSaved(String file) throws IOException {
        JsonNode want = expected().get("files").get(file);
        try (TorchCheckpoint ckpt = TorchCheckpoint.open(torchFile(file))) {
            Map<String, TensorInfo> tensors = ckpt.tensors();
            List<String> wantNames = new ArrayList<>();
            want.fieldNames().forEachRemaining(wantNames::add);
            assertEquals(wantNames, new ArrayList<>(tensors.keySet()), "names in pickle order");
            for (String name : wantNames) {
                JsonNode spec = want.get(name);
                TensorInfo t = tensors.get(name);
                String what = file + " " + name;
                assertEquals(spec.get("dtype").asText(), t.dtype().name(), what);
                long[] shape = new long[spec.get("shape").size()];
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = spec.get("shape").get(i).asLong();
                }
                assertArrayEquals(shape, t.shape(), what);
                JsonNode values = spec.get("values");
                assertEquals(values.size(), t.elementCount(), what);
                for (int i = 0; i < values.size(); i++) {
                    JsonNode v = values.get(i);
                    if (t.dtype() == DType.F64 || t.dtype() == DType.F32 || t.dtype() == DType.F16
                            || t.dtype() == DType.BF16) {
                        assertEquals(v.asDouble(), floatAt(t, i), what + "[" + i + "]");
                    } else {
                        assertEquals(v.asLong(), intAt(t, i), what + "[" + i + "]");
                    }
                }
            }
            assertEquals(file + " (PyTorch zip checkpoint, " + wantNames.size() + " tensors)", ckpt.describe());
        }
    }

    static double floatAt(TensorInfo t, long i) {
        MemorySegment d = t.data();
        return switch (t.dtype()) {
            case F64 -> d.get(F64, i * 8);
            case F32 -> d.get(F32, i * 4);
            case F16 -> Float.float16ToFloat(d.get(I16, i * 2));
            case BF16 -> Float.intBitsToFloat(Short.toUnsignedInt(d.get(I16, i * 2)) << 16);
            default -> throw new AssertionError(t.dtype());
        };
    }

    static long intAt(TensorInfo t, long i) {
        MemorySegment d = t.data();
        return switch (t.dtype()) {
            case I64 -> d.get(I64, i * 8);
            case I32 -> d.get(I32, i * 4);
            case I16 -> d.get(I16, i * 2);
            case I8 -> d.get(ValueLayout.JAVA_BYTE, i);
            case U8, BOOL -> Byte.toUnsignedInt(d.get(ValueLayout.JAVA_BYTE, i));
            default -> throw new AssertionError(t.dtype());
        };
    }

    @Test
    void viewsAreSlicesOfOneStorage() {
        try (TorchCheckpoint ckpt = TorchCheckpoint.open(torchFile("views.pt"))) {
            Map<String, TensorInfo> t = ckpt.tensors();
            long base = t.get("base").data().address();
            assertEquals(base + 3 * 4, t.get("offset_view").data().address());
            assertEquals(base + 5 * 4, t.get("middle").data().address());
            assertEquals(base + 2 * 4, t.get("unsqueezed").data().address());
            assertEquals(t.get("row").data().address(), t.get("row2d").data().address());
        }
        try (TorchCheckpoint ckpt = TorchCheckpoint.open(torchFile("shared.pt"))) {
            Map<String, TensorInfo> t = ckpt.tensors();
            long w = t.get("w").data().address();
            assertEquals(w, t.get("tied").data().address());
            assertEquals(w, t.get("alias").data().address());
            assertEquals(w + 3 * 2, t.get("second_row").data().address());
        }
        try (TorchCheckpoint ckpt = TorchCheckpoint.open(torchFile("dtypes.pt"))) {
            assertEquals(0, ckpt.tensors().get("empty").data().byteSize());
            assertEquals(0, ckpt.tensors().get("scalar").rank());
        }
    }

    @Test
    void zip64ArchivesMatchTheirPlainTwins() {
        // the same tensors, re-packed with ZIP64 structures everywhere / in the local headers only
        for (String[] pair : new String[][] {{"zip64.pt", "shared.pt"}, {"zip64_local.pt", "views.pt"}}) {
            try (TorchCheckpoint a = TorchCheckpoint.open(torchFile(pair[0]));
                 TorchCheckpoint b = TorchCheckpoint.open(torchFile(pair[1]))) {
                assertEquals(b.tensors().keySet(), a.tensors().keySet());
                for (var e : b.tensors().entrySet()) {
                    TensorInfo x = a.tensors().get(e.getKey());
                    assertArrayEquals(e.getValue().shape(), x.shape());
                    assertEquals(-1, e.getValue().data().mismatch(x.data()), pair[0] + " " + e.getKey());
                }
            }
        }
    }

    // ---- files that must be refused ----------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            os_system_handmade.pt     | uses forbidden global os.system (only tensor checkpoints are supported)
            posix_system.pt           | uses forbidden global posix.system
            builtins_eval.pt          | uses forbidden global __builtin__.eval
            builtins_eval_p4.pt       | uses forbidden global builtins.eval
            subprocess_popen.pt       | uses forbidden global commands.Popen
            subprocess_popen_p4.pt    | uses forbidden global subprocess.Popen
            torch_load_global.pt      | uses forbidden global torch.serialization.load
            complex.pt                | storage type torch.ComplexFloatStorage, whose element type is not supported
            inst_opcode.pt            | unsupported pickle opcode INST (0x69)
            obj_opcode.pt             | unsupported pickle opcode OBJ (0x6f)
            ext1_opcode.pt            | unsupported pickle opcode EXT1 (0x82)
            memo_missing.pt           | memo entry 5 is read before it is written
            string_past_end.pt        | BINUNICODE (0x58) needs 2147483647 more bytes than the pickle has
            no_stop.pt                | pickle ends without a STOP opcode
            stack_underflow.pt        | SETITEM (0x73) on an empty stack
            list_top.pt               | the pickled object is of type list, not a dict of tensors
            bare_tensor.pt            | the pickled object is of type tensor, not a dict of tensors
            mixed_values.pt           | entry "b" is of type int, not a tensor
            nested_not_tensor.pt      | entry "n" under "state_dict" is of type int, not a tensor
            both_nested.pt            | has both a "state_dict" and a "model" dict of tensors
            sparse.pt                 | uses torch._utils._rebuild_sparse_tensor, a kind of tensor that is not supported
            int_key.pt                | has a key of type int (0); tensor names must be str
            noncontig_transpose.pt    | tensor t is not contiguous (stride [1, 3] for size [3, 2])
            noncontig_column.pt       | tensor col is not contiguous (stride [4, 1] for size [3, 1])
            offset_out_of_range.pt    | tensor t (2 elements at offset 3) does not fit in its storage 0 of 4 elements
            negative_offset.pt        | tensor t (2 elements at offset -1) does not fit in its storage 0
            storage_entry_short.pt    | tensor t: its storage 0 is declared as 8 elements of F32 but its entry holds only 16 bytes
            size_overflow.pt          | tensor t has size [1099511627776, 1099511627776] whose byte size overflows
            negative_size.pt          | tensor t has a negative dimension in [-1]
            stride_rank_mismatch.pt   | tensor t has size [2, 2] but stride [1]
            missing_storage_entry.pt  | tensor t: its storage 7 has no entry archive/data/7 in the archive
            bad_persistent_id.pt      | persistent id ('module', torch.FloatStorage, '0', 'cpu', 4) is not a ('storage'
            rebuild_extra_args.pt     | torch._utils._rebuild_tensor_v2 called with 9 arguments
            big_endian.pt             | byte order "big"; only little-endian checkpoints are supported
            torchscript.pt            | a TorchScript archive (torch.jit.save) is not supported
            legacy.pt                 | legacy PyTorch format (before 1.6) is not supported; re-save with torch.save
            truncated.pt              | no zip end-of-central-directory record: the file is truncated or not a zip archive
            truncated_end.pt          | no zip end-of-central-directory record
            entry_size_past_end.pt    | 2147483632 bytes) extends past the end of the file (655 bytes)
            zip64_entry_size_past_end.pt | 4611686018427387904 bytes) extends past the end of the file
            entry_size_short.pt       | its storage 0 is declared as 4 elements of F32 but its entry holds only 8 bytes
            deflated_storage.pt       | entry archive/data/0 (storage of tensor t) is compressed (zip method 8)
            deflated_pickle.pt        | entry archive/data.pkl (the pickled state dict) is compressed (zip method 8)
            no_data_pkl.pt            | no <archive>/data.pkl entry in the zip archive
            two_data_pkl.pt           | several data.pkl entries
            duplicate_entry.pt        | zip entry archive/data/0 appears twice
            not_a_checkpoint.pt       | not a PyTorch zip checkpoint (it does not start with a zip signature)
            empty_file.pt             | file of 0 bytes is too short to be a PyTorch checkpoint
            """)
    void refuses(String file, String message) {
        Path path = torchFile(file);
        CheckpointException e = assertThrows(CheckpointException.class, () -> TorchCheckpoint.open(path));
        assertTrue(e.getMessage().startsWith(path.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(message), e.getMessage());
    }

    @Test
    void forbiddenGlobalMessageNamesThePickle() {
        Path path = torchFile("os_system_handmade.pt");
        CheckpointException e = assertThrows(CheckpointException.class, () -> TorchCheckpoint.open(path));
        assertEquals(path + ": archive/data.pkl uses forbidden global os.system (only tensor checkpoints are"
                + " supported)", e.getMessage());
    }

    @Test
    void missingFileAndDirectory(@TempDir Path dir) {
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> TorchCheckpoint.open(dir.resolve("nope.bin")));
        assertTrue(e.getMessage().endsWith("nope.bin: file not found"), e.getMessage());
        e = assertThrows(CheckpointException.class, () -> TorchCheckpoint.open(dir));
        assertTrue(e.getMessage().contains("is a directory"), e.getMessage());
    }

    // ---- built here: pickles too big to keep as resources --------------------------------------------

    /** A zip of stored entries, as java.util.zip writes them. */
    static Path storedZip(Path file, Map<String, byte[]> entries) throws IOException {
        try (OutputStream out = Files.newOutputStream(file); ZipOutputStream zip = new ZipOutputStream(out)) {
            for (var e : entries.entrySet()) {
                ZipEntry entry = new ZipEntry(e.getKey());
                entry.setMethod(ZipEntry.STORED);
                entry.setSize(e.getValue().length);
                entry.setCompressedSize(e.getValue().length);
                CRC32 crc = new CRC32();
                crc.update(e.getValue());
                entry.setCrc(crc.getValue());
                zip.putNextEntry(entry);
                zip.write(e.getValue());
                zip.closeEntry();
            }
        }
        return file;
    }

    static Path pickleZip(Path file, byte[] pickle) throws IOException {
        Map<String, byte[]> entries = new LinkedHashMap<>();
        entries.put("archive/data.pkl", pickle);
        entries.put("archive/version", "3\n".getBytes(StandardCharsets.US_ASCII));
        return storedZip(file, entries);
    }

    static byte[] deepPickle(int depth, boolean marks) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.write(0x80);
        b.write(2);
        for (int i = 0; i < depth; i++) {
            b.write(']');
            if (marks) {
                b.write('(');
            }
        }
        for (int i = 0; i < (marks ? depth : depth - 1); i++) {
            b.write(marks ? 'e' : 'a');
        }
        b.write('.');
        return b.toByteArray();
    }

    @Test
    void deeplyNestedListsAreRefusedWithoutStackOverflow(@TempDir Path dir) throws IOException {
        Path withMarks = pickleZip(dir.resolve("deep_marks.pt"), deepPickle(100_000, true));
        CheckpointException e = assertThrows(CheckpointException.class, () -> TorchCheckpoint.open(withMarks));
        assertTrue(e.getMessage().contains("values are nested deeper than 1000 levels"), e.getMessage());

        Path noMarks = pickleZip(dir.resolve("deep_lists.pt"), deepPickle(100_000, false));
        e = assertThrows(CheckpointException.class, () -> TorchCheckpoint.open(noMarks));
        assertTrue(e.getMessage().contains("the pickled object is of type list, not a dict of tensors"), e.getMessage());
    }

    @Test
    void javaUtilZipLayoutAndTorchPickleTogether(@TempDir Path dir) throws IOException {
        // re-pack a torch.save archive with java.util.zip (no alignment, data descriptors off): same tensors
        Map<String, byte[]> entries = new LinkedHashMap<>();
        try (var zip = new java.util.zip.ZipFile(torchFile("dtypes.pt").toFile())) {
            for (var it = zip.entries(); it.hasMoreElements(); ) {
                ZipEntry e = it.nextElement();
                entries.put(e.getName().replaceFirst("^dtypes/", "renamed/"), zip.getInputStream(e).readAllBytes());
            }
        }
        Path repacked = storedZip(dir.resolve("repacked.pt"), entries);
        try (TorchCheckpoint a = TorchCheckpoint.open(repacked);
             TorchCheckpoint b = TorchCheckpoint.open(torchFile("dtypes.pt"))) {
            assertEquals(b.tensors().keySet(), a.tensors().keySet());
            for (var e : b.tensors().entrySet()) {
                assertEquals(-1, e.getValue().data().mismatch(a.tensors().get(e.getKey()).data()), e.getKey());
            }
        }
    }
}
