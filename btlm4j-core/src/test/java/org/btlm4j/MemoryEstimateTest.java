package org.btlm4j;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.btlm4j.model.KvCache;
import org.junit.jupiter.api.Test;

class MemoryEstimateTest {

    private static MemoryEstimate estimate(KvCache.Type kv, boolean fourBit) {
        return new MemoryEstimate(3L << 30, true, 1L << 30, 100L << 20, 384L << 20, 8192, kv, fourBit);
    }

    @Test
    void refusalSuggestsOnlyRemediesThatWouldHelp() {
        String bf16 = assertThrows(BtlmException.class, () -> estimate(KvCache.Type.F32, false).check(2L << 30,
                "of --memory-limit")).getMessage();
        assertTrue(bf16.contains("--kv-type q8_0 or q4_0"), bf16);
        assertTrue(bf16.contains("btlm quantize --type q4_0"), bf16);
        assertTrue(bf16.contains("more than the 2.0 GiB of --memory-limit"), bf16);

        String q4 = assertThrows(BtlmException.class, () -> estimate(KvCache.Type.Q4_0, true).check(2L << 30,
                "of --memory-limit")).getMessage();
        assertFalse(q4.contains("--kv-type"), q4);
        assertFalse(q4.contains("btlm quantize"), q4);
        assertTrue(q4.contains("a shorter context (-c)"), q4);
        assertTrue(q4.contains("a higher --memory-limit"), q4);
    }

    @Test
    void aRunWithinTheLimitOrWithoutOnePasses() {
        assertDoesNotThrow(() -> estimate(KvCache.Type.F32, false).check(8L << 30, "of --memory-limit"));
        assertDoesNotThrow(() -> estimate(KvCache.Type.F32, false).check(0, "of --memory-limit"));
    }
}
