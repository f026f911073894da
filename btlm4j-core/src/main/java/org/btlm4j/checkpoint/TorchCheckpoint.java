package org.btlm4j.checkpoint;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A PyTorch checkpoint written by {@code torch.save} (the zip format of PyTorch 1.6 and later, e.g.
 * {@code pytorch_model.bin}), memory-mapped: the tensors' data are slices of the mapped file, nothing
 * is copied.
 *
 * <p>The archive holds {@code <archive>/data.pkl}, a pickle of the state dict whose tensors refer to
 * storages by key, and one stored entry {@code <archive>/data/<key>} per storage. The pickle is read
 * by a restricted reader ({@link PickleReader}) that only knows the handful of globals of a tensor
 * checkpoint ({@code collections.OrderedDict}, {@code torch._utils._rebuild_tensor_v2},
 * {@code torch._utils._rebuild_parameter[_with_state]}, the {@code torch.*Storage} types and
 * {@code torch} dtypes) as inert markers: nothing named in the file is loaded or run, and any other
 * global is an error.
 *
 * <p>Supported: ZIP64 (files over 4 GB), tensors that share a storage (tied weights) or start at an
 * offset in it, {@code nn.Parameter}s, a state dict at the top level or under a {@code "state_dict"}
 * or {@code "model"} key. Not supported: the legacy pre-1.6 format, compressed (re-zipped) archives,
 * non-contiguous tensors, big-endian checkpoints, dtypes other than those of {@link DType}.
 */
public final class TorchCheckpoint implements TensorSource {

    /** Largest data.pkl read; a state dict of thousands of tensors needs well under a megabyte. */
    static final long MAX_PICKLE_BYTES = 1L << 30;

    private final String fileName;
    private final MappedFile file;
    private final Map<String, TensorInfo> tensors;
    private boolean closed;

    private TorchCheckpoint(String fileName, MappedFile file, Map<String, TensorInfo> tensors) {
        this.fileName = fileName;
        this.file = file;
        this.tensors = tensors;
    }

    /**
     * Maps and reads a {@code torch.save} checkpoint.
     *
     * @throws CheckpointException if the file cannot be read or is not a supported tensor checkpoint;
     *                             the message names the file and the problem
     */
    public static TorchCheckpoint open(Path file) {
        String source = file.toString();
        Path name = file.getFileName();
        MappedFile file0 = MappedFile.map(file); // names the file: not found, a directory, unreadable
        try {
            MemorySegment mapped = file0.segment();
            if (mapped.byteSize() < 4) {
                throw new CheckpointException(source + ": file of " + mapped.byteSize()
                        + " bytes is too short to be a PyTorch checkpoint");
            }
            Map<String, TensorInfo> tensors = new Reader(mapped, source).read();
            return new TorchCheckpoint(name == null ? source : name.toString(), file0, tensors);
        } catch (CheckpointException e) {
            file0.close();
            throw e;
        } catch (RuntimeException e) {
            // a safety net: every problem of a file should already be a CheckpointException
            file0.close();
            throw new CheckpointException(source + ": malformed PyTorch checkpoint (" + e + ")", e);
        }
    }

    @Override
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    @Override
    public String describe() {
        return fileName + " (PyTorch zip checkpoint, " + tensors.size() + " tensors)";
    }

    /** Unmaps the file; the tensors' data can no longer be read. Closing twice does nothing. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            file.close();
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Marker values for the allowed globals and what they build. Their toString never looks inside
    // containers (messages use it).

    /** The allowed callables. */
    private enum Callable {
        ORDERED_DICT("collections.OrderedDict"),
        REBUILD_TENSOR_V2("torch._utils._rebuild_tensor_v2"),
        REBUILD_PARAMETER("torch._utils._rebuild_parameter"),
        REBUILD_PARAMETER_WITH_STATE("torch._utils._rebuild_parameter_with_state");

