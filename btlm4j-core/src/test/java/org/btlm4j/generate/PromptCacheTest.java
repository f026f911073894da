package org.btlm4j.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import org.btlm4j.Fixtures;
import org.btlm4j.GenerationParams;
import org.btlm4j.GenerationResult;
import org.btlm4j.model.KvCache;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The prompt cache: a shared prefix is not computed again, in one process or through a file, and nothing changes. */
class PromptCacheTest {
    private static final GenerationParams FIVE = GenerationParams.defaults().withMaxNewTokens(5).withIgnoreEos(true);

    private static BtlmModel demo(KvCache.Type type) {
        return BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0, true, type));
    }

    private static int common(int[] a, int[] b) {
        int i = 0;
        while (i < a.length && i < b.length && a[i] == b[i]) {
            i++;
        }
        return i;
    }

    @Test
    void aSharedPrefixIsNotRecomputedAndResultsAreIdentical() {
        try (BtlmModel reuse = demo(KvCache.Type.F32); BtlmModel fresh = demo(KvCache.Type.F32)) {
            fresh.setPromptReuse(false);
            int[] a = reuse.tokenizer().encode("In the beginning God created the heaven and the earth. And the earth");
            int[] b = reuse.tokenizer().encode("In the beginning God created the heaven and the earth. And God said");
            GenerationResult first = reuse.generate(a, FIVE);
            assertArrayEquals(fresh.generate(a, FIVE).tokenIds(), first.tokenIds());
            // cached now: a and the first four new tokens (the fifth was sampled, never run)
            int[] cached = Arrays.copyOf(a, a.length + 4);
            System.arraycopy(first.tokenIds(), 0, cached, a.length, 4);
            long before = reuse.forwardedTokens();
            GenerationResult second = reuse.generate(b, FIVE);
            long run = reuse.forwardedTokens() - before;
            int shared = Math.min(common(cached, b), b.length - 1);
            assertTrue(shared > 10, "the prompts share " + shared + " tokens");
            assertEquals(b.length - shared + 4, run, "prompt tokens after the shared prefix, then 4 decode steps");
            assertArrayEquals(fresh.generate(b, FIVE).tokenIds(), second.tokenIds());
            // the same prompt again: only its last token runs
            before = reuse.forwardedTokens();
            assertArrayEquals(second.tokenIds(), reuse.generate(b, FIVE).tokenIds());
            assertEquals(1 + 4, reuse.forwardedTokens() - before);
        }
    }

    @Test
    void continuationsAfterOneContextScoreAsFromScratch() {
        try (BtlmModel reuse = demo(KvCache.Type.F32); BtlmModel fresh = demo(KvCache.Type.F32)) {
            fresh.setPromptReuse(false);
            int[] ctx = reuse.tokenizer().encode("And God said, Let there be light: and there was");
            for (String cont : new String[] {" light.", " darkness upon the deep.", " nothing at all"}) {
                int[] c = reuse.tokenizer().encode(cont);
                int[] ids = Arrays.copyOf(ctx, ctx.length + c.length);
                System.arraycopy(c, 0, ids, ctx.length, c.length);
                long before = reuse.forwardedTokens();
                double[] got = reuse.scoreContinuation(ids, ctx.length).tokenLogprobs();
                long run = reuse.forwardedTokens() - before;
                double[] all = fresh.score(ids).tokenLogprobs();
                assertArrayEquals(Arrays.copyOfRange(all, ctx.length, ids.length), got, 1e-5, cont);
                // the same logits either way, up to float rounding: a reused prefix means fewer rows per
                // product, and products of 2..12 rows sum in another order than longer ones
                assertArrayEquals(got, fresh.scoreContinuation(ids, ctx.length).tokenLogprobs(), 1e-5, cont);
                if (!cont.equals(" light.")) {
                    assertEquals(c.length + 1, run, "the context's last token and the continuation");
                }
            }
        }
    }

    @Test
    void positionsComputedWithAnotherAlibiScalingAreNotReused() {
        // btlm-tiny: n_positions 256; past it dynamic scaling gives each call length its own c
        try (BtlmModel m = BtlmModel.load(Fixtures.tiny(), new BtlmModel.Options(1, 1024, true, KvCache.Type.F32,
                "dynamic")); BtlmModel fresh = BtlmModel.load(Fixtures.tiny(), new BtlmModel.Options(1, 1024, true,
                KvCache.Type.F32, "dynamic"))) {
            fresh.setPromptReuse(false);
            int[] ids = new Random(1).ints(500, 0, 50000).toArray();
            int[] first = Arrays.copyOf(ids, 300);
            m.scoreContinuation(first, 299);
            long before = m.forwardedTokens();
            double[] got = m.scoreContinuation(ids, 400).tokenLogprobs();
            assertEquals(500, m.forwardedTokens() - before, "c = 300/256 before, 500/256 now: all recomputed");
            assertArrayEquals(fresh.scoreContinuation(ids, 400).tokenLogprobs(), got);
            // within the trained length c is 1 and the prefix is reused
            int[] shortIds = Arrays.copyOf(ids, 200);
            m.scoreContinuation(Arrays.copyOf(ids, 150), 149);
            before = m.forwardedTokens();
            m.scoreContinuation(shortIds, 180);
            assertEquals(200 - 150, m.forwardedTokens() - before, "all 150 cached positions reused");
        }
    }

    @Test
    void aPromptStateKeepsOnlyTheSharedPrefixComputedWithTheSameScaling() {
        try (BtlmModel m = demo(KvCache.Type.F32)) {
            KvCache cache = new KvCache(m.config(), 64);
            PromptState s = new PromptState(cache);
            cache.fillRandomForBenchmark(30, 7);
            int[] ids = new Random(3).ints(30, 0, 1000).toArray();
            s.record(0, ids, 0, 20, 1f);
            s.record(20, ids, 20, 10, 1.5f);
            int[] other = ids.clone();
            other[10] = ids[10] + 1;
            assertEquals(20, s.commonPrefix(ids, 30, 1f), "positions from 20 on have another scaling");
            assertEquals(12, s.commonPrefix(ids, 12, 1f), "at most the limit");
            assertEquals(0, s.commonPrefix(ids, 30, 2f));
            assertEquals(0, s.commonPrefix(ids, 30, 1.5f), "the first positions have another scaling");
            assertEquals(10, s.commonPrefix(other, 30, 1f), "the tokens differ at 10");
            assertEquals(20, s.keepCommonPrefix(ids, 30, 1f));
            assertEquals(20, cache.length(), "the rest is dropped");
            assertArrayEquals(Arrays.copyOf(ids, 20), s.tokens());
            assertEquals(10, s.keepCommonPrefix(other, 30, 1f));
            assertEquals(10, cache.length());
        }
    }

    @Test
    void aSavedPromptIsRestoredInAnotherModelInstance(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("prompt.kv");
        for (KvCache.Type type : KvCache.Type.values()) {
            int[] prompt;
            try (BtlmModel m = demo(type)) {
                prompt = m.tokenizer().encode("In the beginning God created the heaven and the earth. And the earth "
                        + "was without form, and void; and darkness was upon the face of the deep.");
                m.generator().prime(prompt);
                m.savePromptCache(file);
            }
            try (BtlmModel restored = demo(type); BtlmModel fresh = demo(type)) {
                assertEquals(prompt.length, restored.loadPromptCache(file));
                long before = restored.forwardedTokens();
                GenerationResult r = restored.generate(prompt, FIVE);
                assertEquals(1 + 4, restored.forwardedTokens() - before, type + ": only the last prompt token ran");
                fresh.setPromptReuse(false);
                assertArrayEquals(fresh.generate(prompt, FIVE).tokenIds(), r.tokenIds(), type.name());
                int[] ids = Arrays.copyOf(prompt, prompt.length);
                assertArrayEquals(fresh.score(ids).tokenLogprobs(), restored.score(ids).tokenLogprobs(), 1e-5);
            }
        }
    }

    @Test
    void mismatchedOrDamagedFilesAreRefusedClearly(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("prompt.kv");
        try (BtlmModel m = demo(KvCache.Type.F32)) {
            m.generator().prime(m.tokenizer().encode("And God said, Let there be light"));
            m.savePromptCache(file);
        }
        try (BtlmModel tiny = BtlmModel.load(Fixtures.tiny(), new BtlmModel.Options(1, 0))) {
            assertTrue(message(() -> tiny.loadPromptCache(file)).contains("another model config"));
        }
        try (BtlmModel half = demo(KvCache.Type.F16)) {
            assertTrue(message(() -> half.loadPromptCache(file)).contains("holds a F32 KV cache; this run uses F16"));
        }
        byte[] bytes = Files.readAllBytes(file);
        try (BtlmModel m = demo(KvCache.Type.F32)) {
            Path cut = dir.resolve("cut.kv");
            Files.write(cut, Arrays.copyOf(bytes, bytes.length - 100));
            assertTrue(message(() -> m.loadPromptCache(cut)).contains("(truncated)"));
            Path unknown = dir.resolve("unknown.kv");
            String text = new String(bytes, StandardCharsets.ISO_8859_1).replace("kv_type=F32", "kv_type=Q7X");
            Files.write(unknown, text.getBytes(StandardCharsets.ISO_8859_1));
            assertTrue(message(() -> m.loadPromptCache(unknown)).contains("KV cache type Q7X is not known"));
            Path version = dir.resolve("version.kv");
            byte[] v = bytes.clone();
            v[8] = 9;
            Files.write(version, v);
            assertTrue(message(() -> m.loadPromptCache(version)).contains("format version 9"));
            Path other = dir.resolve("other.kv");
            Files.writeString(other, "hello");
            assertTrue(message(() -> m.loadPromptCache(other)).contains("truncated")
                    || message(() -> m.loadPromptCache(other)).contains("not a btlm4j prompt cache"));
            assertTrue(message(() -> m.loadPromptCache(dir.resolve("none.kv"))).contains("file not found"));
        }
    }

    private static String message(org.junit.jupiter.api.function.Executable e) {
        return assertThrows(BtlmException.class, e).getMessage();
    }
}
