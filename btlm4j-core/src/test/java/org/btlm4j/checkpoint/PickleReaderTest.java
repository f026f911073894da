package org.btlm4j.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PickleReaderTest {

    /** Hooks that record what they are asked and build inert values. */
    static final class Recording implements PickleReader.Hooks {
        final List<String> calls = new ArrayList<>();

        @Override
        public Object global(String module, String name) {
            calls.add("global " + module + "." + name);
            if (module.equals("forbidden")) {
                throw new CheckpointException("forbidden " + name);
            }
            return "<" + module + "." + name + ">";
        }

        @Override
        public Object reduce(Object callable, PickleReader.Tuple args) {
            calls.add("reduce " + callable + " " + args.size());
            return List.of("reduced", callable);
        }

        @Override
        public Object newObject(Object cls, PickleReader.Tuple args) {
            calls.add("new " + cls);
            return "new";
        }

        @Override
        public Object persistentLoad(Object pid) {
            calls.add("persistent " + pid);
            return "storage";
        }

        @Override
        public void build(Object target, Object state) {
            calls.add("build " + PickleReader.typeName(target) + " " + PickleReader.typeName(state));
        }
    }

    /** Bytes from ints (opcodes, lengths) and strings (their ISO-8859-1 bytes). */
    static byte[] pickle(Object... parts) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (Object p : parts) {
            if (p instanceof Integer i) {
                b.write(i);
            } else if (p instanceof byte[] bytes) {
                b.writeBytes(bytes);
            } else {
                b.writeBytes(((String) p).getBytes(StandardCharsets.ISO_8859_1));
            }
        }
        return b.toByteArray();
    }

    static Object load(byte[] bytes) {
        return load(bytes, new Recording());
    }

    static Object load(byte[] bytes, PickleReader.Hooks hooks) {
        return PickleReader.load(MemorySegment.ofArray(bytes), "test.pkl", hooks);
    }

    static String failure(byte[] bytes) {
        return assertThrows(CheckpointException.class, () -> load(bytes)).getMessage();
    }

    @Test
    void scalars() {
        // a tuple of: BININT -2, BININT1 255, BININT2 65535, LONG1 -129 (2 bytes), LONG1 2^63-1, LONG1 0 bytes,
        // BINFLOAT 1.5, None, True, False, str 'hé', bytes
        byte[] p = pickle(0x80, 2, "(",
                "J", 0xfe, 0xff, 0xff, 0xff,
                "K", 0xff,
                "M", 0xff, 0xff,
                0x8a, 2, 0x7f, 0xff,
                0x8a, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
                0x8a, 0,
                "G", 0x3f, 0xf8, 0, 0, 0, 0, 0, 0,
                "N", 0x88, 0x89,
                "X", 3, 0, 0, 0, "h", 0xc3, 0xa9,
                0x8c, 1, "a",
                "C", 2, 1, 2,
                "t.");
        PickleReader.Tuple t = assertInstanceOf(PickleReader.Tuple.class, load(p));
        assertEquals(13, t.size());
        assertEquals(-2L, t.get(0));
        assertEquals(255L, t.get(1));
        assertEquals(65535L, t.get(2));
        assertEquals(-129L, t.get(3));
        assertEquals(Long.MAX_VALUE, t.get(4));
        assertEquals(0L, t.get(5));
        assertEquals(1.5, t.get(6));
        assertNull(t.get(7));
        assertEquals(true, t.get(8));
        assertEquals(false, t.get(9));
        assertEquals("hé", t.get(10));
        assertEquals("a", t.get(11));
        assertArrayEquals(new byte[] {1, 2}, (byte[]) t.get(12));
    }

    @Test
    void containersAndMemo() {
        // {'a': [1, 2, 3], 'b': (None,), 'c': <memo 1 = the list>}, with protocol 4 framing and MEMOIZE
        byte[] p = pickle(0x80, 4, 0x95, 29, 0, 0, 0, 0, 0, 0, 0,
                "}", 0x94, "(",
                0x8c, 1, "a", "]", 0x94, "K", 1, "a", "(", "K", 2, "K", 3, "e",
                0x8c, 1, "b", "N", 0x85,
                0x8c, 1, "c", "h", 1,
                "u.");
        Map<?, ?> m = assertInstanceOf(Map.class, load(p));
        assertEquals(List.of("a", "b", "c"), new ArrayList<>(m.keySet()));
        assertEquals(List.of(1L, 2L, 3L), m.get("a"));
        assertSame(m.get("a"), m.get("c"));
        PickleReader.Tuple b = assertInstanceOf(PickleReader.Tuple.class, m.get("b"));
        assertEquals(1, b.size());
        assertNull(b.get(0));
    }

    @Test
    void memoHoldsNoneAndLongIndices() {
        byte[] p = pickle(0x80, 2, "N", "r", 0xff, 0xff, 0xff, 0xff, "0", "j", 0xff, 0xff, 0xff, 0xff, ".");
        assertNull(load(p));
    }

    @Test
    void hooksDecideGlobalsReduceBuildAndPersistentIds() {
        Recording hooks = new Recording();
        byte[] p = pickle(0x80, 2,
                "cmod\nfn\n", "(", "X", 1, 0, 0, 0, "k", "Q", "t", "R",
                "}", "b", ".");
        Object v = load(p, hooks);
        assertEquals(List.of("reduced", "<mod.fn>"), v);
        assertEquals(List.of("global mod.fn", "persistent k", "reduce <mod.fn> 1", "build list dict"), hooks.calls);

        Recording stackGlobal = new Recording();
        load(pickle(0x80, 4, 0x8c, 3, "mod", 0x8c, 2, "fn", 0x93, ")", 0x81, "."), stackGlobal);
        assertEquals(List.of("global mod.fn", "new <mod.fn>"), stackGlobal.calls);
    }

    @Test
    void forbiddenGlobalStopsBeforeAnythingElse() {
        Recording hooks = new Recording();
        byte[] p = pickle(0x80, 2, "cforbidden\nsystem\n", "X", 4, 0, 0, 0, "true", 0x85, "R.");
        CheckpointException e = assertThrows(CheckpointException.class, () -> load(p, hooks));
        assertEquals("forbidden system", e.getMessage());
        assertEquals(List.of("global forbidden.system"), hooks.calls);
    }

    @Test
    void malformedPickles() {
        assertTrue(failure(pickle("}.")).contains("not a pickle of protocol 2 or higher"));
        assertTrue(failure(new byte[0]).contains("not a pickle of protocol 2 or higher"));
        assertTrue(failure(pickle(0x80, 6, "N.")).contains("unsupported pickle protocol 6"));
        assertTrue(failure(pickle(0x80, 2, 0xff)).contains("unsupported pickle opcode unknown opcode (0xff)"));
        assertTrue(failure(pickle(0x80, 2, "i")).contains("unsupported pickle opcode INST (0x69)"));
        assertTrue(failure(pickle(0x80, 2, "S'x'\n.")).contains("unsupported pickle opcode STRING (0x53)"));
        assertTrue(failure(pickle(0x80, 2, "I1\n.")).contains("unsupported pickle opcode INT (0x49)"));
        assertTrue(failure(pickle(0x80, 2, 0x8f, ".")).contains("unsupported pickle opcode EMPTY_SET (0x8f)"));
        assertTrue(failure(pickle(0x80, 2, "N")).contains("pickle ends without a STOP opcode"));
        assertTrue(failure(pickle(0x80, 2, "J", 1, 2)).contains("BININT (0x4a) needs 4 more bytes"));
        assertTrue(failure(pickle(0x80, 2, 0x8d, 0, 0, 0, 0, 0, 0, 0, 0x80, "."))
                .contains("BINUNICODE8 (0x8d) needs 9223372036854775808 more bytes"));
        assertTrue(failure(pickle(0x80, 2, "X", 2, 0, 0, 0, 0xff, 0xfe, ".")).contains("is not valid UTF-8"));
        assertTrue(failure(pickle(0x80, 2, 0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1, "."))
                .contains("integer of 9 bytes is too large"));
        assertTrue(failure(pickle(0x80, 2, ".")).contains("STOP (0x2e) on an empty stack"));
        assertTrue(failure(pickle(0x80, 2, "N(0.")).contains("POP (0x30) on an empty stack"));
        assertTrue(failure(pickle(0x80, 2, "t.")).contains("TUPLE (0x74) without a MARK"));
        assertTrue(failure(pickle(0x80, 2, "h", 0, ".")).contains("memo entry 0 is read before it is written"));
        assertTrue(failure(pickle(0x80, 2, "q", 0, ".")).contains("BINPUT (0x71) on an empty stack"));
        assertTrue(failure(pickle(0x80, 2, "]K", 1, "K", 2, "s.")).contains("SETITEM on a value of type list"));
        assertTrue(failure(pickle(0x80, 2, "}K", 1, "a.")).contains("APPEND on a value of type dict"));
        assertTrue(failure(pickle(0x80, 2, "}(K", 1, "u.")).contains("SETITEMS with an odd number of values"));
        assertTrue(failure(pickle(0x80, 2, "}]K", 1, "s.")).contains("unsupported dict key of type list"));
        assertTrue(failure(pickle(0x80, 2, "cmod\nfn\nK", 1, "R.")).contains("REDUCE with int arguments"));
        assertTrue(failure(pickle(0x80, 2, "K", 1, "K", 2, 0x93, "."))
                .contains("STACK_GLOBAL needs two str, not int and int"));
        assertTrue(failure(pickle(0x80, 2, "cmod")).contains("GLOBAL name is not ended by a newline"));
        assertTrue(failure(pickle(0x80, 4, 0x95, 0xff, 0, 0, 0, 0, 0, 0, 0, "N."))
                .contains("FRAME of 255 bytes runs past the end"));
        String message = failure(pickle(0x80, 2, "(t(t", 0x82));
        assertTrue(message.startsWith("test.pkl: unsupported pickle opcode EXT1 (0x82)"), message);
        assertTrue(message.endsWith("(at byte 6)"), message);
    }

    @Test
    void deepNestingIsBoundedAndNeverRecursive() {
        assertTrue(failure(TorchCheckpointTest.deepPickle(100_000, true))
                .contains("values are nested deeper than 1000 levels"));
        Object v = load(TorchCheckpointTest.deepPickle(PickleReader.MAX_MARK_DEPTH, true));
        assertInstanceOf(List.class, v);

        // without MARKs: EMPTY_LIST x n, APPEND x (n-1): n nested lists, built iteratively
        int depth = 200_000;
        Object deep = load(TorchCheckpointTest.deepPickle(depth, false));
        int levels = 0;
        while (deep instanceof List<?> l && !l.isEmpty()) {
            deep = l.getFirst();
            levels++;
        }
        assertEquals(depth - 1, levels);
        assertEquals("list", PickleReader.typeName(load(TorchCheckpointTest.deepPickle(depth, false))));
    }

    @Test
    void stackAndObjectCountAreBounded() {
        byte[] many = new byte[PickleReader.MAX_STACK + 4];
        many[0] = (byte) 0x80;
        many[1] = 2;
        java.util.Arrays.fill(many, 2, many.length - 1, (byte) 'N');
        many[many.length - 1] = '.';
        assertTrue(failure(many).contains("more than " + PickleReader.MAX_STACK + " values on the pickle stack"));

        // N, then (BINPUT 0, BINGET 0, POP) forever: the stack stays small, the value count grows
        int rounds = (int) (PickleReader.MAX_OBJECTS / 2) + 1;
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.writeBytes(new byte[] {(byte) 0x80, 2, 'N'});
        byte[] round = {'q', 0, 'h', 0, '0'};
        for (int i = 0; i < rounds; i++) {
            b.writeBytes(round);
        }
        b.write('.');
        assertTrue(failure(b.toByteArray()).contains("more than " + PickleReader.MAX_OBJECTS + " values in the pickle"));
    }

    @Test
    void opcodeNames() {
        assertEquals("GLOBAL (0x63)", PickleReader.opcodeName('c'));
        assertEquals("READONLY_BUFFER (0x98)", PickleReader.opcodeName(0x98));
        assertEquals("unknown opcode (0xf0)", PickleReader.opcodeName(0xf0));
    }
}
