package org.btlm4j.model;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.btlm4j.checkpoint.CheckpointException;
import org.btlm4j.checkpoint.DType;
import org.btlm4j.checkpoint.TensorInfo;
import org.btlm4j.checkpoint.TensorSource;
import org.btlm4j.tensor.WeightMatrix;

/**
 * The weights of a BTLM, by the checkpoint's own names (spec section 3), checked against the
 * config. Matrices stay views of the mapped file in their stored type; the small vectors (biases,
 * layer norms, slopes) are read into float arrays.
 */
public final class BtlmWeights {

    /** One transformer block: {@code transformer.h.N.*}. */
    public record Layer(
            float[] ln1Weight, float[] ln1Bias,
            Linear cAttn, float[] cAttnBias, // n_embd → 3·n_embd: output [q | k | v]
            Linear attnCProj, float[] attnCProjBias, // n_embd → n_embd
            float[] ln2Weight, float[] ln2Bias,
            Linear cFc, float[] cFcBias, // n_embd → n_inner
            Linear cFc2, float[] cFc2Bias, // n_embd → n_inner, the SiLU branch (null with gelu_new)
            Linear mlpCProj, float[] mlpCProjBias) { // n_inner → n_embd
    }

    /** How the source description of a slopes tensor made from other data begins. */
    public static final String COMPUTED = "computed from";

    private final WeightMatrix wte; // [vocab, n_embd]
    private final WeightMatrix wpe; // [n_positions, n_embd] with learned positions, else null
    private final WeightMatrix lmHead; // [vocab, n_embd]: wte itself unless untied
    private final float[] slopes; // [n_head] with ALiBi, else null
    private final String slopesOrigin;
    private final Layer[] layers;
    private final float[] lnFWeight;
    private final float[] lnFBias;
    private final DType dtype;
    private final long bytes;
    private final List<TensorInfo> tensors;

    private BtlmWeights(WeightMatrix wte, WeightMatrix wpe, WeightMatrix lmHead, float[] slopes, String slopesOrigin,
            Layer[] layers, float[] lnFWeight, float[] lnFBias, DType dtype, long bytes, List<TensorInfo> tensors) {
        this.wte = wte;
        this.wpe = wpe;
        this.lmHead = lmHead;
        this.slopes = slopes;
        this.slopesOrigin = slopesOrigin;
        this.layers = layers;
        this.lnFWeight = lnFWeight;
        this.lnFBias = lnFBias;
        this.dtype = dtype;
        this.bytes = bytes;
        this.tensors = List.copyOf(tensors);
    }

    /** Binds and checks every tensor of an HF checkpoint (Conv1D [in, out] linear weights). */
    public static BtlmWeights bind(BtlmConfig config, TensorSource source) {
        return bind(config, source, false);
    }

    /**
     * Binds and checks every tensor the config calls for; extra tensors are ignored.
     *
     * @param linearOutIn whether linear weights are stored [out, in] (btlm4j's GGUF files) instead
     *                    of GPT-2's Conv1D [in, out]
     */
    public static BtlmWeights bind(BtlmConfig config, TensorSource source, boolean linearOutIn) {
        Binder b = new Binder(source, linearOutIn);
        int e = config.nEmbd();
        int inner = config.nInner();
        WeightMatrix wte = b.matrix("transformer.wte.weight", config.vocabSize(), e);
        WeightMatrix wpe = config.positionEmbedding() == BtlmConfig.PositionEmbedding.LEARNED
                ? b.matrix("transformer.wpe.weight", config.nPositions(), e) : null;
        float[] slopes = null;
        String origin = null;
        if (config.usesAlibi()) {
            TensorInfo s = source.tensors().get("transformer.relative_pe.slopes");
            if (s != null) {
                slopes = b.vector("transformer.relative_pe.slopes", config.nHead());
                origin = s.source().startsWith(COMPUTED) ? s.source() : "stored in the checkpoint";
            } else {
                slopes = Alibi.slopes(config.nHead());
                origin = COMPUTED + " n_head";
            }
        }
        // grown as the layers are found, so that a config claiming 2^31 layers finds the missing
        // tensor instead of allocating the array first
        List<Layer> layers = new ArrayList<>();
        for (int l = 0; l < config.nLayer(); l++) {
            String p = "transformer.h." + l + ".";
            boolean swiglu = config.activation() == BtlmConfig.Activation.SWIGLU;
            layers.add(new Layer(
                    b.vector(p + "ln_1.weight", e), b.vector(p + "ln_1.bias", e),
                    b.linear(p + "attn.c_attn.weight", e, 3 * e), b.vector(p + "attn.c_attn.bias", 3 * e),
                    b.linear(p + "attn.c_proj.weight", e, e), b.vector(p + "attn.c_proj.bias", e),
                    b.vector(p + "ln_2.weight", e), b.vector(p + "ln_2.bias", e),
                    b.linear(p + "mlp.c_fc.weight", e, inner), b.vector(p + "mlp.c_fc.bias", inner),
                    swiglu ? b.linear(p + "mlp.c_fc2.weight", e, inner) : null,
                    swiglu ? b.vector(p + "mlp.c_fc2.bias", inner) : null,
                    b.linear(p + "mlp.c_proj.weight", inner, e), b.vector(p + "mlp.c_proj.bias", e)));
        }
        float[] lnFW = b.vector("transformer.ln_f.weight", e);
        float[] lnFB = b.vector("transformer.ln_f.bias", e);
        // Spec section 3: the head is wte unless the config explicitly unties it.
        WeightMatrix head = config.tieWordEmbeddings() ? wte : b.matrix("lm_head.weight", config.vocabSize(), e);
        return new BtlmWeights(wte, wpe, head, slopes, origin, layers.toArray(Layer[]::new), lnFW, lnFB,
                layers.getFirst().cAttn().weight().dtype(), b.bytes, b.bound);
    }

