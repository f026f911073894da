package org.btlm4j.model;

import org.btlm4j.BtlmException;
import org.btlm4j.checkpoint.DType;
import org.btlm4j.tensor.BlockVectors;
import org.btlm4j.tensor.HalfVectors;
import org.btlm4j.tensor.Parallel;
import org.btlm4j.tensor.VectorMath;

/**
 * The BTLM forward pass, step by step as spec section 4 writes it. One instance is immutable and
 * may serve many {@link KvCache}s; the work of each step is spread over the shared {@link Parallel}
 * pool.
 */
public final class Btlm {
    private final BtlmConfig config;
    private final BtlmWeights weights;
    private final Parallel pool;

    public Btlm(BtlmConfig config, BtlmWeights weights, Parallel pool) {
        this.config = config;
        this.weights = weights;
        this.pool = pool;
    }

    public BtlmConfig config() {
        return config;
    }

    public BtlmWeights weights() {
        return weights;
    }

    /**
     * Runs {@code count} tokens from {@code tokens[from]} after the {@code P = cache.length()}
     * cached positions, appends their keys and values to the cache, and returns their final hidden
     * states after {@code ln_f}, [count, n_embd].
     *
     * @param scaleKeyLength the total key length K whose ALiBi scaling c this call uses: P + count
     *                       for a call of its own; the whole prompt's length when a prompt is fed in
     *                       chunks, so that they together behave as HF's one call
     */
    public float[] forward(int[] tokens, int from, int count, KvCache cache, int scaleKeyLength) {
        if (count <= 0) {
            throw new IllegalArgumentException("forward needs at least one token");
        }
        return run(tokens, from, new int[] {count}, new KvCache[] {cache}, new int[] {scaleKeyLength});
    }

    /**
     * One forward step over several sequences at once: sequence s contributes {@code counts[s]}
     * tokens (taken in order from {@code tokens}) after the {@code caches[s].length()} positions it
     * has cached. The linear layers run over all rows together, so each weight is read once per
     * step however many sequences share it; keys, values and attention stay per sequence. Returns
     * the hidden states after {@code ln_f}, [Σ counts, n_embd], rows in the order of the sequences.
     * Each sequence's rows equal what {@link #forward} would give for them alone.
     *
     * @param scaleKeyLengths per sequence, the key length its ALiBi scaling uses (see {@link #forward})
     */
    public float[] forwardBatch(int[] tokens, int[] counts, KvCache[] caches, int[] scaleKeyLengths) {
        return run(tokens, 0, counts, caches, scaleKeyLengths);
    }

