package org.btlm4j.tensor;

import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * The engine's one thread pool: splits an index range into {@link #threads()} contiguous chunks,
 * runs one on the calling thread and the others on persistent daemon workers, and returns when all
 * are done.
 *
 * <p>A decode step issues a few hundred short parallel loops (each matrix product is well under a
 * millisecond), so the hand-off must be cheap: a call allocates nothing, a worker that was busy a
 * moment ago is still spinning and picks up its chunk within a microsecond (a whole call with two
 * threads measured 1–2 µs), and only a worker idle for longer than 50 µs parks (and then costs one
 * unpark to wake). While waiting, a thread first pauses, then yields its core, which keeps the pool
 * usable when there are more threads than free cores.
 *
 * <p>Calls from several threads at once are allowed but serialize: the pool runs one range at a
 * time. A task may itself call {@code forRange} on the same pool (from its caller-thread chunk or
 * from a worker); such a nested call runs inline on that thread, since the pool is already busy.
 */
public final class Parallel implements AutoCloseable {

    /** One chunk of a parallel loop: handles the indices {@code from} (inclusive) to {@code to} (exclusive). */
    @FunctionalInterface
    public interface RangeTask {
        void run(int from, int to);
    }

    /**
     * How long an idle thread polls before parking. Long enough to bridge the serial gaps between
     * the kernels of one decode step (layer norms, attention bookkeeping), short enough that an idle
     * engine does not burn a core.
     */
    private static final long SPIN_NANOS = 50_000;
    /** The first part of the spin, which only pauses; after it the waiting thread yields its core. */
    private static final long PAUSE_NANOS = 5_000;

    private final int threads;
    private final Worker[] workers; // chunk i is run by workers[i - 1]; chunk 0 by the caller
    private final Object entry = new Object(); // serializes callers

    // The current call. Written by the caller before it bumps a worker's ticket (a volatile write),
    // read by the worker after it sees the new ticket (a volatile read), so plain fields suffice.
    private RangeTask task;
    private int length;
    private int chunks;

    /** Chunks still running on workers in the current call. */
    private final AtomicInteger pending = new AtomicInteger();
    /** The first failure of the current call; later ones are attached to it as suppressed. */
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    /** The thread inside {@code forRange}, so that nested calls can be recognized. */
    private volatile Thread caller;
    /** Set while the caller is parked waiting for {@link #pending}; tells the last worker to unpark it. */
    private volatile boolean callerParked;
    private volatile boolean closed;