        private final String qualifiedName;

        Callable(String qualifiedName) {
            this.qualifiedName = qualifiedName;
        }

        @Override
        public String toString() {
            return qualifiedName;
        }
    }

    /** A {@code torch.<X>Storage} type. */
    private record StorageType(String name, DType dtype) {
        @Override
        public String toString() {
            return "torch." + name;
        }
    }

    /** A {@code torch} dtype object such as {@code torch.float32}. */
    private record TorchDType(String name, DType dtype) {
        @Override
        public String toString() {
            return "torch." + name;
        }
    }

    /** What a persistent id stands for: the storage in entry {@code data/<key>}. */
    private record Storage(StorageType type, String key, long numel) {
        @Override
        public String toString() {
            return "storage " + key;
        }
    }

    /** What {@code _rebuild_tensor_v2} builds: a view of a storage, checked once it has a name. */
    private record Tensor(Storage storage, long offset, long[] size, long[] stride) {
        @Override
        public String toString() {
            return "tensor";
        }
    }

    private static final Map<String, DType> STORAGE_TYPES = Map.ofEntries(
            Map.entry("DoubleStorage", DType.F64), Map.entry("FloatStorage", DType.F32),
            Map.entry("HalfStorage", DType.F16), Map.entry("BFloat16Storage", DType.BF16),
            Map.entry("LongStorage", DType.I64), Map.entry("IntStorage", DType.I32),
            Map.entry("ShortStorage", DType.I16), Map.entry("CharStorage", DType.I8),
            Map.entry("ByteStorage", DType.U8), Map.entry("BoolStorage", DType.BOOL),
            // newer torch names raw (untyped) storages so: bytes
            Map.entry("UntypedStorage", DType.U8));

    private static final Map<String, DType> DTYPES = Map.ofEntries(
            Map.entry("float64", DType.F64), Map.entry("double", DType.F64),
            Map.entry("float32", DType.F32), Map.entry("float", DType.F32),
            Map.entry("float16", DType.F16), Map.entry("half", DType.F16),
            Map.entry("bfloat16", DType.BF16),
            Map.entry("int64", DType.I64), Map.entry("long", DType.I64),
            Map.entry("int32", DType.I32), Map.entry("int", DType.I32),
            Map.entry("int16", DType.I16), Map.entry("short", DType.I16),
            Map.entry("int8", DType.I8), Map.entry("uint8", DType.U8), Map.entry("bool", DType.BOOL));

    /** Reads one mapped file. */
    private static final class Reader implements PickleReader.Hooks {
        private final MemorySegment file;
        private final String source;
        private ZipDirectory zip;
        private String prefix;
        /** "file: archive/data.pkl", for messages about the pickle. */
        private String pickleWhere;
        private final Map<String, Storage> storages = new HashMap<>();

        Reader(MemorySegment file, String source) {
            this.file = file;
            this.source = source;
        }

        private CheckpointException fail(String message) {
            return new CheckpointException(source + ": " + message);
        }

        Map<String, TensorInfo> read() {
            checkMagic();
            zip = ZipDirectory.read(file, source);
            ZipDirectory.Entry pickle = findPickle();
            pickleWhere = source + ": " + pickle.name();
            if (zip.get(prefix + "constants.pkl") != null) {
                throw fail("a TorchScript archive (torch.jit.save) is not supported; save the model's state_dict()"
                        + " with torch.save instead");
            }
            checkByteOrder();
            MemorySegment pickleData = zip.storedData(pickle, "the pickled state dict");
            if (pickleData.byteSize() > MAX_PICKLE_BYTES) {
                throw fail(pickle.name() + " of " + pickleData.byteSize() + " bytes is larger than the "
                        + MAX_PICKLE_BYTES + " supported");
            }
            Object root = PickleReader.load(pickleData, pickleWhere, this);
            Map<?, ?> stateDict = stateDict(root);
            Map<String, TensorInfo> result = new LinkedHashMap<>();
            Map<String, MemorySegment> storageData = new HashMap<>();
            for (Map.Entry<?, ?> e : stateDict.entrySet()) {
                String name = (String) e.getKey(); // checked by stateDict()
                result.put(name, tensorInfo(name, (Tensor) e.getValue(), storageData));
            }
            return Collections.unmodifiableMap(result);
        }