    /** {@link #forwardBatch} over the tokens from {@code tokens[from]}. */
    private float[] run(int[] tokens, int from, int[] counts, KvCache[] caches, int[] scaleKeyLengths) {
        final int e = config.nEmbd();
        final int b = counts.length;
        if (caches.length != b || scaleKeyLengths.length != b) {
            throw new IllegalArgumentException("counts, caches and scale lengths must have one entry per sequence");
        }
        int nt = 0;
        for (int s = 0; s < b; s++) {
            if (counts[s] <= 0) {
                throw new IllegalArgumentException("forwardBatch needs at least one token per sequence");
            }
            nt += counts[s];
        }
        if (tokens.length - from < nt) {
            throw new IllegalArgumentException((tokens.length - from) + " tokens given for " + nt + " rows");
        }
        for (int t = 0; t < nt; t++) {
            int id = tokens[from + t];
            if (id < 0 || id >= config.vocabSize()) {
                throw new BtlmException("token id " + id + " is outside the vocabulary (0.." + (config.vocabSize() - 1) + ")");
            }
        }
        int[] first = new int[b]; // first row of each sequence
        int[] p = new int[b];
        float[] c = new float[b];
        for (int s = 0, row = 0; s < b; row += counts[s], s++) {
            first[s] = row;
            p[s] = caches[s].length();
            if (config.positionEmbedding() == BtlmConfig.PositionEmbedding.LEARNED && p[s] + counts[s] > config.nPositions()) {
                throw new BtlmException("learned position embeddings cover " + config.nPositions() + " positions; "
                        + (p[s] + counts[s]) + " requested");
            }
            c[s] = Alibi.scale(config.alibiScaling(), scaleKeyLengths[s]);
        }
        for (int s = 0; s < b; s++) {
            caches[s].reserve(counts[s]);
        }

        // x_i = wte[t_i] · s_emb, or (wte[t_i] + wpe[P_s+i]) · s_emb, row by row of each sequence
        float[] x = new float[nt * e];
        float[] pos = weights.wpe() != null ? new float[e] : null;
        for (int s = 0; s < b; s++) {
            for (int i = 0; i < counts[s]; i++) {
                int t = first[s] + i;
                weights.wte().row(tokens[from + t], x, t * e);
                if (pos != null) {
                    weights.wpe().row(p[s] + i, pos, 0);
                    VectorMath.addInPlace(x, t * e, pos, 0, e);
                }
                VectorMath.scale(x, t * e, e, config.embeddingsScale());
            }
        }

        float[] a = new float[nt * e];
        float[] qkv = new float[nt * 3 * e];
        float[] attn = new float[nt * e];
        float[] proj = new float[nt * e];
        float[] up = new float[nt * config.nInner()];
        float[] gate = config.activation() == BtlmConfig.Activation.SWIGLU ? new float[nt * config.nInner()] : null;

        for (int l = 0; l < config.nLayer(); l++) {
            BtlmWeights.Layer w = weights.layer(l);
            // a = LayerNorm(x; ln_1); [q|k|v] = a·c_attn.W + c_attn.b
            layerNormRows(x, nt, w.ln1Weight(), w.ln1Bias(), a);
            linear(w.cAttn(), w.cAttnBias(), a, nt, qkv);
            for (int s = 0; s < b; s++) {
                // attention sees one sequence: its own rows of qkv, its own cache
                float[] seqQkv = b == 1 ? qkv : java.util.Arrays.copyOfRange(qkv, first[s] * 3 * e, (first[s] + counts[s]) * 3 * e);
                float[] seqOut = b == 1 ? attn : new float[counts[s] * e];
                storeKeysValues(caches[s], l, seqQkv, counts[s], p[s]);
                attention(caches[s], l, seqQkv, counts[s], p[s], c[s], seqOut);
                if (b != 1) {
                    System.arraycopy(seqOut, 0, attn, first[s] * e, counts[s] * e);
                }
            }
            // x += concat_h(o_h)·attn.c_proj.W + attn.c_proj.b
            linear(w.attnCProj(), w.attnCProjBias(), attn, nt, proj);
            VectorMath.addInPlace(x, 0, proj, 0, nt * e);
            // b = LayerNorm(x; ln_2); x += ((b·c_fc.W + c_fc.b) ⊙ silu(b·c_fc2.W + c_fc2.b))·mlp.c_proj.W + b
            layerNormRows(x, nt, w.ln2Weight(), w.ln2Bias(), a);
            linear(w.cFc(), w.cFcBias(), a, nt, up);
            if (gate != null) {
                linear(w.cFc2(), w.cFc2Bias(), a, nt, gate);
                VectorMath.swiglu(up, gate, up, nt * config.nInner());
            } else {
                VectorMath.geluTanh(up, 0, nt * config.nInner());
            }
            linear(w.mlpCProj(), w.mlpCProjBias(), up, nt, proj);
            VectorMath.addInPlace(x, 0, proj, 0, nt * e);
        }
        for (int s = 0; s < b; s++) {
            caches[s].advance(counts[s]);
        }

        layerNormRows(x, nt, weights.lnFWeight(), weights.lnFBias(), a);
        return a;
    }

    /**
     * logits = (LayerNorm(x; ln_f) · lm_headᵀ) · s_out for {@code rows} rows of {@code hidden}
     * starting at {@code row}; {@code out} receives [rows, vocab].
     */
    public void logits(float[] hidden, int row, int rows, float[] out) {
        int e = config.nEmbd();
        float[] x = hidden;
        if (row != 0) {
            x = new float[rows * e];
            System.arraycopy(hidden, row * e, x, 0, rows * e);
        }
        weights.lmHead().multiplyTransposed(pool, x, rows, out);
        VectorMath.scale(out, 0, rows * config.vocabSize(), config.outputScale());
    }

    private void layerNormRows(float[] x, int nt, float[] weight, float[] bias, float[] out) {
        int e = config.nEmbd();
        for (int t = 0; t < nt; t++) {
            VectorMath.layerNorm(x, t * e, e, weight, bias, config.layerNormEpsilon(), out, t * e);
        }
    }

    private void linear(Linear w, float[] bias, float[] in, int nt, float[] out) {
        w.apply(pool, in, nt, out);
        VectorMath.addBias(out, nt, w.out(), bias);
    }

    private void storeKeysValues(KvCache cache, int layer, float[] qkv, int nt, int p) {
        int e = config.nEmbd();
        int d = config.headDim();
        for (int t = 0; t < nt; t++) {
            for (int h = 0; h < config.nHead(); h++) {
                cache.store(layer, h, p + t, qkv, t * 3 * e + e + h * d, qkv, t * 3 * e + 2 * e + h * d);
            }
        }
    }

