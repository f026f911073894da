package org.btlm4j.tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import org.btlm4j.BtlmException;
import org.btlm4j.checkpoint.DType;
import org.btlm4j.checkpoint.TensorInfo;

/**
 * A 2-D weight [rows, cols], row-major, read in place from its (usually memory-mapped) segment
 * in the stored element type and converted to float32 inside the kernels; products accumulate in
 * float32.
 *
 * <p>The segment must be readable from the pool's worker threads (mapped with a shared or global
 * arena, not a confined one) and stay alive while the matrix is used. It need not be aligned.
 *
 * <p>Why three subclasses with textually parallel kernels rather than one kernel and a pluggable
 * loader: the Vector API only keeps vectors in registers when every call in the hot loop is
 * inlined, and a load through a virtual call that sees three receiver types is not. Each subclass
 * therefore carries its own copy of the loops, with its conversion written out at every load; the
 * copies differ only there and must be kept in step.
 *
 * <p>Instances are immutable and may be used from several threads at once.
 */
public abstract sealed class WeightMatrix permits F32Matrix, F16Matrix, BF16Matrix, BlockQuantizedMatrix {

    static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_PREFERRED;
    /** Ints with as many lanes as {@link #FLOATS}: the intermediate of half-precision conversion. */
    static final VectorSpecies<Integer> INTS = IntVector.SPECIES_PREFERRED;
    /** 16-bit lanes, as many as {@link #FLOATS}: one load of F16/BF16 weights fills one float vector. */
    static final VectorSpecies<Short> HALVES =
            VectorSpecies.of(short.class, VectorShape.forBitSize(FLOATS.vectorBitSize() / 2));
    static final int LANES = FLOATS.length();
    static final VectorMask<Float> ALL = FLOATS.maskAll(true);

    // The pairwise folds that sum sixteen 16-lane accumulators at once (used only when LANES == 16):
    // FOLD_k swaps lanes i and i ^ k, FOLD_MASK_k selects the lanes with bit k set.
    static final VectorShuffle<Float> FOLD_8 = fold(8);
    static final VectorShuffle<Float> FOLD_4 = fold(4);
    static final VectorShuffle<Float> FOLD_2 = fold(2);
    static final VectorShuffle<Float> FOLD_1 = fold(1);
    static final VectorMask<Float> FOLD_MASK_8 = foldMask(8);
    static final VectorMask<Float> FOLD_MASK_4 = foldMask(4);
    static final VectorMask<Float> FOLD_MASK_2 = foldMask(2);
    static final VectorMask<Float> FOLD_MASK_1 = foldMask(1);

    /**
     * Below this many multiply-adds a product runs on the calling thread: handing chunks to the
     * workers costs a few microseconds, about what one core takes for 30k multiply-adds (60 KB of
     * BF16 weights from memory).
     */
    static final long MIN_PARALLEL_MACS = 1 << 15;
    /**
     * Rows per pass in prefill products: a tile of 256 rows × 4 vectors stays in L1/L2 while the
     * blocks of tokens reuse it.
     */
    static final int PREFILL_ROW_BLOCK = 256;
    /**
     * Up to this many tokens (a batched decode step: one row per sequence), x·W is split like the
     * one-token case: each thread streams a contiguous block of whole rows and applies every
     * converted weight vector to all tokens. The column-split prefill path reads 128-byte pieces
     * of 256 rows at a time, which measured 1.4-3.6× slower for 2..12 tokens (BatchRowsBench,
     * BF16 at c_fc's shape, 2 threads); at 16 tokens the two were even.
     */
    static final int SMALL_BATCH = 12;

    final String name;
    final int rows;
    final int cols;
    final MemorySegment data;

    WeightMatrix(String name, int rows, int cols, MemorySegment data) {
        this.name = name;
        this.rows = rows;
        this.cols = cols;
        this.data = data;
    }

    /**
     * Wraps a rank-2 tensor of F32, F16, BF16, Q8_0 or Q4_0 without copying it.
     *
     * @throws BtlmException naming the tensor if it has another rank or type, or a dimension too
     *                       large for an int
     */
    public static WeightMatrix of(TensorInfo t) {
        Objects.requireNonNull(t, "tensor");
        if (t.rank() != 2) {
            throw new BtlmException("tensor " + t.name() + " in " + t.source() + " has shape " + t.shapeString()
                    + "; a weight matrix must have rank 2");
        }
        if (t.dim(0) > Integer.MAX_VALUE || t.dim(1) > Integer.MAX_VALUE) {
            throw new BtlmException("tensor " + t.name() + " in " + t.source() + " has shape " + t.shapeString()
                    + ", too large for a weight matrix");
        }
        final int rows = (int) t.dim(0);
        final int cols = (int) t.dim(1);
        return switch (t.dtype()) {
            case F32 -> new F32Matrix(t.name(), rows, cols, t.data());
            case F16 -> new F16Matrix(t.name(), rows, cols, t.data());
            case BF16 -> new BF16Matrix(t.name(), rows, cols, t.data());
            case Q8_0 -> new Q8_0Matrix(t.name(), rows, cols, t.data());
            case Q4_0 -> new Q4_0Matrix(t.name(), rows, cols, t.data());
            default -> throw new BtlmException("tensor " + t.name() + " in " + t.source() + " has type " + t.dtype()
                    + "; weight matrices must be F32, F16, BF16, Q8_0 or Q4_0");
        };
    }

