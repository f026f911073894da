package org.btlm4j.model;

/**
 * ALiBi slopes m_h and the scaling c of spec section 4. The bias added to head h's score of query
 * i and key j (j ≤ i) is −(m_h / c)·(i − j).
 */
public final class Alibi {
    private Alibi() {
    }

    /**
     * Slopes for {@code nHead} heads when the checkpoint stores none: 2^(−8(h+1)/n) for a power of two
     * n; otherwise those of the closest lower power of two p, then every second slope of the 2p
     * list, the first n−p of them.
     */
    public static float[] slopes(int nHead) {
        return slopes(nHead, 8);
    }

    /**
     * The same rule with the largest bias B in place of 8: 2^(−B(h+1)/p), then 2^(−B(2i+1)/(2p)).
     * GGUF's {@code attention.max_alibi_bias} is this B.
     */
    public static float[] slopes(int nHead, double maxBias) {
        int p = Integer.highestOneBit(nHead);
        float[] s = new float[nHead];
        for (int h = 0; h < p; h++) {
            s[h] = (float) Math.pow(2.0, -maxBias * (h + 1) / p);
        }
        for (int i = 0; i < nHead - p; i++) {
            // Element 2i of the 2p list: 2^(−B(2i+1)/(2p)).
            s[p + i] = (float) Math.pow(2.0, -maxBias * (2 * i + 1) / (2.0 * p));
        }
        return s;
    }

    /**
     * The largest bias B whose {@link #slopes(int, double)} are {@code slopes} (to float rounding),
     * or NaN when no B gives them.
     */
    public static double maxBias(float[] slopes) {
        int p = Integer.highestOneBit(slopes.length);
        double b = -Math.log(slopes[0]) / Math.log(2) * p;
        float[] again = slopes(slopes.length, b);
        for (int h = 0; h < slopes.length; h++) {
            if (Math.abs(again[h] - slopes[h]) > 1e-6 * Math.abs(slopes[h])) {
                return Double.NaN;
            }
        }
        return b;
    }

    /**
     * The scaling c for one forward call whose total key length (cached + new) is {@code keyLength}:
     * 1 without {@code alibi_scaling}, the factor when one is given, and keyLength / train_seq_len
     * beyond the training length with dynamic scaling.
     */
    public static float scale(BtlmConfig.AlibiScaling scaling, int keyLength) {
        return scaling == null ? 1f : scaling.scaleFor(keyLength);
    }
}