    /**
     * o_hi = Σ_j softmax_j(s_hij) · v_hj with
     * s_hij = (q_hi · k_hj) / d^p − (m_h / c)·(i − j) for j ≤ i (causal).
     *
     * <p>The cache is transposed ({@link KvCache}): the scores of a query are accumulated one head
     * dimension at a time over a contiguous run of keys, and each output element is one dot product
     * over a contiguous run of values.
     */
    private void attention(KvCache cache, int layer, float[] qkv, int nt, int p, float c, float[] out) {
        final int e = config.nEmbd();
        final int d = config.headDim();
        final int nHead = config.nHead();
        float qkScale = 1f;
        if (config.scaleAttnWeights()) {
            qkScale = config.scaleQkDotByD() ? 1f / d : (float) (1.0 / Math.sqrt(d));
        }
        if (config.scaleAttnByInverseLayerIdx()) {
            qkScale /= (layer + 1);
        }
        final float scale = qkScale;
        final float[] slopes = weights.slopesUnsafe();
        final KvCache.Type type = cache.type();
        final DType blocks = type.blockType();
        final float[] keys = cache.keys(layer);
        final float[] values = cache.values(layer);
        final short[] halfKeys = cache.halfKeys(layer);
        final short[] halfValues = cache.halfValues(layer);
        final byte[] blockKeys = cache.blockKeys(layer);
        final byte[] blockValues = cache.blockValues(layer);
        final float[] tailKeys = cache.tailKeys(layer);
        final float[] tailValues = cache.tailValues(layer);
        final int blockStride = blocks == null ? 0 : cache.blockRow(0, 1); // bytes between two dimensions' blocks
        final int quantized = KvCache.quantizedLength(p + nt); // this layer has stored p + nt positions
        pool.forRange(nt * nHead, (from, to) -> {
            float[] scores = new float[p + nt];
            for (int item = from; item < to; item++) {
                int t = item / nHead;
                int h = item % nHead;
                int i = p + t; // absolute position of the query
                int n = i + 1; // keys 0..i
                int nq = Math.min(n, quantized); // quantized types: keys [0, nq) in blocks, [nq, n) in the tail
                int qOff = t * 3 * e + h * d;
                java.util.Arrays.fill(scores, 0, n, 0f);
                if (blocks != null) { // whole blocks four dimensions per pass over the scores, then the tail
                    int k = 0;
                    for (; k + BlockVectors.GROUP <= d; k += BlockVectors.GROUP) {
                        BlockVectors.axpy4(blocks, qkv, qOff + k, blockKeys, cache.blockRow(h, k), blockStride,
                                scores, 0, nq);
                    }
                    for (; k < d; k++) {
                        BlockVectors.axpy(blocks, qkv[qOff + k], blockKeys, cache.blockRow(h, k), scores, 0, nq);
                    }
                    for (k = 0; k < d; k++) {
                        VectorMath.axpy(qkv[qOff + k], tailKeys, cache.tailRow(h, k), scores, nq, n - nq);
                    }
                } else {
                    for (int k = 0; k < d; k++) {
                        if (type == KvCache.Type.F32) {
                            VectorMath.axpy(qkv[qOff + k], keys, cache.row(h, k), scores, 0, n);
                        } else {
                            HalfVectors.axpy(qkv[qOff + k], halfKeys, cache.row(h, k), scores, 0, n);
                        }
                    }
                }
                float m = slopes == null ? 0f : slopes[h] / c;
                for (int j = 0; j < n; j++) {
                    scores[j] = scores[j] * scale - m * (i - j);
                }
                VectorMath.softmaxInPlace(scores, 0, n);
                int oOff = t * e + h * d;
                if (blocks != null) { // whole blocks four dimensions per pass over the scores, then the tail
                    int k = 0;
                    for (; k + BlockVectors.GROUP <= d; k += BlockVectors.GROUP) {
                        BlockVectors.dot4(blocks, scores, 0, blockValues, cache.blockRow(h, k), blockStride, nq,
                                out, oOff + k);
                    }
                    for (; k < d; k++) {
                        out[oOff + k] = BlockVectors.dot(blocks, scores, 0, blockValues, cache.blockRow(h, k), nq);
                    }
                    for (k = 0; k < d; k++) {
                        out[oOff + k] += VectorMath.dot(scores, nq, tailValues, cache.tailRow(h, k), n - nq);
                    }
                } else {
                    for (int k = 0; k < d; k++) {
                        out[oOff + k] = type == KvCache.Type.F32
                                ? VectorMath.dot(scores, 0, values, cache.row(h, k), n)
                                : HalfVectors.dot(scores, 0, halfValues, cache.row(h, k), n);
                    }
                }
            }
        });
    }
}