        private void checkMagic() {
            int b0 = Byte.toUnsignedInt(file.get(ValueLayout.JAVA_BYTE, 0));
            int b1 = Byte.toUnsignedInt(file.get(ValueLayout.JAVA_BYTE, 1));
            int b2 = Byte.toUnsignedInt(file.get(ValueLayout.JAVA_BYTE, 2));
            int b3 = Byte.toUnsignedInt(file.get(ValueLayout.JAVA_BYTE, 3));
            boolean zipLocal = b0 == 'P' && b1 == 'K' && b2 == 3 && b3 == 4;
            boolean zipEmpty = b0 == 'P' && b1 == 'K' && b2 == 5 && b3 == 6;
            if (zipLocal || zipEmpty) {
                return;
            }
            if (b0 == 0x80 && b1 >= 2 && b1 <= 5) {
                throw fail("legacy PyTorch format (before 1.6) is not supported; re-save with torch.save"
                        + " (PyTorch 1.6 or later) to get the zip format");
            }
            throw fail("not a PyTorch zip checkpoint (it does not start with a zip signature)");
        }

        /** The one {@code <archive>/data.pkl} entry; its archive prefix names the other entries. */
        private ZipDirectory.Entry findPickle() {
            List<ZipDirectory.Entry> found = new ArrayList<>();
            for (ZipDirectory.Entry e : zip.entries().values()) {
                String n = e.name();
                int slash = n.indexOf('/');
                if (slash > 0 && n.endsWith("/data.pkl") && slash == n.length() - "/data.pkl".length()) {
                    found.add(e);
                }
            }
            if (found.isEmpty()) {
                throw fail("no <archive>/data.pkl entry in the zip archive: not a torch.save checkpoint");
            }
            if (found.size() > 1) {
                throw fail("the zip archive has several data.pkl entries (" + found.get(0).name() + ", "
                        + found.get(1).name() + "): not a single torch.save checkpoint");
            }
            ZipDirectory.Entry pickle = found.getFirst();
            prefix = pickle.name().substring(0, pickle.name().length() - "data.pkl".length());
            return pickle;
        }

        private void checkByteOrder() {
            ZipDirectory.Entry e = zip.get(prefix + "byteorder");
            if (e == null) {
                return; // written by torch 1.x: always little-endian
            }
            if (e.size() > 16) {
                throw fail(e.name() + " of " + e.size() + " bytes is not a byte order");
            }
            String order = new String(zip.storedData(e, "the byte order").toArray(ValueLayout.JAVA_BYTE),
                    StandardCharsets.US_ASCII).strip();
            if (!order.equals("little")) {
                throw fail("checkpoint has byte order \"" + printable(order)
                        + "\"; only little-endian checkpoints are supported");
            }
        }

        /** The dict of tensors: the top-level dict, or one under "state_dict" or "model". */
        private Map<?, ?> stateDict(Object root) {
            if (!(root instanceof Map<?, ?> top)) {
                throw new CheckpointException(pickleWhere + ": the pickled object is of type "
                        + PickleReader.typeName(root)
                        + ", not a dict of tensors (a state dict)");
            }
            if (isTensorDict(top)) {
                return checkedTensorDict(top, "");
            }
            List<String> nested = new ArrayList<>();
            for (String key : List.of("state_dict", "model")) {
                if (top.get(key) instanceof Map<?, ?> m && isTensorDict(m)) {
                    nested.add(key);
                }
            }
            if (nested.size() == 1) {
                return checkedTensorDict((Map<?, ?>) top.get(nested.getFirst()), nested.getFirst());
            }
            if (nested.size() > 1) {
                throw new CheckpointException(pickleWhere + ": the checkpoint has both a \"state_dict\" and a \"model\""
                        + " dict of tensors; cannot tell which holds the weights");
            }
            for (String key : List.of("state_dict", "model")) {
                if (top.get(key) instanceof Map<?, ?> m) {
                    return checkedTensorDict(m, key); // fails, naming the entry that is no tensor
                }
            }
            return checkedTensorDict(top, "");
        }

