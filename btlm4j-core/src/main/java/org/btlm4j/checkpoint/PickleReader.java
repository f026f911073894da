package org.btlm4j.checkpoint;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A restricted reader for Python pickles (protocol 2 and higher), enough for the {@code data.pkl}
 * of {@code torch.save} checkpoints. It is a plain data decoder: it never loads, instantiates or
 * calls anything by name. What {@code GLOBAL}, {@code REDUCE}, {@code NEWOBJ}, {@code BUILD} and
 * {@code BINPERSID} mean is decided by the {@link Hooks}, which see only plain Java values and the
 * marker objects they return themselves.
 *
 * <p>Values: Python {@code int} becomes {@link Long} (at most 64 bits), {@code float} {@link Double},
 * {@code bool} {@link Boolean}, {@code str} {@link String}, {@code bytes} {@code byte[]},
 * {@code None} {@code null}, {@code list} {@link ArrayList}, {@code dict} {@link LinkedHashMap}
 * (keys: str, int, float, bool or None only) and {@code tuple} {@link Tuple}.
 *
 * <p>Resources are bounded: the stack, the nesting of MARKs, the number of values created, string
 * lengths (also against the bytes left). The machine is iterative and nothing here recurses over
 * the values, so deeply nested input cannot overflow the Java stack. Any other opcode, and every
 * malformed input, gives a {@link CheckpointException} naming the pickle, the offset and the problem.
 */
final class PickleReader {

    /** What the non-data opcodes do. Each method returns the value to push, or throws. */
    interface Hooks {
        /** {@code GLOBAL} / {@code STACK_GLOBAL}: a marker for an allowed global, or a CheckpointException. */
        Object global(String module, String name);

        /** {@code REDUCE}: apply {@code callable} (a value returned by {@link #global}, or not) to {@code args}. */
        Object reduce(Object callable, Tuple args);

        /** {@code NEWOBJ}: {@code cls.__new__(cls, *args)}. */
        Object newObject(Object cls, Tuple args);

        /** {@code BINPERSID}: the object a persistent id stands for. */
        Object persistentLoad(Object pid);

        /** {@code BUILD}: {@code target.__setstate__(state)}; the target stays on the stack. */
        void build(Object target, Object state);
    }

    /** A Python tuple: an immutable sequence that may hold {@code null} (None). */
    static final class Tuple {
        private final Object[] items;

        Tuple(Object... items) {
            this.items = items;
        }

        int size() {
            return items.length;
        }

        Object get(int i) {
            return items[i];
        }

        @Override
        public String toString() {
            return "tuple of " + items.length;
        }
    }

    /** Most values (pushes and memo entries) one pickle may create. */
    static final long MAX_OBJECTS = 1L << 24;
    /** Most values on the stack at once. */
    static final int MAX_STACK = 1 << 20;
    /** Most nested MARKs. Python itself cannot pickle structures much deeper than its recursion limit. */
    static final int MAX_MARK_DEPTH = 1000;
    /** Longest str or bytes value. */
    static final long MAX_STRING = 1L << 24;
    /** Longest module or name of a GLOBAL. */
    private static final int MAX_GLOBAL_NAME = 1024;
    private static final int HIGHEST_PROTOCOL = 5;

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64_BE =
            ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private static final String[] OPCODE_NAMES = new String[256];