    public final int rows() {
        return rows;
    }

    public final int cols() {
        return cols;
    }

    public abstract DType dtype();

    public final String name() {
        return name;
    }

    /**
     * y = x·W for n tokens: y[t][c] = Σ_r x[t][r]·W[r][c], with x laid out [n, rows] and y
     * [n, cols] (y is overwritten). This is GPT-2's Conv1D, whose weight is stored [in, out].
     * A decode step (n = 1) streams W once, split across the pool by blocks of rows; longer inputs
     * are split by columns and read each weight tile once per block of four tokens; up to
     * {@link #SMALL_BATCH} tokens are split by rows as for one, with every weight vector applied
     * to all tokens. x and y must not overlap.
     */
    public final void multiply(Parallel pool, float[] x, int n, float[] y) {
        checkOperands(pool, x, n, rows, y, cols);
        if (n == 0 || cols == 0) {
            return;
        }
        if (rows == 0) {
            Arrays.fill(y, 0, n * cols, 0f);
            return;
        }
        if (n == 1) {
            multiplyOne(pool, x, y);
            return;
        }
        if (n <= SMALL_BATCH) {
            multiplyFew(pool, x, n, y);
            return;
        }
        final int units = (cols + LANES - 1) / LANES; // split on whole vectors of columns
        final int colsNow = cols;
        final Parallel.RangeTask task =
                (from, to) -> multiplyColumns(x, n, y, from * LANES, Math.min(colsNow, to * LANES));
        if (serial(pool, (long) n * rows * cols)) {
            task.run(0, units);
        } else {
            pool.forRange(units, task);
        }
    }

    /**
     * The decode case, bound by memory bandwidth: each thread takes a contiguous block of rows
     * (whole rows, so it reads one region of memory front to back; splitting columns instead
     * made every thread read short pieces of every row, measured ~25% slower) into its own
     * partial output, and the partials are added at the end. The sum's grouping therefore
     * depends on the thread count: results can differ in the last bits between thread counts.
     */
    private void multiplyOne(Parallel pool, float[] x, float[] y) {
        splitRows(pool, 1, y, (r0, r1, out, o) -> multiplyRows(x, r0, r1, out, o));
    }

    /** A few tokens, split as {@link #multiplyOne}, each thread's partial output being [n, cols]. */
    private void multiplyFew(Parallel pool, float[] x, int n, float[] y) {
        splitRows(pool, n, y, (r0, r1, out, o) -> multiplyRowsBatch(x, n, r0, r1, out, o));
    }

    /** A kernel that computes the rows [r0, r1) of a product for all tokens into out at o. */
    @FunctionalInterface
    private interface RowsKernel {
        void run(int r0, int r1, float[] out, int o);
    }

    /**
     * Runs {@code kernel} over contiguous blocks of whole groups of eight rows, one per thread, the
     * first into y and the others into partial outputs of n·cols floats, then adds the partials.
     */
    private void splitRows(Parallel pool, int n, float[] y, RowsKernel kernel) {
        final int groups = (rows + 7) / 8; // split on whole groups of eight rows
        final int parts = serial(pool, (long) n * rows * cols) ? 1 : Math.min(pool.threads(), groups);
        if (parts == 1) {
            kernel.run(0, rows, y, 0);
            return;
        }
        final int rowsNow = rows;
        final int size = n * cols;
        final float[] partial = new float[(parts - 1) * size]; // small: cheaper than sharing scratch safely
        pool.forRange(parts, (from, to) -> {
            for (int p = from; p < to; p++) {
                final int r0 = 8 * (int) ((long) p * groups / parts);
                final int r1 = Math.min(rowsNow, 8 * (int) ((long) (p + 1) * groups / parts));
                if (p == 0) {
                    kernel.run(r0, r1, y, 0);
                } else {
                    kernel.run(r0, r1, partial, (p - 1) * size);
                }
            }
        });
        for (int p = 1; p < parts; p++) {
            VectorMath.addInPlace(y, 0, partial, (p - 1) * size, size);
        }
    }

