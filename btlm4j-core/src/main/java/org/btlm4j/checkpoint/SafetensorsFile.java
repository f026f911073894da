package org.btlm4j.checkpoint;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@code .safetensors} file, memory-mapped: an 8-byte little-endian header length, a JSON header
 * {@code {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}}, then the raw
 * tensor bytes. Tensors are views of the mapping; nothing is copied.
 */
public final class SafetensorsFile implements TensorSource {

    /** Headers larger than this are refused, as the reference implementation does. */
    static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

    /** A name given twice in the header is refused: which of the two entries is meant? */
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private final Path path;
    private final MappedFile mapped;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, MappedFile mapped, Map<String, TensorInfo> tensors, Map<String, String> metadata) {
        this.path = path;
        this.mapped = mapped;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /** Maps and validates a safetensors file. */
    public static SafetensorsFile open(Path path) {
        MappedFile mapped = MappedFile.map(path);
        try {
            String name = path.getFileName().toString();
            MemorySegment file = mapped.segment();
            if (file.byteSize() < 8) {
                throw new CheckpointException(name + ": file is " + file.byteSize()
                        + " bytes, too short for a safetensors header");
            }
            long headerLength = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
            if (headerLength < 2 || headerLength > MAX_HEADER_BYTES) {
                throw new CheckpointException(name + ": header length " + headerLength
                        + " is invalid (not a safetensors file, or corrupted)");
            }
            if (8 + headerLength > file.byteSize()) {
                throw new CheckpointException(name + ": header of " + headerLength + " bytes runs past the end of the "
                        + file.byteSize() + "-byte file (truncated?)");
            }
            byte[] headerBytes = file.asSlice(8, headerLength).toArray(ValueLayout.JAVA_BYTE);
            JsonNode header;
            try {
                header = JSON.readTree(new String(headerBytes, StandardCharsets.UTF_8));
            } catch (JsonProcessingException e) {
                throw new CheckpointException(name + ": header is not valid JSON (" + e.getOriginalMessage() + ")");
            }
            if (header == null || !header.isObject()) {
                throw new CheckpointException(name + ": header is not a JSON object");
            }
            MemorySegment data = file.asSlice(8 + headerLength);
            Map<String, String> metadata = new LinkedHashMap<>();
            List<TensorInfo> list = new ArrayList<>();
            List<long[]> ranges = new ArrayList<>();
            for (Map.Entry<String, JsonNode> e : header.properties()) {
                if (e.getKey().equals("__metadata__")) {
                    readMetadata(name, e.getValue(), metadata);
                    continue;
                }
                long[] range = new long[2];
                list.add(readEntry(name, e.getKey(), e.getValue(), data, range));
                ranges.add(new long[] {range[0], range[1], list.size() - 1});
            }
            checkNoOverlap(name, ranges, list);
            // File order = order of the data, which is what users expect when listing.
            ranges.sort(Comparator.comparingLong(r -> r[0]));
            Map<String, TensorInfo> byName = new LinkedHashMap<>();
            for (long[] r : ranges) {
                TensorInfo t = list.get((int) r[2]);
                byName.put(t.name(), t);
            }
            return new SafetensorsFile(path, mapped, Collections.unmodifiableMap(byName),
                    Collections.unmodifiableMap(metadata));
        } catch (RuntimeException e) {
            mapped.close();
            throw e;
        }
    }

    private static void readMetadata(String file, JsonNode node, Map<String, String> out) {
        if (!node.isObject()) {
            throw new CheckpointException(file + ": __metadata__ must be an object of strings");
        }
        for (Map.Entry<String, JsonNode> m : node.properties()) {
            if (!m.getValue().isTextual()) {
                throw new CheckpointException(file + ": __metadata__." + m.getKey() + " must be a string");
            }
            out.put(m.getKey(), m.getValue().asText());
        }
    }

    private static TensorInfo readEntry(String file, String tensor, JsonNode node, MemorySegment data, long[] range) {
        String where = file + ": tensor " + tensor;
        if (!node.isObject()) {
            throw new CheckpointException(where + ": entry is not an object");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new CheckpointException(where + ": missing \"dtype\"");
        }
        DType dtype = switch (dtypeNode.asText()) {
            case "F64" -> DType.F64;
            case "F32" -> DType.F32;
            case "F16" -> DType.F16;
            case "BF16" -> DType.BF16;
            case "I64" -> DType.I64;
            case "I32" -> DType.I32;
            case "I16" -> DType.I16;
            case "I8" -> DType.I8;
            case "U8" -> DType.U8;
            case "BOOL" -> DType.BOOL;
            default -> throw new CheckpointException(where + ": unsupported dtype \"" + dtypeNode.asText() + "\"");
        };
        JsonNode shapeNode = node.get("shape");
        if (shapeNode == null || !shapeNode.isArray()) {
            throw new CheckpointException(where + ": missing \"shape\" array");
        }
        long[] shape = new long[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = shapeNode.get(i);
            if (!d.isIntegralNumber() || !d.canConvertToLong() || d.asLong() < 0) {
                throw new CheckpointException(where + ": shape " + shapeNode + " has an invalid dimension " + d);
            }
            shape[i] = d.asLong();
        }
        JsonNode offsets = node.get("data_offsets");
        if (offsets == null || !offsets.isArray() || offsets.size() != 2 || !offsets.get(0).isIntegralNumber()
                || !offsets.get(1).isIntegralNumber() || !offsets.get(0).canConvertToLong()
                || !offsets.get(1).canConvertToLong()) {
            throw new CheckpointException(where + ": \"data_offsets\" must be two integers, got " + offsets);
        }
        long begin = offsets.get(0).asLong();
        long end = offsets.get(1).asLong();
        if (begin < 0 || end < begin || end > data.byteSize()) {
            throw new CheckpointException(where + ": data_offsets [" + begin + ", " + end + "] lie outside the "
                    + data.byteSize() + " bytes of data (truncated file?)");
        }
        long elements = 1;
        for (long d : shape) {
            if (d != 0 && elements > Long.MAX_VALUE / d) {
                throw new CheckpointException(where + ": shape " + shapeNode + " is too large");
            }
            elements *= d;
        }
        if (elements > Long.MAX_VALUE / dtype.bytes() || elements * dtype.bytes() != end - begin) {
            throw new CheckpointException(where + ": shape " + shapeNode + " of " + dtype + " needs "
                    + (elements > Long.MAX_VALUE / dtype.bytes() ? "more than 2^63" : String.valueOf(elements * dtype.bytes()))
                    + " bytes but data_offsets give " + (end - begin));
        }
        range[0] = begin;
        range[1] = end;
        return new TensorInfo(tensor, dtype, shape, data.asSlice(begin, end - begin), file);
    }

    private static void checkNoOverlap(String file, List<long[]> ranges, List<TensorInfo> tensors) {
        List<long[]> sorted = new ArrayList<>(ranges);
        sorted.sort(Comparator.<long[]>comparingLong(r -> r[0]).thenComparingLong(r -> r[1]));
        for (int i = 1; i < sorted.size(); i++) {
            long[] a = sorted.get(i - 1);
            long[] b = sorted.get(i);
            if (b[0] < a[1]) {
                throw new CheckpointException(file + ": tensors " + tensors.get((int) a[2]).name() + " and "
                        + tensors.get((int) b[2]).name() + " overlap in the file");
            }
        }
    }

    @Override
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    /** The {@code __metadata__} strings. */
    public Map<String, String> metadata() {
        return metadata;
    }

    public Path path() {
        return path;
    }

    @Override
    public String describe() {
        return path.getFileName() + " (safetensors, " + tensors.size() + " tensors)";
    }

    @Override
    public void close() {
        mapped.close();
    }

    /** Arena used for the mapping, for callers that need the lifetime. */
    Arena arena() {
        return mapped.arena();
    }
}
