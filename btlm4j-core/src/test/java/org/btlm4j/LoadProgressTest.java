package org.btlm4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.btlm4j.model.KvCache;
import org.junit.jupiter.api.Test;

/** Loading reports the progress of copying the weights into memory (--no-mmap), and only then. */
class LoadProgressTest {
    @Test
    void copyingTheWeightsReportsFromZeroToTheTotal() throws Exception {
        List<long[]> calls = new CopyOnWriteArrayList<>();
        GenerationParams p = GenerationParams.defaults().withMaxNewTokens(8);
        try (BtlmModel copied = BtlmModel.load(Fixtures.demo().toString(),
                new BtlmModel.Options(2, 0, false, KvCache.Type.F32), (done, total) -> calls.add(new long[] {done, total}));
                BtlmModel mapped = BtlmModel.load(Fixtures.demo())) {
            assertArrayEquals(mapped.generate("And God said", p).tokenIds(), copied.generate("And God said", p).tokenIds());
        }
        assertTrue(calls.size() >= 2, "at least the start and the end: " + calls.size());
        long total = calls.get(0)[1];
        assertEquals(0, calls.get(0)[0]);
        long max = calls.stream().mapToLong(c -> c[0]).max().orElseThrow();
        assertEquals(total, max, "the copy ends at the total");
        assertTrue(calls.stream().allMatch(c -> c[1] == total));
        // Every weight byte of the safetensors file is copied once (less its JSON header).
        long file = Files.size(Fixtures.demo().resolve("model.safetensors"));
        assertTrue(total <= file && total > file * 0.99, total + " of " + file);

        List<long[]> none = new CopyOnWriteArrayList<>();
        try (BtlmModel m = BtlmModel.load(Fixtures.demo().toString(), BtlmModel.Options.defaults(),
                (done, t) -> none.add(new long[] {done, t}))) {
            assertEquals(0, none.size(), "mapped weights are not copied");
        }
    }
}