    /**
     * y = x·Wᵀ for n tokens: y[t][r] = Σ_c x[t][c]·W[r][c], with x laid out [n, cols] and y
     * [n, rows] (y is overwritten). This is nn.Linear's layout [out, in] and the tied LM head.
     * Rows are split across the pool in groups of four; for n &gt; 1 each group of rows is read once
     * per block of four tokens (4 rows × 4 tokens of accumulators), and a last block of one or two
     * tokens (a batch of 2, 5, 6, ... rows) uses 4 × 2 tiles. x and y must not overlap.
     */
    public final void multiplyTransposed(Parallel pool, float[] x, int n, float[] y) {
        checkOperands(pool, x, n, cols, y, rows);
        if (n == 0 || rows == 0) {
            return;
        }
        final int groups = (rows + 3) / 4; // split on groups of four rows: the prefill tiles' height
        final int rowsNow = rows;
        final Parallel.RangeTask task =
                (from, to) -> multiplyTransposedRows(x, n, y, from * 4, Math.min(rowsNow, to * 4));
        if (serial(pool, (long) n * rows * cols)) {
            task.run(0, groups);
        } else {
            pool.forRange(groups, task);
        }
    }

    /** Converts row {@code r} to float32 into dst[dstOffset, dstOffset + cols) (an embedding lookup). */
    public final void row(int r, float[] dst, int dstOffset) {
        Objects.checkIndex(r, rows);
        Objects.checkFromIndexSize(dstOffset, cols, dst.length);
        convertRow(r, dst, dstOffset);
    }

    @Override
    public String toString() {
        return name + " " + dtype() + "[" + rows + ", " + cols + "]";
    }

    /**
     * Prefill (n &gt; 1): computes y[t][c0..c1) for all n tokens. c0 is a multiple of
     * {@link #LANES}; c1 is one too, or {@code cols}.
     */
    abstract void multiplyColumns(float[] x, int n, float[] y, int c0, int c1);

    /** Decode (one token): out[o, o + cols) = Σ_{r ∈ [r0, r1)} x[r]·W[r][·]; r0 is a multiple of 8. */
    abstract void multiplyRows(float[] x, int r0, int r1, float[] out, int o);

    /**
     * A few tokens: out[o + t·cols, o + (t+1)·cols) = Σ_{r ∈ [r0, r1)} x[t][r]·W[r][·] for t &lt; n;
     * r0 is a multiple of 8.
     */
    abstract void multiplyRowsBatch(float[] x, int n, int r0, int r1, float[] out, int o);

    /** Computes y[t][r0..r1) for all n tokens; r0 is a multiple of 4. */
    abstract void multiplyTransposedRows(float[] x, int n, float[] y, int r0, int r1);

    abstract void convertRow(int r, float[] dst, int dstOffset);

    /**
     * Σ lanes[off, off + LANES), added pairwise in a fixed order. Kernels park their accumulators
     * here instead of calling {@code reduceLanes(ADD)}, whose order differs between compiled code
     * and the interpreter's fallback: with it, a product's last bits would depend on whether C2
     * had compiled the kernel yet (and so, between runs, on timing).
     */
    static float sumLanes(float[] lanes, int off) {
        for (int half = LANES / 2; half > 0; half /= 2) {
            for (int i = 0; i < half; i++) {
                lanes[off + i] += lanes[off + i + half];
            }
        }
        return lanes[off];
    }

    private static VectorShuffle<Float> fold(int k) {
        return VectorShuffle.fromOp(FLOATS, i -> (i ^ k) % LANES);
    }

    private static VectorMask<Float> foldMask(int k) {
        final boolean[] set = new boolean[LANES];
        for (int i = 0; i < LANES; i++) {
            set[i] = (i & k) != 0;
        }
        return VectorMask.fromArray(FLOATS, set, 0);
    }

    /** Whether a product is too small to be worth waking the workers. */
    private static boolean serial(Parallel pool, long macs) {
        return pool.threads() == 1 || macs < MIN_PARALLEL_MACS;
    }

    private void checkOperands(Parallel pool, float[] x, int n, int xWidth, float[] y, int yWidth) {
        Objects.requireNonNull(pool, "pool");
        if (n < 0) {
            throw new IllegalArgumentException("negative token count " + n);
        }
        if ((long) n * xWidth > x.length || (long) n * yWidth > y.length) {
            throw new IllegalArgumentException(this + ": " + n + " tokens need x of " + (long) n * xWidth
                    + " and y of " + (long) n * yWidth + " floats, got " + x.length + " and " + y.length);
        }
        if (x == y) {
            throw new IllegalArgumentException(this + ": x and y must be different arrays");
        }
    }
}
