package org.btlm4j.tensor;

import static java.nio.ByteOrder.LITTLE_ENDIAN;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import org.btlm4j.BtlmException;
import org.btlm4j.checkpoint.TensorInfo;

/**
 * Plain scalar versions of the {@link WeightMatrix} and {@link VectorMath} kernels: element by
 * element, straight from the definitions, accumulating in double. They exist only as the oracle
 * of the tests and are far too slow for inference.
 */
public final class ReferenceKernels {

    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LITTLE_ENDIAN);

    private ReferenceKernels() {
    }

    /**
     * Element {@code i} (row-major index over the logical shape) of a F32, F16, BF16, Q8_0 or Q4_0
     * tensor as a float; the quantized types are dequantized by {@link #dequantize}.
     */
    public static float element(TensorInfo t, long i) {
        final MemorySegment d = t.data();
        return switch (t.dtype()) {
            case F32 -> d.get(FLOAT_LE, i * 4);
            case F16 -> Float.float16ToFloat(d.get(SHORT_LE, i * 2));
            case BF16 -> Float.intBitsToFloat(d.get(SHORT_LE, i * 2) << 16);
            case Q8_0, Q4_0 -> {
                final long cols = t.rank() == 0 ? 1 : t.dim(t.rank() - 1);
                final long rowBytes = (cols + 31) / 32 * t.dtype().blockBytes();
                yield dequantize(t.dtype(), d, i / cols * rowBytes, (int) (i % cols));
            }
            default -> throw new BtlmException("tensor " + t.name() + " has unsupported type " + t.dtype());
        };
    }

    /**
     * Element {@code c} of the quantized row that starts at byte {@code rowOffset} of {@code d},
     * straight from ggml's block layouts: block c/32 at rowOffset + (c/32)·blockBytes, an fp16
     * scale d (little-endian) first; Q8_0: w = d·(int8) qs[j]; Q4_0: w = d·(q − 8) with q the low
     * nibble of qs[j] for j &lt; 16 and the high nibble of qs[j − 16] otherwise (j = c mod 32).
     */
    public static float dequantize(org.btlm4j.checkpoint.DType type, MemorySegment d, long rowOffset, int c) {
        final long block = rowOffset + (long) (c / 32) * type.blockBytes();
        final int j = c % 32;
        final float scale = Float.float16ToFloat(d.get(SHORT_LE, block));
        return switch (type) {
            case Q8_0 -> scale * d.get(ValueLayout.JAVA_BYTE, block + 2 + j);
            case Q4_0 -> {
                final int b = d.get(ValueLayout.JAVA_BYTE, block + 2 + j % 16) & 0xFF;
                yield scale * ((j < 16 ? b & 0xF : b >>> 4) - 8);
            }
            default -> throw new IllegalArgumentException("not a quantized type: " + type);
        };
    }

    /** y[t][c] = Σ_r x[t][r]·W[r][c] (W [rows, cols]). */
    public static void multiply(TensorInfo w, float[] x, int n, float[] y) {
        final int rows = (int) w.dim(0);
        final int cols = (int) w.dim(1);
        final double[] acc = new double[cols];
        for (int t = 0; t < n; t++) {
            java.util.Arrays.fill(acc, 0);
            for (int r = 0; r < rows; r++) {
                final double xr = x[t * rows + r];
                for (int c = 0; c < cols; c++) {
                    acc[c] += xr * element(w, (long) r * cols + c);
                }
            }
            for (int c = 0; c < cols; c++) {
                y[t * cols + c] = (float) acc[c];
            }
        }
    }

    /**
     * Σ_r |x[t][r]·W[r][c]|, the scale of the rounding error of the float32 sum in
     * {@link #multiply}: the error bound of a sum is proportional to the sum of the magnitudes of
     * its terms, not to the (possibly cancelled) result.
     */
    public static void multiplyMagnitude(TensorInfo w, float[] x, int n, float[] y) {
        final int rows = (int) w.dim(0);
        final int cols = (int) w.dim(1);
        final double[] acc = new double[cols];
        for (int t = 0; t < n; t++) {
            java.util.Arrays.fill(acc, 0);
            for (int r = 0; r < rows; r++) {
                final double xr = Math.abs(x[t * rows + r]);
                for (int c = 0; c < cols; c++) {
                    acc[c] += xr * Math.abs(element(w, (long) r * cols + c));
                }
            }
            for (int c = 0; c < cols; c++) {
                y[t * cols + c] = (float) acc[c];
            }
        }
    }

    /** y[t][r] = Σ_c x[t][c]·W[r][c]. */
    public static void multiplyTransposed(TensorInfo w, float[] x, int n, float[] y) {
        final int rows = (int) w.dim(0);
        final int cols = (int) w.dim(1);
        for (int t = 0; t < n; t++) {
            for (int r = 0; r < rows; r++) {
                double acc = 0;
                for (int c = 0; c < cols; c++) {
                    acc += (double) x[t * cols + c] * element(w, (long) r * cols + c);
                }
                y[t * rows + r] = (float) acc;
            }
        }
    }

    /** Σ_c |x[t][c]·W[r][c]|; see {@link #multiplyMagnitude}. */
    public static void multiplyTransposedMagnitude(TensorInfo w, float[] x, int n, float[] y) {
        final int rows = (int) w.dim(0);
        final int cols = (int) w.dim(1);
        for (int t = 0; t < n; t++) {
            for (int r = 0; r < rows; r++) {
                double acc = 0;
                for (int c = 0; c < cols; c++) {
                    acc += Math.abs((double) x[t * cols + c] * element(w, (long) r * cols + c));
                }
                y[t * rows + r] = (float) acc;
            }
        }
    }

    public static void row(TensorInfo w, int r, float[] dst, int dstOffset) {
        final int cols = (int) w.dim(1);
        for (int c = 0; c < cols; c++) {
            dst[dstOffset + c] = element(w, (long) r * cols + c);
        }
    }

    public static float dot(float[] a, int aOff, float[] b, int bOff, int len) {
        double s = 0;
        for (int i = 0; i < len; i++) {
            s += (double) a[aOff + i] * b[bOff + i];
        }
        return (float) s;
    }

    public static void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int len) {
        for (int i = 0; i < len; i++) {
            y[yOff + i] = (float) (y[yOff + i] + (double) alpha * x[xOff + i]);
        }
    }

    public static void addInPlace(float[] y, int yOff, float[] x, int xOff, int len) {
        for (int i = 0; i < len; i++) {
            y[yOff + i] = (float) ((double) y[yOff + i] + x[xOff + i]);
        }
    }

    public static void scale(float[] x, int off, int len, float s) {
        for (int i = 0; i < len; i++) {
            x[off + i] = (float) ((double) x[off + i] * s);
        }
    }

    public static void addBias(float[] y, int n, int width, float[] bias) {
        for (int t = 0; t < n; t++) {
            addInPlace(y, t * width, bias, 0, width);
        }
    }

    public static void layerNorm(float[] x, int off, int len, float[] weight, float[] bias, float eps,
                                 float[] out, int outOff) {
        double mean = 0;
        for (int i = 0; i < len; i++) {
            mean += x[off + i];
        }
        mean /= len;
        double var = 0;
        for (int i = 0; i < len; i++) {
            final double d = x[off + i] - mean;
            var += d * d;
        }
        var /= len;
        final double inv = 1 / Math.sqrt(var + eps);
        for (int i = 0; i < len; i++) {
            out[outOff + i] = (float) ((x[off + i] - mean) * inv * weight[i] + bias[i]);
        }
    }

    public static void softmaxInPlace(float[] x, int off, int len) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < len; i++) {
            max = Math.max(max, x[off + i]);
        }
        final double[] e = new double[len];
        double sum = 0;
        for (int i = 0; i < len; i++) {
            e[i] = Math.exp(x[off + i] - max);
            sum += e[i];
        }
        for (int i = 0; i < len; i++) {
            x[off + i] = (float) (e[i] / sum);
        }
    }

    public static double silu(double x) {
        return x / (1 + Math.exp(-x));
    }

    public static double geluTanh(double x) {
        return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    }

    public static void silu(float[] x, int off, int len) {
        for (int i = 0; i < len; i++) {
            x[off + i] = (float) silu(x[off + i]);
        }
    }

    public static void geluTanh(float[] x, int off, int len) {
        for (int i = 0; i < len; i++) {
            x[off + i] = (float) geluTanh(x[off + i]);
        }
    }

    public static void swiglu(float[] up, int upOff, float[] gate, int gateOff, float[] out, int outOff, int len) {
        for (int i = 0; i < len; i++) {
            out[outOff + i] = (float) (up[upOff + i] * silu(gate[gateOff + i]));
        }
    }
}
