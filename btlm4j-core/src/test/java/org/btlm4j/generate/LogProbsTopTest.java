package org.btlm4j.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** The k most likely tokens, against a full sort. */
class LogProbsTopTest {
    @Test
    void topKEqualsAFullSortOnRandomLogits() {
        SplittableRandom r = new SplittableRandom(3);
        for (int n : new int[] {1, 5, 33, 80, 6826}) {
            for (int k : new int[] {0, 1, 2, 5, 40}) {
                float[] logits = new float[n + 3];
                for (int i = 0; i < logits.length; i++) {
                    logits[i] = (float) r.nextDouble(-8, 8);
                    if (r.nextInt(10) == 0 && i > 0) {
                        logits[i] = logits[i - 1]; // ties
                    }
                }
                int off = 3;
                int[] expected = IntStream.range(0, n).boxed()
                        .sorted(Comparator.<Integer>comparingDouble(i -> -logits[off + i]).thenComparing(i -> i))
                        .limit(k).mapToInt(Integer::intValue).toArray();
                double[] lp = new double[k];
                int[] got = LogProbs.top(logits, off, n, k, lp);
                assertArrayEquals(expected, got, "n=" + n + " k=" + k);
                for (int j = 0; j < got.length; j++) {
                    assertEquals(LogProbs.logProb(logits, off, n, got[j]), lp[j], 1e-9);
                }
            }
        }
    }
}