    /** @param threads how many threads share each range, the caller included; at least 1 */
    public Parallel(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("a pool needs at least one thread, not " + threads);
        }
        this.threads = threads;
        this.workers = new Worker[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i + 1);
        }
        for (Worker w : workers) {
            w.start();
        }
    }

    /** The number of available processors: one thread per core the JVM may use. */
    public static int defaultThreads() {
        return Runtime.getRuntime().availableProcessors();
    }

    public int threads() {
        return threads;
    }

    /**
     * Runs {@code task} over [0, n) split into min(threads, n) contiguous chunks of nearly equal
     * size (chunk i is [i·n/k, (i+1)·n/k)), one per thread, and returns when all have finished.
     *
     * <p>If any chunk throws, the others still run to completion, and then the first throwable is
     * rethrown here unchanged (so a {@link org.btlm4j.BtlmException} stays one), with those of other
     * chunks attached as suppressed. A checked throwable, which a {@code RangeTask} can only throw
     * by cheating, arrives wrapped in a {@link RuntimeException}. The pool remains usable.
     *
     * @throws IllegalStateException after {@link #close()}
     */
    public void forRange(int n, RangeTask task) {
        Objects.requireNonNull(task, "task");
        if (n < 0) {
            throw new IllegalArgumentException("negative range length " + n);
        }
        if (closed) {
            throw new IllegalStateException("the thread pool is closed");
        }
        if (n == 0) {
            return;
        }
        if (threads == 1 || n == 1 || isNested()) {
            task.run(0, n);
            return;
        }
        final Throwable t;
        synchronized (entry) {
            if (closed) {
                throw new IllegalStateException("the thread pool is closed");
            }
            caller = Thread.currentThread();
            try {
                dispatch(n, task);
            } finally {
                caller = null;
                this.task = null; // do not keep the caller's lambda (and what it captured) alive
            }
            t = failure.getAndSet(null); // inside the lock: the next call's failures are its own
        }
        if (t != null) {
            throw rethrowable(t);
        }
    }

    private boolean isNested() {
        final Thread self = Thread.currentThread();
        return self == caller || (self instanceof Worker w && w.pool() == this);
    }

    private void dispatch(int n, RangeTask task) {
        final int k = Math.min(threads, n);
        this.task = task;
        this.length = n;
        this.chunks = k;
        pending.set(k - 1);
        for (int i = 1; i < k; i++) {
            workers[i - 1].wake();
        }
        runChunk(task, n, k, 0);
        awaitWorkers();
    }

    private void runChunk(RangeTask task, int n, int k, int chunk) {
        final int from = (int) ((long) chunk * n / k);
        final int to = (int) ((long) (chunk + 1) * n / k);
        try {
            if (from < to) {
                task.run(from, to);
            }
        } catch (Throwable t) {
            recordFailure(t);
        }
    }

    private void recordFailure(Throwable t) {
        if (!failure.compareAndSet(null, t)) {
            final Throwable first = failure.get();
            if (first != null && first != t) {
                first.addSuppressed(t); // Throwable synchronizes this itself
            }
        }
    }

    private void awaitWorkers() {
        if (pending.get() == 0) {
            return;
        }
        final long start = System.nanoTime();
        while (pending.get() != 0) {
            if (spin(start)) {
                continue;
            }
            // Publish that we park, then re-check: the last worker either sees the flag or we see
            // its decrement (both are volatile accesses, so one of the two must happen).
            callerParked = true;
            if (pending.get() != 0) {
                LockSupport.park(this);
            }
            callerParked = false;
        }
    }

    /**
     * One round of waiting that does not park: a pause instruction for the first microseconds (the
     * common case, a chunk finishing on another core), then yields, which matter when there are
     * more runnable threads than cores and the thread being waited for needs this one's core.
     * Returns false once the spin budget is spent and the caller should park.
     */
    private static boolean spin(long start) {
        final long waited = System.nanoTime() - start;
        if (waited < PAUSE_NANOS) {
            Thread.onSpinWait();
            return true;
        }
        if (waited < SPIN_NANOS) {
            Thread.yield();
            return true;
        }
        return false;
    }

    private static RuntimeException rethrowable(Throwable t) {
        if (t instanceof RuntimeException re) {
            return re;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new RuntimeException("parallel task failed: " + t, t);
    }

    /** Stops the workers (they finish nothing further); later calls of {@link #forRange} fail. */
    @Override
    public void close() {
        synchronized (entry) {
            if (closed) {
                return;
            }
            closed = true;
            for (Worker w : workers) {
                w.wake();
            }
        }
        for (Worker w : workers) {
            try {
                w.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private final class Worker extends Thread {
        private final int chunk;
        /** Bumped by the caller to hand this worker its chunk of a new call. */
        private volatile int ticket;
        private volatile boolean parked;

        Worker(int chunk) {
            super("btlm-parallel-" + chunk);
            this.chunk = chunk;
            setDaemon(true);
        }

        Parallel pool() {
            return Parallel.this;
        }

        /** Called by the caller (holding the entry lock) after it has written the call's fields. */
        void wake() {
            ticket = ticket + 1; // only the lock holder writes it
            if (parked) {
                LockSupport.unpark(this);
            }
        }

        @Override
        public void run() {
            int seen = 0;
            while (true) {
                seen = awaitTicket(seen);
                if (closed) {
                    return;
                }
                runChunk(task, length, chunks, chunk);
                // The caller waits for every woken worker, so it cannot start the next call (and
                // overwrite the fields read above) before this decrement.
                if (pending.decrementAndGet() == 0 && callerParked) {
                    final Thread c = caller;
                    if (c != null) {
                        LockSupport.unpark(c);
                    }
                }
            }
        }

        private int awaitTicket(int seen) {
            final long start = System.nanoTime();
            int t;
            while ((t = ticket) == seen) {
                if (closed) {
                    return t;
                }
                if (spin(start)) {
                    continue;
                }
                // Same handshake as the caller's: flag first, then re-check the ticket.
                parked = true;
                if (ticket == seen && !closed) {
                    LockSupport.park(this);
                }
                parked = false;
            }
            return t;
        }
    }
}