    static {
        String[][] names = {
                {"(", "MARK"}, {".", "STOP"}, {"0", "POP"}, {"1", "POP_MARK"}, {"2", "DUP"}, {"F", "FLOAT"},
                {"I", "INT"}, {"J", "BININT"}, {"K", "BININT1"}, {"L", "LONG"}, {"M", "BININT2"}, {"N", "NONE"},
                {"P", "PERSID"}, {"Q", "BINPERSID"}, {"R", "REDUCE"}, {"S", "STRING"}, {"T", "BINSTRING"},
                {"U", "SHORT_BINSTRING"}, {"V", "UNICODE"}, {"X", "BINUNICODE"}, {"a", "APPEND"}, {"b", "BUILD"},
                {"c", "GLOBAL"}, {"d", "DICT"}, {"}", "EMPTY_DICT"}, {"e", "APPENDS"}, {"g", "GET"},
                {"h", "BINGET"}, {"i", "INST"}, {"j", "LONG_BINGET"}, {"l", "LIST"}, {"]", "EMPTY_LIST"},
                {"o", "OBJ"}, {"p", "PUT"}, {"q", "BINPUT"}, {"r", "LONG_BINPUT"}, {"s", "SETITEM"},
                {"t", "TUPLE"}, {")", "EMPTY_TUPLE"}, {"u", "SETITEMS"}, {"G", "BINFLOAT"}, {"B", "BINBYTES"},
                {"C", "SHORT_BINBYTES"},
                {"\u0080", "PROTO"}, {"\u0081", "NEWOBJ"}, {"\u0082", "EXT1"}, {"\u0083", "EXT2"},
                {"\u0084", "EXT4"}, {"\u0085", "TUPLE1"}, {"\u0086", "TUPLE2"}, {"\u0087", "TUPLE3"},
                {"\u0088", "NEWTRUE"}, {"\u0089", "NEWFALSE"}, {"\u008a", "LONG1"}, {"\u008b", "LONG4"},
                {"\u008c", "SHORT_BINUNICODE"}, {"\u008d", "BINUNICODE8"}, {"\u008e", "BINBYTES8"},
                {"\u008f", "EMPTY_SET"}, {"\u0090", "ADDITEMS"}, {"\u0091", "FROZENSET"}, {"\u0092", "NEWOBJ_EX"},
                {"\u0093", "STACK_GLOBAL"}, {"\u0094", "MEMOIZE"}, {"\u0095", "FRAME"}, {"\u0096", "BYTEARRAY8"},
                {"\u0097", "NEXT_BUFFER"}, {"\u0098", "READONLY_BUFFER"},
        };
        for (String[] n : names) {
            OPCODE_NAMES[n[0].charAt(0)] = n[1];
        }
    }

    private final MemorySegment data;
    private final long end;
    private final String where;
    private final Hooks hooks;

    private final ArrayList<Object> stack = new ArrayList<>();
    private int[] marks = new int[16];
    private int markDepth;
    private final Map<Long, Object> memo = new HashMap<>();
    private long objects;
    /** Offset of the opcode being executed, for messages. */
    private long opAt;

    private PickleReader(MemorySegment data, String where, Hooks hooks) {
        this.data = data;
        this.end = data.byteSize();
        this.where = where;
        this.hooks = hooks;
    }

    /**
     * Reads the pickle in {@code data} up to its STOP opcode.
     *
     * @param where names the pickle in messages, e.g. {@code model.bin: archive/data.pkl}
     * @return the pickled value
     */
    static Object load(MemorySegment data, String where, Hooks hooks) {
        return new PickleReader(data, where, hooks).run();
    }

    /** The name of an opcode byte, for messages: {@code INST (0x69)}. */
    static String opcodeName(int op) {
        String name = OPCODE_NAMES[op & 0xff];
        return (name == null ? "unknown opcode" : name) + String.format(" (0x%02x)", op & 0xff);
    }

    /** A short description of a value's Python type, for messages; never looks inside containers. */
    static String typeName(Object v) {
        return switch (v) {
            case null -> "None";
            case Long _ -> "int";
            case Double _ -> "float";
            case Boolean _ -> "bool";
            case String _ -> "str";
            case byte[] _ -> "bytes";
            case List<?> _ -> "list";
            case Map<?, ?> _ -> "dict";
            case Tuple _ -> "tuple";
            default -> v.toString();
        };
    }

    private CheckpointException fail(String message) {
        return new CheckpointException(where + ": " + message + " (at byte " + opAt + ")");
    }

