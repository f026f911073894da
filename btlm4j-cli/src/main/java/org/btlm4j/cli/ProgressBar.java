package org.btlm4j.cli;

import java.io.PrintWriter;
import java.util.Locale;

/**
 * Progress of a long task on stderr: a bar redrawn in place on a terminal, a plain line every
 * tenth of the way otherwise (logs, pipes, CI). Units are whatever the task counts (bytes, items).
 */
final class ProgressBar implements AutoCloseable {
    private static final long REDRAW_NANOS = 200_000_000L;
    private static final int WIDTH = 30;

    private final PrintWriter out;
    private final String label;
    private final long total;
    private final boolean terminal;
    private final Unit unit;
    private final long start = System.nanoTime();
    private long lastDraw;
    private int lastTenth = -1;
    private long done;
    private boolean closed;

    /** How counts are printed. */
    enum Unit { ITEMS, BYTES }

    ProgressBar(PrintWriter out, String label, long total, Unit unit) {
        this(out, label, total, unit, isTerminal());
    }

    ProgressBar(PrintWriter out, String label, long total, Unit unit, boolean terminal) {
        this.out = out;
        this.label = label;
        this.total = Math.max(0, total);
        this.unit = unit;
        this.terminal = terminal;
    }

    static boolean isTerminal() {
        var console = System.console();
        return console != null && console.isTerminal();
    }

    /** Adds {@code n} finished units. */
    synchronized void step(long n) {
        update(done + n);
    }

    /** Sets the finished units to {@code value}. */
    synchronized void update(long value) {
        if (closed) {
            return;
        }
        done = Math.min(Math.max(0, value), total == 0 ? Long.MAX_VALUE : total);
        long now = System.nanoTime();
        if (terminal) {
            if (now - lastDraw >= REDRAW_NANOS || done == total) {
                lastDraw = now;
                out.print("\r" + line(now));
                out.flush();
            }
        } else {
            int tenth = total == 0 ? 0 : (int) (done * 10 / total);
            if (tenth != lastTenth) {
                lastTenth = tenth;
                out.println(line(now));
            }
        }
    }

    /** The text of one progress line: label, bar, counts, percentage, rate and ETA. */
    synchronized String line(long now) {
        double seconds = Math.max(1e-9, (now - start) / 1e9);
        double fraction = total == 0 ? 1 : (double) done / total;
        int filled = (int) Math.round(fraction * WIDTH);
        StringBuilder sb = new StringBuilder(label).append(" [");
        sb.append("#".repeat(filled)).append(" ".repeat(WIDTH - filled)).append("] ");
        sb.append(format(done)).append('/').append(format(total));
        sb.append(String.format(Locale.ROOT, " %3.0f%%", fraction * 100));
        double rate = done / seconds;
        sb.append(' ').append(format((long) rate)).append("/s");
        if (done > 0 && done < total) {
            long eta = Math.round((total - done) / rate);
            sb.append(String.format(Locale.ROOT, " ETA %d:%02d", eta / 60, eta % 60));
        } else if (done >= total) {
            sb.append(String.format(Locale.ROOT, " in %.1f s", seconds));
        }
        return sb.toString();
    }

    private String format(long n) {
        if (unit == Unit.ITEMS) {
            return String.format(Locale.ROOT, "%,d", n);
        }
        if (n >= 1L << 30) {
            return String.format(Locale.ROOT, "%.2f GiB", n / (double) (1L << 30));
        }
        return String.format(Locale.ROOT, "%.1f MiB", n / (double) (1L << 20));
    }

    /** Ends the bar's line (on a terminal) so later output starts on a fresh line. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        if (terminal) {
            out.print("\r" + line(System.nanoTime()));
            out.println();
        } else if (lastTenth != 10 && total > 0 && done >= total) {
            out.println(line(System.nanoTime()));
        }
        closed = true;
        out.flush();
    }
}