    public WeightMatrix wte() {
        return wte;
    }

    public WeightMatrix wpe() {
        return wpe;
    }

    public WeightMatrix lmHead() {
        return lmHead;
    }

    /** ALiBi slopes m_h (stored in the checkpoint or computed), or null with learned positions. */
    public float[] slopes() {
        return slopes == null ? null : slopes.clone();
    }

    float[] slopesUnsafe() {
        return slopes;
    }

    /**
     * Where the slopes come from, for people: "stored in the checkpoint" ({@code
     * transformer.relative_pe.slopes}), "computed from n_head", or — a tensor whose source
     * description starts with {@value #COMPUTED}, as a JAIS GGUF's — that description; null with
     * learned positions.
     */
    public String slopesOrigin() {
        return slopesOrigin;
    }

    public Layer layer(int i) {
        return layers[i];
    }

    public float[] lnFWeight() {
        return lnFWeight;
    }

    public float[] lnFBias() {
        return lnFBias;
    }

    /** Stored type of the linear weights, the bulk of the model (the embedding may differ). */
    public DType dtype() {
        return dtype;
    }

    /** Bytes of weight data in use. */
    public long bytes() {
        return bytes;
    }

    /** The checkpoint tensors in use, each once, in the order they were bound. */
    public List<TensorInfo> tensors() {
        return tensors;
    }

    /** Looks tensors up by name with checks that name the tensor and the problem. */
    private static final class Binder {
        private final TensorSource source;
        private final Map<String, TensorInfo> tensors;
        private final boolean linearOutIn;
        private long bytes;
        private final List<TensorInfo> bound = new ArrayList<>();

        Binder(TensorSource source, boolean linearOutIn) {
            this.source = source;
            this.tensors = source.tensors();
            this.linearOutIn = linearOutIn;
        }

        private TensorInfo get(String name, long... shape) {
            TensorInfo t = tensors.get(name);
            if (t == null) {
                throw new CheckpointException(source.describe() + ": missing tensor " + name);
            }
            if (!t.dtype().isWeightType()) {
                throw new CheckpointException(source.describe() + ": tensor " + name + " has type " + t.dtype()
                        + " (expected F32, F16 or BF16)");
            }
            long[] s = t.shape();
            // A vector may be stored as [n] or, like the slopes, [n, 1]; a block-quantized matrix
            // may state its last dimension padded to whole blocks (GGUF requires it).
            boolean ok = Arrays.equals(s, shape)
                    || shape.length == 1 && s.length == 2 && s[0] == shape[0] && s[1] == 1
                    || t.dtype().isQuantized() && shape.length == 2 && s.length == 2 && s[0] == shape[0]
                            && s[1] == (shape[1] + t.dtype().blockSize() - 1) / t.dtype().blockSize() * t.dtype().blockSize();
            if (!ok) {
                throw new CheckpointException(source.describe() + ": tensor " + name + " has shape "
                        + t.shapeString() + ", expected " + Arrays.toString(shape) + " from config.json");
            }
            bytes += t.data().byteSize();
            bound.add(t);
            return t;
        }

        WeightMatrix matrix(String name, long rows, long cols) {
            TensorInfo t = get(name, rows, cols);
            if (t.dim(1) != cols) { // padded quantized rows: the same bytes, seen at their true width
                t = new TensorInfo(t.name(), t.dtype(), new long[] {rows, cols}, t.data(), t.source());
            }
            return WeightMatrix.of(t);
        }

        Linear linear(String name, long in, long out) {
            return linearOutIn ? new Linear(matrix(name, out, in), true) : new Linear(matrix(name, in, out), false);
        }

        float[] vector(String name, int length) {
            return toFloats(get(name, length));
        }
    }

    /** Reads a small F32/F16/BF16 tensor into floats. */
    public static float[] toFloats(TensorInfo t) {
        MemorySegment d = t.data();
        int n = Math.toIntExact(t.elementCount());
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = switch (t.dtype()) {
                case F32 -> d.getAtIndex(F32, i);
                case BF16 -> Float.intBitsToFloat((d.getAtIndex(I16, i) & 0xffff) << 16);
                case F16 -> Float.float16ToFloat(d.getAtIndex(I16, i));
                default -> throw new CheckpointException("tensor " + t.name() + ": unsupported type " + t.dtype());
            };
        }
        return out;
    }

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
}
