package org.btlm4j.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import org.btlm4j.Fixtures;
import org.junit.jupiter.api.Test;

class KvCacheTest {

    @Test
    void growingTheCacheKeepsEveryCachedPosition() {
        try (BtlmModel model = BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0))) {
            Btlm btlm = model.forwardPass();
            int vocab = model.config().vocabSize();
            int[] ids = new Random(5).ints(300, 0, 50000).toArray();

            KvCache whole = new KvCache(model.config(), 512);
            float[] expected = new float[vocab];
            btlm.logits(btlm.forward(ids, 0, 300, whole, 300), 299, 1, expected);

            // 200 tokens fit the first chunk of 256 positions; the next 100, one at a time, grow it.
            KvCache grown = new KvCache(model.config(), 512);
            btlm.forward(ids, 0, 200, grown, 200);
            assertEquals(256, grown.capacity());
            float[] last = new float[vocab];
            for (int t = 200; t < 300; t++) {
                btlm.logits(btlm.forward(ids, t, 1, grown, t + 1), 0, 1, last);
            }
            assertEquals(512, grown.capacity());
            double max = 0;
            for (int v = 0; v < vocab; v++) {
                max = Math.max(max, Math.abs(expected[v] - last[v]));
            }
            // Same arithmetic in another blocking: float32 rounding only.
            assertTrue(max < 1e-4, "logits after growth differ by " + max);
        }
    }

    @Test
    void refusesMoreThanItsContext() {
        try (BtlmModel model = BtlmModel.load(Fixtures.tiny(), new BtlmModel.Options(1, 0))) {
            KvCache cache = new KvCache(model.config(), 8);
            int[] ids = new int[9];
            String msg = assertThrows(BtlmException.class,
                    () -> model.forwardPass().forward(ids, 0, 9, cache, 9)).getMessage();
            assertTrue(msg.contains("exceed the 8-token context"), msg);
            assertEquals(0, cache.length(), "a refused call leaves the cache as it was");
        }
    }

    @Test
    void truncateKeepsAPrefixReusable() {
        try (BtlmModel model = BtlmModel.load(Fixtures.tiny(), new BtlmModel.Options(1, 0))) {
            Btlm btlm = model.forwardPass();
            int vocab = model.config().vocabSize();
            int[] a = {10, 20, 30, 40, 50};
            int[] b = {10, 20, 30, 99, 98};
            KvCache cache = new KvCache(model.config(), 64);
            btlm.forward(a, 0, 5, cache, 5);
            cache.truncate(3);
            float[] reused = new float[vocab];
            btlm.logits(btlm.forward(b, 3, 2, cache, 5), 1, 1, reused);
            float[] fresh = new float[vocab];
            btlm.logits(btlm.forward(b, 0, 5, new KvCache(model.config(), 64), 5), 4, 1, fresh);
            for (int v = 0; v < vocab; v++) {
                assertEquals(fresh[v], reused[v], 1e-4);
            }
        }
    }
}
