package org.btlm4j.checkpoint;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Finds the files of a model: {@code config.json} and the weights (safetensors preferred over
 * PyTorch {@code .bin} when both are present, single or sharded). The tokenizer files sit beside
 * them ({@code Gpt2Tokenizer.fromDirectory}).
 *
 * <p>{@code path} may be the model directory or one weights file inside it.
 */
public final class ModelDirectory {

    /** The kinds of weight files we read. */
    public enum WeightsFormat {
        SAFETENSORS("safetensors"), SAFETENSORS_SHARDED("sharded safetensors"),
        PYTORCH("PyTorch .bin"), PYTORCH_SHARDED("sharded PyTorch .bin"), GGUF("GGUF");

        private final String label;

        WeightsFormat(String label) {
            this.label = label;
        }

        @Override
        public String toString() {
            return label;
        }
    }

    private final Path directory;
    private final Path config;
    private final Path weights;
    private final WeightsFormat format;
    private final String choice;

    private ModelDirectory(Path directory, Path config, Path weights, WeightsFormat format, String choice) {
        this.directory = directory;
        this.config = config;
        this.weights = weights;
        this.format = format;
        this.choice = choice;
    }

    /** Locates the files of the model at {@code path}, or says clearly what is missing. */
    public static ModelDirectory locate(Path path) {
        if (!Files.exists(path)) {
            throw new CheckpointException(path + ": no such file or directory");
        }
        Path dir = Files.isDirectory(path) ? path : path.toAbsolutePath().getParent();
        if (!Files.isDirectory(path) && path.getFileName().toString().endsWith(".gguf")) {
            // A GGUF file carries its config and tokenizer in its metadata.
            return new ModelDirectory(dir, null, path, WeightsFormat.GGUF, "using " + path.getFileName() + " (GGUF)");
        }
        Path config = dir.resolve("config.json");
        if (!Files.isRegularFile(config)) {
            throw new CheckpointException(dir + ": no config.json (is this a model directory?)");
        }
        if (!Files.isDirectory(path)) {
            String name = path.getFileName().toString();
            WeightsFormat f = name.endsWith(".safetensors") ? WeightsFormat.SAFETENSORS
                    : name.endsWith(".bin") ? WeightsFormat.PYTORCH
                    : name.endsWith("safetensors.index.json") ? WeightsFormat.SAFETENSORS_SHARDED
                    : name.endsWith("bin.index.json") ? WeightsFormat.PYTORCH_SHARDED
                    : null;
            if (f == null) {
                throw new CheckpointException(path + ": not a weights file (expected .safetensors, .bin or an index .json)");
            }
            return new ModelDirectory(dir, config, path, f, "using " + name + " as given");
        }
        Path st = dir.resolve("model.safetensors");
        Path stIndex = dir.resolve("model.safetensors.index.json");
        Path bin = dir.resolve("pytorch_model.bin");
        Path binIndex = dir.resolve("pytorch_model.bin.index.json");
        boolean hasBin = Files.isRegularFile(bin) || Files.isRegularFile(binIndex);
        String also = hasBin ? " (PyTorch .bin also present; safetensors preferred)" : "";
        if (Files.isRegularFile(st)) {
            return new ModelDirectory(dir, config, st, WeightsFormat.SAFETENSORS, "weights: model.safetensors" + also);
        }
        if (Files.isRegularFile(stIndex)) {
            return new ModelDirectory(dir, config, stIndex, WeightsFormat.SAFETENSORS_SHARDED,
                    "weights: model.safetensors.index.json" + also);
        }
        if (Files.isRegularFile(bin)) {
            return new ModelDirectory(dir, config, bin, WeightsFormat.PYTORCH, "weights: pytorch_model.bin");
        }
        if (Files.isRegularFile(binIndex)) {
            return new ModelDirectory(dir, config, binIndex, WeightsFormat.PYTORCH_SHARDED,
                    "weights: pytorch_model.bin.index.json");
        }
        throw new CheckpointException(dir + ": no weights found (expected model.safetensors, "
                + "model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json)");
    }

    /** Opens the weights (memory-mapped). The caller closes the returned source. */
    public TensorSource openWeights() {
        return switch (format) {
            case SAFETENSORS -> SafetensorsFile.open(weights);
            case SAFETENSORS_SHARDED -> ShardedCheckpoint.open(weights, SafetensorsFile::open);
            case PYTORCH -> TorchCheckpoint.open(weights);
            case PYTORCH_SHARDED -> ShardedCheckpoint.open(weights, TorchCheckpoint::open);
            case GGUF -> GgufFile.open(weights);
        };
    }

    public Path directory() {
        return directory;
    }

    /** {@code config.json}; null for a GGUF file, whose metadata holds the config. */
    public Path config() {
        return config;
    }

    public Path weights() {
        return weights;
    }

    public WeightsFormat format() {
        return format;
    }

    /** Which weights were chosen and why, e.g. for a note on stderr. */
    public String choice() {
        return choice;
    }
}
