package org.btlm4j.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import org.btlm4j.Fixtures;
import org.junit.jupiter.api.Test;

class PerplexityTest {
    @Test
    void aTextThatFitsIsOneScoreCall() {
        try (BtlmModel m = BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0))) {
            int[] ids = m.tokenizer().encode("In the beginning God created the heaven and the earth. And the earth was"
                    + " without form, and void; and darkness was upon the face of the deep.");
            Perplexity.Result r = m.perplexity(ids, 0, 0);
            double[] lp = m.score(ids).tokenLogprobs();
            double nll = 0;
            for (int t = 1; t < lp.length; t++) {
                nll -= lp[t];
            }
            assertEquals(ids.length - 1, r.tokens());
            assertEquals(1, r.windows());
            assertEquals(nll, r.nll(), 1e-9);
            assertEquals(Math.exp(nll / (ids.length - 1)), r.perplexity(), 1e-9);
        }
    }

    @Test
    void slidingWindowsScoreEveryTokenOnceWithTheMostContext() {
        try (BtlmModel m = BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0))) {
            int[] ids = new Random(9).ints(100, 0, 50000).toArray();
            // window 40, stride 25: windows [0,40) [25,65) [50,90) [75,100)
            Perplexity.Result r = m.perplexity(ids, 40, 25);
            double nll = 0;
            double[] w0 = m.score(java.util.Arrays.copyOfRange(ids, 0, 40)).tokenLogprobs();
            for (int t = 1; t < 40; t++) {
                nll -= w0[t]; // tokens 1..39
            }
            int[][] later = {{25, 65}, {50, 90}, {75, 100}};
            int prevEnd = 40;
            for (int[] w : later) {
                double[] lp = m.score(java.util.Arrays.copyOfRange(ids, w[0], w[1])).tokenLogprobs();
                for (int t = prevEnd; t < w[1]; t++) {
                    nll -= lp[t - w[0]]; // each new token, with the window's context before it
                }
                prevEnd = w[1];
            }
            assertEquals(99, r.tokens());
            assertEquals(4, r.windows());
            assertEquals(nll, r.nll(), 1e-9);
        }
    }

    @Test
    void bucketsSplitTheTokensByTheirPositionInTheWindow() {
        try (BtlmModel m = BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0))) {
            int[] ids = new Random(5).ints(100, 0, 50000).toArray();
            // window 40, stride 25, buckets of 16 positions: 0–16, 16–32, 32–40
            Perplexity.Result r = m.perplexity(ids, 40, 25, 16);
            double[] nll = new double[3];
            long[] count = new long[3];
            int[][] windows = {{0, 40}, {25, 65}, {50, 90}, {75, 100}};
            int prevEnd = 1;
            for (int[] w : windows) {
                double[] lp = m.score(java.util.Arrays.copyOfRange(ids, w[0], w[1])).tokenLogprobs();
                for (int t = Math.max(prevEnd, w[0] + 1); t < w[1]; t++) {
                    int position = t - w[0];
                    nll[position / 16] -= lp[position];
                    count[position / 16]++;
                }
                prevEnd = w[1];
            }
            assertEquals(3, r.buckets().size());
            long total = 0;
            for (int b = 0; b < 3; b++) {
                Perplexity.Bucket got = r.buckets().get(b);
                assertEquals(b * 16, got.from());
                assertEquals(Math.min(40, b * 16 + 16), got.to());
                assertEquals(count[b], got.tokens(), "bucket " + b);
                assertEquals(nll[b], got.nll(), 1e-9, "bucket " + b);
                assertEquals(Math.exp(nll[b] / count[b]), got.perplexity(), 1e-9);
                total += got.tokens();
            }
            assertEquals(r.tokens(), total);
            // 0–16 holds positions 1..15 of the first window and position 15 (its first new token) of each later one
            assertEquals(15 + 3, r.buckets().get(0).tokens());
        }
    }

    @Test
    void perplexityPastTheTrainedContextWithScaledAlibiBuckets() {
        // btlm-tiny has n_positions 256; 16,384 positions with dynamic ALiBi scaling
        try (BtlmModel m = BtlmModel.load(Fixtures.tiny(), new BtlmModel.Options(2, 16384, true,
                org.btlm4j.model.KvCache.Type.F32, "dynamic"))) {
            int[] ids = new Random(3).ints(16384, 0, 50000).toArray();
            Perplexity.Result r = m.perplexity(ids, 0, 0, 4096);
            assertEquals(16383, r.tokens());
            assertEquals(1, r.windows());
            assertEquals(4, r.buckets().size());
            double[] lp = m.score(ids).tokenLogprobs();
            for (int b = 0; b < 4; b++) {
                double nll = 0;
                for (int t = Math.max(1, b * 4096); t < (b + 1) * 4096; t++) {
                    nll -= lp[t];
                }
                assertEquals(nll, r.buckets().get(b).nll(), 1e-9 * Math.abs(nll), "bucket " + b);
            }
        }
    }

    @Test
    void badWindowsAreRefused() {
        try (BtlmModel m = BtlmModel.load(Fixtures.tiny(), new BtlmModel.Options(1, 0))) {
            int[] ids = {1, 2, 3};
            assertThrows(BtlmException.class, () -> m.perplexity(ids, 1000, 0));
            assertThrows(BtlmException.class, () -> m.perplexity(ids, 10, 11));
            assertThrows(BtlmException.class, () -> m.perplexity(new int[] {1}, 10, 5));
        }
    }
}
