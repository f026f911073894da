package org.btlm4j.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.btlm4j.BtlmModel;
import org.btlm4j.GenerationParams;
import org.btlm4j.checkpoint.SafetensorsFile;
import org.btlm4j.checkpoint.TensorInfo;
import org.btlm4j.model.BtlmConfig;
import org.btlm4j.tensor.Parallel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RandomCheckpointTest {
    /** BTLM-3B's structure, shrunk: same names, odd MLP width, 32 heads of 4. */
    static final BtlmConfig SMALL = new BtlmConfig("btlm", 50257, 128, 2, 32, 341, 256,
            BtlmConfig.Activation.SWIGLU, BtlmConfig.PositionEmbedding.ALIBI, 1e-5f, 14.6f, 0.222f, true, true, false,
            true, null, 50256, 50256);

    @TempDir
    Path tmp;

    @Test
    void writesALoadableDeterministicCheckpointWithRealisticValues() throws IOException {
        Path a;
        Path b;
        try (Parallel one = new Parallel(1); Parallel three = new Parallel(3)) {
            a = RandomCheckpoint.ensure(SMALL, 7, tmp.resolve("a"), null, one, null);
            b = RandomCheckpoint.ensure(SMALL, 7, tmp.resolve("b"), null, three, null);
        }
        // Same seed, different thread counts: the same bytes.
        assertArrayEquals(Files.readAllBytes(a.resolve("model.safetensors")), Files.readAllBytes(b.resolve("model.safetensors")));
        try (SafetensorsFile f = SafetensorsFile.open(a.resolve("model.safetensors"))) {
            assertEquals(2 + 2 * 14 + 2, f.tensors().size());
            TensorInfo w = f.tensors().get("transformer.h.1.mlp.c_fc.weight");
            assertArrayEquals(new long[] {128, 341}, w.shape());
            double sum = 0;
            double sq = 0;
            int zeros = 0;
            long n = w.elementCount();
            for (long i = 0; i < n; i++) {
                float v = Float.intBitsToFloat((w.data().getAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, i) & 0xffff) << 16);
                sum += v;
                sq += v * v;
                zeros += v == 0 ? 1 : 0;
            }
            double mean = sum / n;
            double std = Math.sqrt(sq / n - mean * mean);
            assertEquals(0.0, mean, 1e-3);
            assertEquals(0.02, std, 1e-3, "GPT-2-like initialisation scale");
            assertTrue(zeros < n / 1000, zeros + " zeros");
            TensorInfo slopes = f.tensors().get("transformer.relative_pe.slopes");
            assertEquals(0.83984375f, Float.intBitsToFloat((slopes.data().get(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 0) & 0xffff) << 16),
                    "the bf16 slopes HF stores");
        }
        try (BtlmModel m = BtlmModel.load(a)) {
            assertEquals(SMALL, m.config());
            assertEquals(4, m.generate(new int[] {1, 2}, GenerationParams.defaults().withMaxNewTokens(4).withIgnoreEos(true))
                    .tokenIds().length);
        }
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertEquals((short) 0x3F80, org.btlm4j.tensor.Quantizer.toBf16(1.0f));
        assertEquals((short) 0x3F80, org.btlm4j.tensor.Quantizer.toBf16(Float.intBitsToFloat(0x3F808000))); // tie → even
        assertEquals((short) 0x3F82, org.btlm4j.tensor.Quantizer.toBf16(Float.intBitsToFloat(0x3F818000))); // tie → even (up)
        assertEquals((short) 0x3F81, org.btlm4j.tensor.Quantizer.toBf16(Float.intBitsToFloat(0x3F80C000)));
    }

    @Test
    void flopsPerTokenOfBtlm3bIsTwicePerWeight() {
        // 2 × (32 layers × 78,640,640 matrix weights + 50257 × 2560 head)
        assertEquals(2L * (32L * (2560L * 7680 + 2560L * 2560 + 2L * 2560 * 6826 + 6826L * 2560) + 50257L * 2560),
                Bench.flopsPerToken(BtlmConfig.btlm3b8k()));
    }
}
