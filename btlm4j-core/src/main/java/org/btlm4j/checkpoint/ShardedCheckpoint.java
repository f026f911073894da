package org.btlm4j.checkpoint;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * A checkpoint split over several files and described by an index
 * ({@code model.safetensors.index.json} or {@code pytorch_model.bin.index.json}) whose
 * {@code weight_map} names the shard of every tensor. The index and the shards must agree.
 */
public final class ShardedCheckpoint implements TensorSource {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path index;
    private final List<TensorSource> shards;
    private final Map<String, TensorInfo> tensors;

    private ShardedCheckpoint(Path index, List<TensorSource> shards, Map<String, TensorInfo> tensors) {
        this.index = index;
        this.shards = shards;
        this.tensors = tensors;
    }

    /**
     * Opens every shard that {@code index} names with {@code reader} and checks that each tensor is
     * where the index says and nowhere else.
     */
    public static ShardedCheckpoint open(Path index, Function<Path, ? extends TensorSource> reader) {
        String name = index.getFileName().toString();
        JsonNode root;
        try {
            root = JSON.readTree(index.toFile());
        } catch (JsonProcessingException e) {
            throw new CheckpointException(name + ": not valid JSON (" + e.getOriginalMessage() + ")");
        } catch (NoSuchFileException | java.io.FileNotFoundException e) {
            throw new CheckpointException(index + ": file not found");
        } catch (IOException e) {
            throw new CheckpointException(index + ": cannot read (" + e.getMessage() + ")");
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject() || map.isEmpty()) {
            throw new CheckpointException(name + ": missing or empty \"weight_map\" object");
        }
        Map<String, String> shardOf = new LinkedHashMap<>();
        Map<String, List<String>> namesByShard = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : map.properties()) {
            if (!e.getValue().isTextual()) {
                throw new CheckpointException(name + ": weight_map." + e.getKey() + " must be a file name");
            }
            String file = e.getValue().asText();
            // The index comes from the same untrusted download as the shards: only plain file names
            // in the model's directory are accepted, never paths that lead elsewhere.
            if (file.isEmpty() || file.contains("/") || file.contains("\\") || file.equals(".") || file.equals("..")) {
                throw new CheckpointException(name + ": weight_map." + e.getKey() + " names \"" + file
                        + "\", which is not a file name in the model directory");
            }
            shardOf.put(e.getKey(), file);
            namesByShard.computeIfAbsent(file, k -> new ArrayList<>()).add(e.getKey());
        }
        Path dir = index.toAbsolutePath().getParent();
        List<TensorSource> opened = new ArrayList<>();
        try {
            Map<String, TensorInfo> all = new LinkedHashMap<>();
            for (String file : namesByShard.keySet()) {
                TensorSource shard = reader.apply(dir.resolve(file));
                opened.add(shard);
                for (TensorInfo t : shard.tensors().values()) {
                    String expected = shardOf.get(t.name());
                    if (expected == null) {
                        // HF writes the tied lm_head into a shard without always listing it; a tensor the
                        // index does not know is tolerated only if nothing else claims that name.
                        if (all.containsKey(t.name())) {
                            throw new CheckpointException(file + ": tensor " + t.name() + " is also in another shard");
                        }
                        all.put(t.name(), t);
                        continue;
                    }
                    if (!expected.equals(file)) {
                        throw new CheckpointException(name + " says tensor " + t.name() + " is in " + expected
                                + " but it is (also) in " + file);
                    }
                    all.put(t.name(), t);
                }
            }
            for (Map.Entry<String, String> e : shardOf.entrySet()) {
                if (!all.containsKey(e.getKey())) {
                    throw new CheckpointException(name + " says tensor " + e.getKey() + " is in " + e.getValue()
                            + " but that file does not contain it");
                }
            }
            return new ShardedCheckpoint(index, List.copyOf(opened), Collections.unmodifiableMap(all));
        } catch (RuntimeException e) {
            opened.forEach(TensorSource::close);
            throw e;
        }
    }

    @Override
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    @Override
    public String describe() {
        return index.getFileName() + " (" + shards.size() + " shards, " + tensors.size() + " tensors)";
    }

    @Override
    public void close() {
        shards.forEach(TensorSource::close);
    }
}