    private Object run() {
        if (end == 0 || u8(0) != 0x80) {
            throw new CheckpointException(where + ": not a pickle of protocol 2 or higher (no PROTO opcode at the"
                    + " start)");
        }
        long pos = 0;
        while (true) {
            opAt = pos;
            if (pos >= end) {
                throw fail("pickle ends without a STOP opcode: it is truncated");
            }
            int op = u8(pos++);
            switch (op) {
                case 0x80 -> { // PROTO
                    need(pos, 1);
                    int protocol = u8(pos++);
                    if (protocol < 2 || protocol > HIGHEST_PROTOCOL) {
                        throw fail("unsupported pickle protocol " + protocol);
                    }
                }
                case 0x95 -> { // FRAME: framing is only a hint for buffered readers
                    need(pos, 8);
                    long frame = data.get(I64, pos);
                    pos += 8;
                    if (frame < 0 || frame > end - pos) {
                        throw fail("FRAME of " + Long.toUnsignedString(frame) + " bytes runs past the end");
                    }
                }
                case '.' -> { // STOP
                    return pop();
                }
                case '(' -> { // MARK
                    if (markDepth == MAX_MARK_DEPTH) {
                        throw fail("values are nested deeper than " + MAX_MARK_DEPTH + " levels");
                    }
                    if (markDepth == marks.length) {
                        marks = Arrays.copyOf(marks, marks.length * 2);
                    }
                    marks[markDepth++] = stack.size();
                }
                case '0' -> pop(); // POP
                case '1' -> popMark(); // POP_MARK
                case '}' -> push(new LinkedHashMap<>()); // EMPTY_DICT
                case ']' -> push(new ArrayList<>()); // EMPTY_LIST
                case ')' -> push(new Tuple()); // EMPTY_TUPLE
                case 0x85 -> { // TUPLE1
                    Object a = pop();
                    push(new Tuple(a));
                }
                case 0x86 -> { // TUPLE2
                    Object b = pop();
                    Object a = pop();
                    push(new Tuple(a, b));
                }
                case 0x87 -> { // TUPLE3
                    Object c = pop();
                    Object b = pop();
                    Object a = pop();
                    push(new Tuple(a, b, c));
                }
                case 't' -> push(new Tuple(popMark())); // TUPLE
                case 'J' -> { // BININT
                    need(pos, 4);
                    push((long) data.get(I32, pos));
                    pos += 4;
                }
                case 'K' -> { // BININT1
                    need(pos, 1);
                    push((long) u8(pos++));
                }
                case 'M' -> { // BININT2
                    need(pos, 2);
                    push((long) Short.toUnsignedInt(data.get(U16, pos)));
                    pos += 2;
                }
                case 0x8a -> { // LONG1
                    need(pos, 1);
                    int n = u8(pos++);
                    push(longValue(pos, n));
                    pos += n;
                }
                case 0x8b -> { // LONG4
                    need(pos, 4);
                    int n = data.get(I32, pos);
                    pos += 4;
                    if (n < 0) {
                        throw fail("LONG4 with negative length " + n);
                    }
                    push(longValue(pos, n));
                    pos += n;
                }
                case 'G' -> { // BINFLOAT
                    need(pos, 8);
                    push(data.get(F64_BE, pos));
                    pos += 8;
                }
                case 'N' -> push(null); // NONE
                case 0x88 -> push(Boolean.TRUE); // NEWTRUE
                case 0x89 -> push(Boolean.FALSE); // NEWFALSE
                case 'X' -> { // BINUNICODE
                    need(pos, 4);
                    long n = Integer.toUnsignedLong(data.get(I32, pos));
                    pos += 4;
                    push(string(pos, n));
                    pos += n;
                }
                case 0x8c -> { // SHORT_BINUNICODE
                    need(pos, 1);
                    int n = u8(pos++);
                    push(string(pos, n));
                    pos += n;
                }
                case 0x8d -> { // BINUNICODE8
                    need(pos, 8);
                    long n = data.get(I64, pos);
                    pos += 8;
                    push(string(pos, n));
                    pos += n;
                }
                case 'C' -> { // SHORT_BINBYTES
                    need(pos, 1);
                    int n = u8(pos++);
                    push(bytes(pos, n));
                    pos += n;
                }
                case 'B' -> { // BINBYTES
                    need(pos, 4);
                    long n = Integer.toUnsignedLong(data.get(I32, pos));
                    pos += 4;
                    push(bytes(pos, n));
                    pos += n;
                }
                case 0x8e -> { // BINBYTES8
                    need(pos, 8);
                    long n = data.get(I64, pos);
                    pos += 8;
                    push(bytes(pos, n));
                    pos += n;
                }
                case 'q' -> { // BINPUT
                    need(pos, 1);
                    put(u8(pos++));
                }
                case 'r' -> { // LONG_BINPUT
                    need(pos, 4);
                    put(Integer.toUnsignedLong(data.get(I32, pos)));
                    pos += 4;
                }
                case 0x94 -> put(memo.size()); // MEMOIZE
                case 'h' -> { // BINGET
                    need(pos, 1);
                    get(u8(pos++));
                }
                case 'j' -> { // LONG_BINGET
                    need(pos, 4);
                    get(Integer.toUnsignedLong(data.get(I32, pos)));
                    pos += 4;
                }
                case 's' -> { // SETITEM
                    Object value = pop();
                    Object key = pop();
                    dictOnTop("SETITEM").put(checkKey(key), value);
                }
                case 'u' -> { // SETITEMS
                    Object[] items = popMark();
                    if (items.length % 2 != 0) {
                        throw fail("SETITEMS with an odd number of values");
                    }
                    Map<Object, Object> dict = dictOnTop("SETITEMS");
                    for (int i = 0; i < items.length; i += 2) {
                        dict.put(checkKey(items[i]), items[i + 1]);
                    }
                }
                case 'a' -> { // APPEND
                    Object value = pop();
                    listOnTop("APPEND").add(value);
                }
                case 'e' -> { // APPENDS
                    Object[] items = popMark();
                    listOnTop("APPENDS").addAll(Arrays.asList(items));
                }
                case 'c' -> { // GLOBAL
                    long moduleEnd = lineEnd(pos);
                    String module = ascii(pos, moduleEnd);
                    pos = moduleEnd + 1;
                    long nameEnd = lineEnd(pos);
                    String name = ascii(pos, nameEnd);
                    pos = nameEnd + 1;
                    push(hooks.global(module, name));
                }
                case 0x93 -> { // STACK_GLOBAL
                    Object name = pop();
                    Object module = pop();
                    if (!(module instanceof String m) || !(name instanceof String n)) {
                        throw fail("STACK_GLOBAL needs two str, not " + typeName(module) + " and " + typeName(name));
                    }
                    push(hooks.global(m, n));
                }
                case 'R' -> { // REDUCE
                    Object args = pop();
                    Object callable = pop();
                    if (!(args instanceof Tuple t)) {
                        throw fail("REDUCE with " + typeName(args) + " arguments instead of a tuple");
                    }
                    push(hooks.reduce(callable, t));
                }
                case 0x81 -> { // NEWOBJ
                    Object args = pop();
                    Object cls = pop();
                    if (!(args instanceof Tuple t)) {
                        throw fail("NEWOBJ with " + typeName(args) + " arguments instead of a tuple");
                    }
                    push(hooks.newObject(cls, t));
                }
                case 'b' -> { // BUILD
                    Object state = pop();
                    hooks.build(peek("BUILD"), state);
                }
                case 'Q' -> push(hooks.persistentLoad(pop())); // BINPERSID
                default -> throw fail("unsupported pickle opcode " + opcodeName(op)
                        + "; only the opcodes of tensor checkpoints are supported");
            }
        }
    }

