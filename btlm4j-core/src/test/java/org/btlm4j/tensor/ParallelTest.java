package org.btlm4j.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.btlm4j.BtlmException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@Timeout(60)
class ParallelTest {

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4, 8})
    void coversEveryIndexOnceInContiguousChunks(int threads) {
        try (Parallel pool = new Parallel(threads)) {
            assertEquals(threads, pool.threads());
            for (int n : new int[] {0, 1, 2, 3, 5, 7, 8, 9, 100, 1001}) {
                final AtomicIntegerArray hits = new AtomicIntegerArray(n);
                final AtomicInteger calls = new AtomicInteger();
                pool.forRange(n, (from, to) -> {
                    assertTrue(from < to, "empty chunks are not run");
                    calls.incrementAndGet();
                    for (int i = from; i < to; i++) {
                        hits.incrementAndGet(i);
                    }
                });
                for (int i = 0; i < n; i++) {
                    assertEquals(1, hits.get(i), "index " + i + " of " + n);
                }
                assertEquals(Math.min(n, threads), calls.get(), "one chunk per thread, none empty (n=" + n + ")");
            }
        }
    }

    @Test
    void callerRunsAChunkAndWorkersRunTheRest() {
        try (Parallel pool = new Parallel(3)) {
            final Set<Thread> seen = ConcurrentHashMap.newKeySet();
            final AtomicReference<Thread> firstChunk = new AtomicReference<>();
            pool.forRange(3, (from, to) -> {
                seen.add(Thread.currentThread());
                if (from == 0) {
                    firstChunk.set(Thread.currentThread());
                }
            });
            assertEquals(3, seen.size());
            assertSame(Thread.currentThread(), firstChunk.get());
            for (Thread t : seen) {
                if (t != Thread.currentThread()) {
                    assertTrue(t.isDaemon(), "workers must not keep the JVM alive");
                }
            }
        }
    }

    @Test
    void singleThreadRunsInline() {
        try (Parallel pool = new Parallel(1)) {
            final AtomicReference<Thread> ran = new AtomicReference<>();
            pool.forRange(10, (from, to) -> {
                assertEquals(0, from);
                assertEquals(10, to);
                ran.set(Thread.currentThread());
            });
            assertSame(Thread.currentThread(), ran.get());
        }
    }

    @Test
    void workerExceptionReachesTheCallerUnchangedAndThePoolSurvives() {
        try (Parallel pool = new Parallel(3)) {
            final BtlmException boom = new BtlmException("chunk 2 failed");
            final BtlmException thrown = assertThrows(BtlmException.class, () -> pool.forRange(9, (from, to) -> {
                if (from >= 6) {
                    throw boom;
                }
            }));
            assertSame(boom, thrown);

            // an Error, thrown by the caller's own chunk, while a worker also fails: the first one
            // recorded wins and the other rides along as suppressed
            final Throwable t = assertThrows(Throwable.class, () -> pool.forRange(9, (from, to) -> {
                if (from == 0) {
                    throw new AssertionError("caller chunk");
                }
                if (from == 3) {
                    throw new IllegalStateException("worker chunk");
                }
            }));
            assertTrue(t instanceof AssertionError || t instanceof IllegalStateException, t.toString());
            assertEquals(1, t.getSuppressed().length);

            // still fully working afterwards, with nothing left over from the failures
            final AtomicLong sum = new AtomicLong();
            pool.forRange(1000, (from, to) -> {
                long s = 0;
                for (int i = from; i < to; i++) {
                    s += i;
                }
                sum.addAndGet(s);
            });
            assertEquals(999L * 1000 / 2, sum.get());
        }
    }

    @Test
    void checkedThrowableIsWrapped() {
        try (Parallel pool = new Parallel(2)) {
            final Exception checked = new java.io.IOException("sneaky");
            final RuntimeException e = assertThrows(RuntimeException.class, () -> pool.forRange(2, (from, to) -> {
                if (from == 1) {
                    ParallelTest.<RuntimeException>sneakyThrow(checked);
                }
            }));
            assertSame(checked, e.getCause());
        }
    }

    @SuppressWarnings("unchecked")
    private static <T extends Throwable> void sneakyThrow(Throwable t) throws T {
        throw (T) t;
    }

    @Test
    void manyShortCallsInARow() {
        try (Parallel pool = new Parallel(3)) {
            final AtomicIntegerArray hits = new AtomicIntegerArray(6);
            final int calls = 50_000;
            for (int k = 0; k < calls; k++) {
                pool.forRange(6, (from, to) -> {
                    for (int i = from; i < to; i++) {
                        hits.incrementAndGet(i);
                    }
                });
            }
            for (int i = 0; i < 6; i++) {
                assertEquals(calls, hits.get(i));
            }
        }
    }

    @Test
    void callsAfterIdlePeriodsWakeParkedWorkers() throws InterruptedException {
        try (Parallel pool = new Parallel(3)) {
            for (int k = 0; k < 5; k++) {
                Thread.sleep(5); // longer than the spin: the workers park
                final AtomicInteger done = new AtomicInteger();
                pool.forRange(3, (from, to) -> done.incrementAndGet());
                assertEquals(3, done.get());
            }
        }
    }

    @Test
    void concurrentCallersSerializeCorrectly() throws InterruptedException {
        try (Parallel pool = new Parallel(3)) {
            final int callers = 4;
            final int rounds = 2000;
            final AtomicLong total = new AtomicLong();
            final AtomicReference<Throwable> failure = new AtomicReference<>();
            final CountDownLatch start = new CountDownLatch(1);
            final Thread[] threads = new Thread[callers];
            for (int c = 0; c < callers; c++) {
                threads[c] = new Thread(() -> {
                    try {
                        start.await();
                        for (int r = 0; r < rounds; r++) {
                            final AtomicLong local = new AtomicLong();
                            pool.forRange(100, (from, to) -> local.addAndGet(to - from));
                            assertEquals(100, local.get());
                            total.addAndGet(local.get());
                        }
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    }
                });
                threads[c].start();
            }
            start.countDown();
            for (Thread t : threads) {
                t.join();
            }
            if (failure.get() != null) {
                throw new AssertionError(failure.get());
            }
            assertEquals((long) callers * rounds * 100, total.get());
        }
    }

    @Test
    void nestedCallsRunInline() {
        try (Parallel pool = new Parallel(3)) {
            final AtomicIntegerArray hits = new AtomicIntegerArray(3 * 10);
            pool.forRange(3, (from, to) -> {
                for (int i = from; i < to; i++) {
                    final int outer = i;
                    pool.forRange(10, (f, t) -> {
                        for (int j = f; j < t; j++) {
                            hits.incrementAndGet(outer * 10 + j);
                        }
                    });
                }
            });
            for (int i = 0; i < 30; i++) {
                assertEquals(1, hits.get(i));
            }
        }
    }

    @Test
    void closeStopsTheWorkers() throws InterruptedException {
        final Parallel pool = new Parallel(3);
        final Set<Thread> workers = ConcurrentHashMap.newKeySet();
        pool.forRange(3, (from, to) -> workers.add(Thread.currentThread()));
        workers.remove(Thread.currentThread());
        assertEquals(2, workers.size());
        pool.close();
        pool.close(); // idempotent
        for (Thread w : workers) {
            w.join(5000);
            assertFalse(w.isAlive());
        }
        assertThrows(IllegalStateException.class, () -> pool.forRange(5, (from, to) -> { }));
    }

    @Test
    void rejectsBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> new Parallel(0));
        try (Parallel pool = new Parallel(2)) {
            assertThrows(IllegalArgumentException.class, () -> pool.forRange(-1, (from, to) -> { }));
        }
        assertTrue(Parallel.defaultThreads() >= 1);
    }
}
