package org.btlm4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;
import org.btlm4j.checkpoint.CheckpointException;
import org.btlm4j.checkpoint.ModelDirectory;
import org.btlm4j.checkpoint.SafetensorsFile;
import org.btlm4j.checkpoint.SafetensorsWriter;
import org.btlm4j.checkpoint.SafetensorsWriter.Entry;
import org.btlm4j.checkpoint.TensorInfo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Finding the files of a model and binding its tensors, with clear errors for what does not fit. */
class ModelLoadingTest {
    @TempDir
    Path tmp;

    /** A copy of btlm-tiny whose tensors pass through {@code edit} (null drops one). */
    Path tinyWith(UnaryOperator<Entry> edit) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("model"));
        for (String f : List.of("config.json", "vocab.json", "merges.txt")) {
            Files.copy(Fixtures.tiny().resolve(f), dir.resolve(f));
        }
        List<Entry> entries = new ArrayList<>();
        try (SafetensorsFile f = SafetensorsFile.open(Fixtures.tiny().resolve("model.safetensors"))) {
            for (TensorInfo t : f.tensors().values()) {
                Entry e = edit.apply(Entry.of(t));
                if (e != null) {
                    entries.add(e);
                }
            }
        }
        SafetensorsWriter.write(dir.resolve("model.safetensors"), entries);
        return dir;
    }

    String loadError(Path dir) {
        return assertThrows(BtlmException.class, () -> BtlmModel.load(dir).close()).getMessage();
    }

    @Test
    void rewrittenFixtureStillLoadsAndMatches() throws IOException {
        Path dir = tinyWith(e -> e);
        Files.copy(Fixtures.tiny().resolve("expected.json"), dir.resolve("expected.json"));
        try (BtlmModel m = BtlmModel.load(dir)) {
            Fixtures.Sequence s = Fixtures.expected(dir).get(1);
            assertEquals(s.nextTokenLogprobs()[0], m.score(s.inputIds()).tokenLogprobs()[1], 1e-4);
        }
    }

    @Test
    void missingTensorIsNamed() throws IOException {
        Path dir = tinyWith(e -> e.name().equals("transformer.h.1.mlp.c_fc2.weight") ? null : e);
        assertTrue(loadError(dir).contains("missing tensor transformer.h.1.mlp.c_fc2.weight"), loadError(dir));
    }

    @Test
    void wrongShapeIsNamedWithTheExpectedShape() throws IOException {
        Path dir = tinyWith(e -> e.name().equals("transformer.h.0.attn.c_proj.weight")
                ? new Entry(e.name(), e.dtype(), new long[] {32, 128}, e.bytes()) : e);
        String msg = loadError(dir);
        assertTrue(msg.contains("transformer.h.0.attn.c_proj.weight has shape [32, 128], expected [64, 64]"), msg);
    }

    @Test
    void integerWeightsAreRefused() throws IOException {
        Path dir = tinyWith(e -> e.name().equals("transformer.ln_f.bias") ? new Entry(e.name(), "I16", e.shape(), e.bytes()) : e);
        assertTrue(loadError(dir).contains("transformer.ln_f.bias has type I16"), loadError(dir));
    }

    @Test
    void prefersSafetensorsAndSaysSo() throws IOException {
        Path dir = tinyWith(e -> e);
        Files.copy(Fixtures.tinyBin().resolve("pytorch_model.bin"), dir.resolve("pytorch_model.bin"));
        ModelDirectory md = ModelDirectory.locate(dir);
        assertEquals(ModelDirectory.WeightsFormat.SAFETENSORS, md.format());
        assertTrue(md.choice().contains("safetensors preferred"), md.choice());
        // Naming the .bin file picks it.
        assertEquals(ModelDirectory.WeightsFormat.PYTORCH, ModelDirectory.locate(dir.resolve("pytorch_model.bin")).format());
    }

    @Test
    void directoryWithoutConfigOrWeightsIsExplained() throws IOException {
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        assertTrue(assertThrows(CheckpointException.class, () -> ModelDirectory.locate(empty)).getMessage()
                .contains("no config.json"));
        Files.copy(Fixtures.tiny().resolve("config.json"), empty.resolve("config.json"));
        assertTrue(assertThrows(CheckpointException.class, () -> ModelDirectory.locate(empty)).getMessage()
                .contains("no weights found"));
    }

    @Test
    void modelWithoutTokenizerWorksOnTokenIds() throws IOException {
        Path dir = tinyWith(e -> e);
        Files.delete(dir.resolve("vocab.json"));
        try (BtlmModel m = BtlmModel.load(dir)) {
            assertEquals(3, m.generate(new int[] {1, 2, 3}, GenerationParams.defaults().withMaxNewTokens(3)
                    .withIgnoreEos(true)).tokenIds().length);
            assertTrue(assertThrows(BtlmException.class, m::tokenizer).getMessage().contains("no tokenizer files"));
        }
    }

    @Test
    void contextBeyondPositionsNeedsAlibiScaling() {
        String msg = assertThrows(BtlmException.class,
                () -> BtlmModel.load(Fixtures.tiny(), new BtlmModel.Options(1, 512)).close()).getMessage();
        assertTrue(msg.contains("exceeds n_positions 256"), msg);
    }

    @Test
    void noMmapCopyGivesIdenticalResults() {
        for (Path dir : List.of(Fixtures.tinyBin(), Fixtures.demo())) {
            Fixtures.Sequence s = Fixtures.expected(dir).get(2);
            double[] mapped;
            try (BtlmModel m = BtlmModel.load(dir, new BtlmModel.Options(2, 0, true))) {
                mapped = m.score(s.inputIds()).tokenLogprobs();
            }
            try (BtlmModel m = BtlmModel.load(dir, new BtlmModel.Options(2, 0, false))) {
                assertTrue(m.description().contains("copied to memory"), m.description());
                // The same bytes through the same kernels; only the summation blocking may differ with
                // the copy's alignment, so float32 rounding is the whole difference.
                org.junit.jupiter.api.Assertions.assertArrayEquals(mapped, m.score(s.inputIds()).tokenLogprobs(), 1e-5);
            }
        }
    }

    @Test
    void halfPrecisionKvCacheStaysCloseToTheReference() {
        Path dir = Fixtures.demo();
        try (BtlmModel m = BtlmModel.load(dir, new BtlmModel.Options(2, 0, true, org.btlm4j.model.KvCache.Type.F16))) {
            for (Fixtures.Sequence s : Fixtures.expected(dir)) {
                double[] lp = m.score(s.inputIds()).tokenLogprobs();
                for (int t = 0; t < s.nextTokenLogprobs().length; t++) {
                    // Keys and values rounded to 11 significant bits: ~1e-3 on log-probs of a
                    // trained model, far from the 1e-4 of the exact float32 cache.
                    assertEquals(s.nextTokenLogprobs()[t], lp[t + 1], 1e-2, s.name() + " position " + t);
                }
                org.junit.jupiter.api.Assertions.assertArrayEquals(s.greedyNewTokens(), m.generate(s.inputIds(),
                        GenerationParams.defaults().withMaxNewTokens(s.greedyNewTokens().length).withIgnoreEos(true))
                        .tokenIds(), s.name() + " greedy with an F16 cache");
            }
        }
    }
}
