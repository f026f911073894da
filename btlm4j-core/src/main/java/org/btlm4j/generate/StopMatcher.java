package org.btlm4j.generate;

import java.util.List;

/** Finds stop strings in generated text and tells how much of its end must wait for more text. */
final class StopMatcher {
    private final List<String> stops;

    StopMatcher(List<String> stops) {
        this.stops = stops;
    }

    /** Index of the earliest stop string in {@code text}, or −1. */
    int find(CharSequence text) {
        int best = -1;
        String s = text.toString();
        for (String stop : stops) {
            int at = s.indexOf(stop);
            if (at >= 0 && (best < 0 || at < best)) {
                best = at;
            }
        }
        return best;
    }

    /** Length of the longest end of {@code text} that begins some stop string: not yet safe to show. */
    int heldBack(CharSequence text) {
        int held = 0;
        int n = text.length();
        for (String stop : stops) {
            for (int k = Math.min(stop.length() - 1, n); k > held; k--) {
                if (stop.regionMatches(0, text.toString(), n - k, k)) {
                    held = k;
                    break;
                }
            }
        }
        return held;
    }
}
