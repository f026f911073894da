package org.btlm4j.checkpoint;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The tensors of another source copied into one block of anonymous memory (the {@code --no-mmap}
 * path). On machines where reading a mapped file is slower or erratic, decoding from private
 * memory backed by transparent huge pages streams at the full memory bandwidth. Tensors that share
 * bytes in the source (a tied head) share them in the copy.
 */
public final class InMemoryCopy implements TensorSource {
    /** Huge-page size on x86-64 Linux; the block is aligned to it so THP can back all of it. */
    private static final long HUGE_PAGE = 2L << 20;
    private static final int MADV_HUGEPAGE = 14;
    private static final long PIECE = 64L << 20;

    private final Arena arena;
    private final Map<String, TensorInfo> tensors;
    private final String description;
    private final boolean hugePages;

    private InMemoryCopy(Arena arena, Map<String, TensorInfo> tensors, String description, boolean hugePages) {
        this.arena = arena;
        this.tensors = tensors;
        this.description = description;
        this.hugePages = hugePages;
    }

    /** Reports the bytes copied so far; called from the copying threads, at most once per 64 MiB piece. */
    @FunctionalInterface
    public interface Progress {
        void copied(long bytesDone, long bytesTotal);
    }

    /** Copies every tensor of {@code source}; the source may be closed afterwards. */
    public static InMemoryCopy of(TensorSource source) {
        return of(source, (done, total) -> { });
    }

    /** Copies every tensor of {@code source}, reporting to {@code progress}; the source may be closed afterwards. */
    public static InMemoryCopy of(TensorSource source, Progress progress) {
        // Distinct byte ranges: a tensor whose data is the same segment as another's is copied once.
        Map<MemorySegment, Long> offsets = new LinkedHashMap<>();
        long total = 0;
        for (TensorInfo t : source.tensors().values()) {
            if (!offsets.containsKey(t.data())) {
                offsets.put(t.data(), total);
                total += (t.data().byteSize() + 63) & ~63L; // 64-byte aligned rows for the vector loads
            }
        }
        Arena arena = Arena.ofShared();
        try {
            MemorySegment block = arena.allocate(Math.max(total, 1), HUGE_PAGE);
            boolean huge = adviseHugePages(block);
            Map<MemorySegment, MemorySegment> copies = new IdentityHashMap<>();
            Map<String, TensorInfo> out = new LinkedHashMap<>();
            java.util.List<MemorySegment[]> pieces = new java.util.ArrayList<>();
            for (TensorInfo t : source.tensors().values()) {
                long at = offsets.get(t.data());
                MemorySegment dst = block.asSlice(at, t.data().byteSize());
                if (copies.put(t.data(), dst) == null) {
                    // 64 MiB pieces, copied on all cores: faulting in the file and the new pages is
                    // the slow part, and it parallelises.
                    for (long p = 0; p < dst.byteSize(); p += PIECE) {
                        long n = Math.min(PIECE, dst.byteSize() - p);
                        pieces.add(new MemorySegment[] {t.data().asSlice(p, n), dst.asSlice(p, n)});
                    }
                }
                out.put(t.name(), new TensorInfo(t.name(), t.dtype(), t.shape(), dst, t.source()));
            }
            long bytes = 0;
            for (MemorySegment[] pair : pieces) {
                bytes += pair[0].byteSize();
            }
            final long toCopy = bytes;
            java.util.concurrent.atomic.AtomicLong done = new java.util.concurrent.atomic.AtomicLong();
            progress.copied(0, toCopy);
            pieces.parallelStream().forEach(pair -> {
                pair[1].copyFrom(pair[0]);
                progress.copied(done.addAndGet(pair[0].byteSize()), toCopy);
            });
            return new InMemoryCopy(arena, Collections.unmodifiableMap(out),
                    source.describe() + ", copied to memory" + (huge ? " (huge pages)" : ""), huge);
        } catch (OutOfMemoryError e) {
            arena.close();
            throw new CheckpointException("not enough memory to copy the weights (" + total / (1 << 20)
                    + " MiB); use the memory-mapped default instead of --no-mmap");
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** Asks Linux to back {@code block} with transparent huge pages; false where that is not possible. */
    public static boolean adviseHugePages(MemorySegment block) {
        Optional<MethodHandle> madvise = Madvise.HANDLE;
        if (madvise.isEmpty() || block.byteSize() < HUGE_PAGE) {
            return false;
        }
        try {
            int rc = (int) madvise.get().invokeExact(block, block.byteSize(), MADV_HUGEPAGE);
            return rc == 0;
        } catch (Throwable e) {
            return false;
        }
    }

    /** madvise(2) through the FFM linker, looked up once; absent off Linux. */
    private static final class Madvise {
        static final Optional<MethodHandle> HANDLE = lookup();

        private static Optional<MethodHandle> lookup() {
            if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) {
                return Optional.empty();
            }
            try {
                Linker linker = Linker.nativeLinker();
                return linker.defaultLookup().find("madvise").map(addr -> linker.downcallHandle(addr,
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                                ValueLayout.JAVA_INT)));
            } catch (RuntimeException | Error e) {
                return Optional.empty();
            }
        }
    }

    public boolean hugePages() {
        return hugePages;
    }

    @Override
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    @Override
    public String describe() {
        return description;
    }

    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}