        private static boolean isTensorDict(Map<?, ?> m) {
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (!(e.getKey() instanceof String) || !(e.getValue() instanceof Tensor)) {
                    return false;
                }
            }
            return true;
        }

        private Map<?, ?> checkedTensorDict(Map<?, ?> m, String under) {
            String where = under.isEmpty() ? "" : " under \"" + under + "\"";
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (!(e.getKey() instanceof String key)) {
                    throw new CheckpointException(pickleWhere + ": the state dict" + where + " has a key of type "
                            + PickleReader.typeName(e.getKey()) + " (" + printable(String.valueOf(e.getKey()))
                            + "); tensor names must be str");
                }
                if (!(e.getValue() instanceof Tensor)) {
                    throw new CheckpointException(pickleWhere + ": entry \"" + printable(key) + "\"" + where
                            + " is of type "
                            + PickleReader.typeName(e.getValue()) + ", not a tensor (only dicts of tensors, optionally"
                            + " under \"state_dict\" or \"model\", are supported)");
                }
            }
            return m;
        }

        /** Checks a tensor against its storage and makes it a slice of the storage's entry. */
        private TensorInfo tensorInfo(String name, Tensor t, Map<String, MemorySegment> storageData) {
            String what = "tensor " + printable(name);
            Storage s = t.storage();
            DType dtype = s.type().dtype();
            int es = dtype.bytes();
            MemorySegment bytes = storageData.get(s.key());
            if (bytes == null) {
                String entryName = prefix + "data/" + s.key();
                ZipDirectory.Entry entry = zip.get(entryName);
                if (entry == null) {
                    throw fail(what + ": its storage " + printable(s.key()) + " has no entry " + printable(entryName)
                            + " in the archive");
                }
                bytes = zip.storedData(entry, "storage of " + what);
                storageData.put(s.key(), bytes);
            }
            if (s.numel() > bytes.byteSize() / es) {
                throw fail(what + ": its storage " + printable(s.key()) + " is declared as " + s.numel()
                        + " elements of " + dtype + " but its entry holds only " + bytes.byteSize() + " bytes");
            }
            long[] size = t.size();
            long[] stride = t.stride();
            if (size.length != stride.length) {
                throw fail(what + " has size " + Arrays.toString(size) + " but stride " + Arrays.toString(stride));
            }
            long numel = 1;
            for (long d : size) {
                if (d < 0) {
                    throw fail(what + " has a negative dimension in " + Arrays.toString(size));
                }
                numel = multiply(numel, d, what, size);
            }
            multiply(numel, es, what, size);
            if (numel > 0) {
                long expected = 1;
                for (int i = size.length - 1; i >= 0; i--) {
                    if (size[i] != 1 && stride[i] != expected) {
                        throw fail(what + " is not contiguous (stride " + Arrays.toString(stride) + " for size "
                                + Arrays.toString(size) + "); save it after .contiguous()");
                    }
                    expected *= size[i];
                }
            }
            long offset = t.offset();
            if (offset < 0 || offset > s.numel() || numel > s.numel() - offset) {
                throw fail(what + " (" + numel + " elements at offset " + offset + ") does not fit in its storage "
                        + printable(s.key()) + " of " + s.numel() + " elements");
            }
            return new TensorInfo(name, dtype, size, bytes.asSlice(offset * es, numel * es), source);
        }

        private long multiply(long a, long b, String what, long[] size) {
            if (Math.multiplyHigh(a, b) != 0 || a * b < 0) {
                throw fail(what + " has size " + Arrays.toString(size) + " whose byte size overflows");
            }
            return a * b;
        }

        // ---- the pickle's globals ------------------------------------------------------------------

        @Override
        public Object global(String module, String name) {
            switch (module + "." + name) {
                case "collections.OrderedDict" -> {
                    return Callable.ORDERED_DICT;
                }
                case "torch._utils._rebuild_tensor_v2" -> {
                    return Callable.REBUILD_TENSOR_V2;
                }
                case "torch._utils._rebuild_parameter" -> {
                    return Callable.REBUILD_PARAMETER;
                }
                case "torch._utils._rebuild_parameter_with_state" -> {
                    return Callable.REBUILD_PARAMETER_WITH_STATE;
                }
                default -> {
                }
            }
            if (module.equals("torch")) {
                DType storage = STORAGE_TYPES.get(name);
                if (storage != null) {
                    return new StorageType(name, storage);
                }
                DType dtype = DTYPES.get(name);
                if (dtype != null) {
                    return new TorchDType(name, dtype);
                }
                if (name.endsWith("Storage")) {
                    throw new CheckpointException(pickleWhere + " uses storage type torch." + name
                            + ", whose element type is not supported");
                }
            }
            if (module.equals("torch._utils") && name.startsWith("_rebuild_")) {
                throw new CheckpointException(pickleWhere + " uses torch._utils." + name
                        + ", a kind of tensor that is not supported (only plain dense tensors are)");
            }
            throw new CheckpointException(pickleWhere + " uses forbidden global " + module + "." + name
                    + " (only tensor checkpoints are supported)");
        }

        @Override
        public Object reduce(Object callable, PickleReader.Tuple args) {
            if (callable instanceof Callable c) {
                switch (c) {
                    case ORDERED_DICT -> {
                        if (args.size() == 0) {
                            return new LinkedHashMap<>();
                        }
                    }
                    case REBUILD_TENSOR_V2 -> {
                        if (args.size() == 6 || args.size() == 7) {
                            return rebuildTensor(args);
                        }
                    }
                    case REBUILD_PARAMETER, REBUILD_PARAMETER_WITH_STATE -> {
                        int arity = c == Callable.REBUILD_PARAMETER ? 3 : 4;
                        if (args.size() == arity) {
                            if (args.get(0) instanceof Tensor t) {
                                return t;
                            }
                            throw new CheckpointException(pickleWhere + ": " + c + " of type "
                                    + PickleReader.typeName(args.get(0)) + " instead of a tensor");
                        }
                    }
                }
                throw new CheckpointException(pickleWhere + ": " + c + " called with " + args.size()
                        + " arguments, which torch.save does not write");
            }
            throw new CheckpointException(pickleWhere + ": cannot call " + PickleReader.typeName(callable)
                    + " (only tensor checkpoints are supported)");
        }

        private Tensor rebuildTensor(PickleReader.Tuple args) {
            if (!(args.get(0) instanceof Storage storage)) {
                throw new CheckpointException(pickleWhere + ": _rebuild_tensor_v2 of type "
                        + PickleReader.typeName(args.get(0)) + " instead of a storage");
            }
            if (!(args.get(1) instanceof Long offset)) {
                throw new CheckpointException(pickleWhere + ": _rebuild_tensor_v2 with a storage offset of type "
                        + PickleReader.typeName(args.get(1)));
            }
            long[] size = ints(args.get(2), "size");
            long[] stride = ints(args.get(3), "stride");
            if (!(args.get(4) instanceof Boolean)) {
                throw new CheckpointException(pickleWhere + ": _rebuild_tensor_v2 with requires_grad of type "
                        + PickleReader.typeName(args.get(4)));
            }
            // args 5 (backward hooks, an empty OrderedDict) and 6 (metadata) do not affect the data
            return new Tensor(storage, offset, size, stride);
        }

        private long[] ints(Object v, String what) {
            if (!(v instanceof PickleReader.Tuple t)) {
                throw new CheckpointException(pickleWhere + ": _rebuild_tensor_v2 with a " + what + " of type "
                        + PickleReader.typeName(v) + " instead of a tuple");
            }
            long[] result = new long[t.size()];
            for (int i = 0; i < result.length; i++) {
                if (!(t.get(i) instanceof Long l)) {
                    throw new CheckpointException(pickleWhere + ": _rebuild_tensor_v2 with a " + what
                            + " holding a value of type " + PickleReader.typeName(t.get(i)));
                }
                result[i] = l;
            }
            return result;
        }

        @Override
        public Object newObject(Object cls, PickleReader.Tuple args) {
            if (cls == Callable.ORDERED_DICT && args.size() == 0) {
                return new LinkedHashMap<>();
            }
            throw new CheckpointException(pickleWhere + ": cannot create an object of " + PickleReader.typeName(cls)
                    + " (only tensor checkpoints are supported)");
        }

        @Override
        public Object persistentLoad(Object pid) {
            if (!(pid instanceof PickleReader.Tuple t) || t.size() != 5 || !"storage".equals(t.get(0))) {
                throw new CheckpointException(pickleWhere + ": persistent id " + describePid(pid)
                        + " is not a ('storage', type, key, location, size) reference");
            }
            if (!(t.get(1) instanceof StorageType type) || !(t.get(2) instanceof String key)
                    || !(t.get(3) instanceof String) || !(t.get(4) instanceof Long numel)) {
                throw new CheckpointException(pickleWhere + ": malformed storage reference (" + describePid(pid) + ")");
            }
            if (numel < 0) {
                throw new CheckpointException(pickleWhere + ": storage " + printable(key) + " has negative size "
                        + numel);
            }
            Storage storage = new Storage(type, key, numel);
            Storage before = storages.putIfAbsent(key, storage);
            if (before != null && !before.equals(storage)) {
                throw new CheckpointException(pickleWhere + ": storage " + printable(key) + " is declared both as "
                        + before.numel() + " elements of " + before.type() + " and as " + numel + " of " + type);
            }
            return before != null ? before : storage;
        }

        private static String describePid(Object pid) {
            if (pid instanceof PickleReader.Tuple t) {
                StringBuilder s = new StringBuilder("(");
                for (int i = 0; i < Math.min(t.size(), 5); i++) {
                    Object v = t.get(i);
                    String text = v instanceof String str ? "'" + printable(str) + "'"
                            : v instanceof Long || v instanceof StorageType ? String.valueOf(v)
                            : PickleReader.typeName(v);
                    s.append(i > 0 ? ", " : "").append(text);
                }
                return s.append(t.size() > 5 ? ", ...)" : ")").toString();
            }
            return "of type " + PickleReader.typeName(pid);
        }

        @Override
        public void build(Object target, Object state) {
            // an OrderedDict's attributes (a module state dict's _metadata) or a tensor's Python state:
            // neither affects the weights
            if (target instanceof Map<?, ?> || target instanceof Tensor) {
                return;
            }
            throw new CheckpointException(pickleWhere + ": cannot set the state of an object of type "
                    + PickleReader.typeName(target)
                    + " (only tensor checkpoints are supported)");
        }
    }

    /** A name from the file, shortened and with control characters escaped, for messages. */
    static String printable(String s) {
        StringBuilder b = new StringBuilder();
        int i = 0;
        for (; i < s.length() && b.length() < 200; i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c == 0x7f) {
                b.append(String.format("\\x%02x", (int) c));
            } else {
                b.append(c);
            }
        }
        return i < s.length() ? b + "..." : b.toString();
    }
}