    private int u8(long at) {
        return Byte.toUnsignedInt(data.get(ValueLayout.JAVA_BYTE, at));
    }

    /** Checks that {@code n} argument bytes follow at {@code pos}. */
    private void need(long pos, long n) {
        if (n < 0 || n > end - pos) {
            throw fail(opcodeName(u8(opAt)) + " needs " + (n < 0 ? Long.toUnsignedString(n) : n)
                    + " more bytes than the pickle has: it is truncated or corrupt");
        }
    }

    private void push(Object v) {
        if (stack.size() >= MAX_STACK) {
            throw fail("more than " + MAX_STACK + " values on the pickle stack");
        }
        count();
        stack.add(v);
    }

    private void count() {
        if (++objects > MAX_OBJECTS) {
            throw fail("more than " + MAX_OBJECTS + " values in the pickle");
        }
    }

    /** Lowest stack index the current opcode may touch: values below the last MARK belong to outer levels. */
    private int base() {
        return markDepth == 0 ? 0 : marks[markDepth - 1];
    }

    private Object pop() {
        if (stack.size() <= base()) {
            throw fail(opcodeName(u8(opAt)) + " on an empty stack");
        }
        return stack.removeLast();
    }

    private Object peek(String op) {
        if (stack.size() <= base()) {
            throw fail((op == null ? opcodeName(u8(opAt)) : op) + " on an empty stack");
        }
        return stack.getLast();
    }

