package org.btlm4j;

import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * The text of a generation as it is produced, to be read with a for-each loop or as an
 * {@link Iterator}: each element is a piece of final text (never empty). Generation runs on its
 * own thread and stays at most a few pieces ahead of the reader.
 *
 * <pre>{@code
 * try (TextStream s = model.stream("And God said", GenerationParams.defaults())) {
 *     for (String piece : s) {
 *         System.out.print(piece);
 *     }
 *     System.out.println(" [" + s.result().finishReason() + "]");
 * }
 * }</pre>
 *
 * <p>{@link #close()} before the end cancels the generation. A failure of the generation is
 * rethrown by {@link #hasNext()}. One reader thread at a time.
 */
public final class TextStream implements Iterator<String>, Iterable<String>, AutoCloseable {
    private static final int AHEAD = 64;

    /** The last element of the queue: the result, or why there is none. */
    private record End(GenerationResult result, RuntimeException failure) {
    }

    /** Thrown inside the generation thread to stop it after {@link #close()}. */
    private static final class Cancelled extends RuntimeException {
        Cancelled() {
            super("generation cancelled", null, false, false);
        }
    }

    private final BlockingQueue<Object> queue = new ArrayBlockingQueue<>(AHEAD);
    private final Thread producer;
    private volatile boolean cancelled;
    private Object next;
    private End end;

    /** Starts {@code generation}, which must hand every piece of text to the consumer it is given. */
    TextStream(Function<java.util.function.Consumer<String>, GenerationResult> generation) {
        producer = Thread.ofPlatform().daemon().name("btlm-stream").unstarted(() -> {
            End last;
            try {
                last = new End(generation.apply(this::put), null);
            } catch (Cancelled c) {
                return;
            } catch (RuntimeException e) {
                last = new End(null, e);
            } catch (Error e) {
                last = new End(null, new BtlmException("generation failed: " + e, e));
            }
            try {
                put(last);
            } catch (Cancelled c) {
                // closed meanwhile: nobody reads the end
            }
        });
        producer.start();
    }

    private void put(Object item) {
        if (item instanceof String s && s.isEmpty()) {
            return;
        }
        try {
            while (!queue.offer(item, 50, TimeUnit.MILLISECONDS)) {
                if (cancelled) {
                    throw new Cancelled();
                }
            }
        } catch (InterruptedException e) {
            throw new Cancelled();
        }
        if (cancelled) {
            throw new Cancelled();
        }
    }

    /** Waits for the next piece of text; false when the generation has ended. */
    @Override
    public boolean hasNext() {
        if (next != null) {
            return true;
        }
        if (end != null || cancelled) {
            return false;
        }
        Object item;
        try {
            item = queue.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BtlmException("interrupted while waiting for generated text");
        }
        if (item instanceof End e) {
            end = e;
            if (e.failure() != null) {
                throw e.failure();
            }
            return false;
        }
        next = item;
        return true;
    }

    /** The next piece of text. */
    @Override
    public String next() {
        if (!hasNext()) {
            throw new NoSuchElementException("the generation has ended");
        }
        String s = (String) next;
        next = null;
        return s;
    }

    /** This stream itself, so that it can be used in a for-each loop (once). */
    @Override
    public Iterator<String> iterator() {
        return this;
    }

    /**
     * What the generation produced, once {@link #hasNext()} has returned false.
     *
     * @throws IllegalStateException before the end, or after a cancellation or failure
     */
    public GenerationResult result() {
        if (end == null || end.result() == null) {
            throw new IllegalStateException("the generation has not finished (read the stream to its end first)");
        }
        return end.result();
    }

    /** Cancels the generation if it is still running and waits for its thread to stop. */
    @Override
    public void close() {
        if (end == null) {
            cancelled = true;
            queue.clear();
        }
        try {
            producer.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
