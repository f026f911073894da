package org.btlm4j;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Paths of the test fixtures and readers for their {@code expected.json}. */
public final class Fixtures {
    private Fixtures() {
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /** btlm-tiny: safetensors, BF16, tied head, stored slopes, vocab.json + merges.txt. */
    public static Path tiny() {
        return resource("fixtures/btlm-tiny");
    }

    /** btlm-tiny-bin: the same weights written by torch.save, with tokenizer.json. */
    public static Path tinyBin() {
        return resource("fixtures/btlm-tiny-bin");
    }

    /** The trained demo model shipped with the project (models/btlm-demo). */
    public static Path demo() {
        Path p = Path.of("..", "models", "btlm-demo");
        if (!Files.isDirectory(p)) {
            p = Path.of("models", "btlm-demo");
        }
        return p;
    }

    /** A fixture of src/test/resources/fixtures/extra. */
    public static Path extra(String name) {
        return resource("fixtures/extra/" + name);
    }

    public static Path resource(String relative) {
        Path p = Path.of("src", "test", "resources").resolve(relative);
        if (!Files.exists(p)) {
            throw new IllegalStateException("missing test fixture " + p.toAbsolutePath());
        }
        return p;
    }

    /** One sequence of an expected.json. */
    public record Sequence(String name, int[] inputIds, double[] nextTokenLogprobs, int[] greedyNewTokens,
            double[] greedyMargins, int lastArgmax, double lastLogsumexp, double[] first8Logits) {
    }

    public static List<Sequence> expected(Path modelDir) {
        JsonNode root;
        try {
            root = JSON.readTree(modelDir.resolve("expected.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        List<Sequence> out = new ArrayList<>();
        for (JsonNode s : root.get("sequences")) {
            JsonNode last = s.get("last_position");
            out.add(new Sequence(s.get("name").asText(), ints(s.get("input_ids")), doubles(s.get("next_token_logprobs")),
                    ints(s.get("greedy_new_tokens")), doubles(s.get("greedy_margins")),
                    last == null ? -1 : last.get("argmax").asInt(),
                    last == null ? Double.NaN : last.get("logsumexp").asDouble(),
                    last == null ? new double[0] : doubles(last.get("first_8_logits"))));
        }
        return out;
    }

    public static double[] alibiSlopes(Path modelDir) {
        try {
            return doubles(JSON.readTree(modelDir.resolve("expected.json").toFile()).get("alibi_slopes_used"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static int[] ints(JsonNode a) {
        int[] r = new int[a.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = a.get(i).asInt();
        }
        return r;
    }

    static double[] doubles(JsonNode a) {
        if (a == null) {
            return new double[0];
        }
        double[] r = new double[a.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = a.get(i).asDouble();
        }
        return r;
    }
}