    /** Pops everything above the last MARK, and the MARK. */
    private Object[] popMark() {
        if (markDepth == 0) {
            throw fail(opcodeName(u8(opAt)) + " without a MARK");
        }
        int from = marks[--markDepth];
        List<Object> top = stack.subList(from, stack.size());
        Object[] items = top.toArray();
        top.clear();
        return items;
    }

    @SuppressWarnings("unchecked")
    private Map<Object, Object> dictOnTop(String op) {
        Object target = peek(op);
        if (target instanceof LinkedHashMap<?, ?> m) {
            return (Map<Object, Object>) m;
        }
        throw fail(op + " on a value of type " + typeName(target) + " instead of a dict");
    }

    @SuppressWarnings("unchecked")
    private List<Object> listOnTop(String op) {
        Object target = peek(op);
        if (target instanceof ArrayList<?> l) {
            return (List<Object>) l;
        }
        throw fail(op + " on a value of type " + typeName(target) + " instead of a list");
    }

    /** Dict keys must hash without looking inside containers: str, int, float, bool or None. */
    private Object checkKey(Object key) {
        if (key == null || key instanceof String || key instanceof Long || key instanceof Double
                || key instanceof Boolean) {
            return key;
        }
        throw fail("unsupported dict key of type " + typeName(key));
    }

    private void put(long index) {
        Object top = peek(null);
        count();
        memo.put(index, top);
    }

    private void get(long index) {
        Object v = memo.get(index);
        if (v == null && !memo.containsKey(index)) {
            throw fail("memo entry " + index + " is read before it is written");
        }
        push(v);
    }

    /** Little-endian two's complement integer of n bytes. */
    private Long longValue(long pos, int n) {
        need(pos, n);
        if (n > 8) {
            throw fail("integer of " + n + " bytes is too large (at most 64-bit integers are supported)");
        }
        long v = 0;
        for (int i = n - 1; i >= 0; i--) {
            v = (v << 8) | u8(pos + i);
        }
        if (n > 0 && n < 8) {
            int shift = 64 - 8 * n;
            v = (v << shift) >> shift; // sign-extend
        }
        return v;
    }

    private String string(long pos, long n) {
        byte[] b = bytes(pos, n);
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(b)).toString();
        } catch (CharacterCodingException e) {
            throw fail("str of " + n + " bytes is not valid UTF-8");
        }
    }

    private byte[] bytes(long pos, long n) {
        need(pos, n);
        if (n > MAX_STRING) {
            throw fail("str or bytes of " + n + " bytes is longer than the " + MAX_STRING + " supported");
        }
        return data.asSlice(pos, n).toArray(ValueLayout.JAVA_BYTE);
    }

    /** Offset of the newline that ends the text line starting at {@code pos}. */
    private long lineEnd(long pos) {
        long limit = Math.min(end, pos + MAX_GLOBAL_NAME + 1);
        for (long p = pos; p < limit; p++) {
            if (u8(p) == '\n') {
                return p;
            }
        }
        throw fail("GLOBAL name is not ended by a newline within " + MAX_GLOBAL_NAME + " bytes");
    }

    /** A module or attribute name of a GLOBAL: printable ASCII only (anything else is not an allowed name anyway). */
    private String ascii(long from, long to) {
        StringBuilder s = new StringBuilder((int) (to - from));
        for (long p = from; p < to; p++) {
            int c = u8(p);
            s.append(c >= 0x20 && c < 0x7f ? (char) c : '?');
        }
        return s.toString();
    }
}
