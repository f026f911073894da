package org.btlm4j.tokenizer;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.btlm4j.BtlmException;

/**
 * GPT-2 byte-level BPE tokenizer, matching Hugging Face {@code tokenizers} (the reference for
 * BTLM): GPT-2 pre-tokenizer regex, byte-to-character alphabet, merges by rank, no prefix space,
 * no BOS. Added tokens such as {@code <|endoftext|>} found in the input become their id in
 * {@link #encode}, and are plain text in {@link #encodeOrdinary}.
 *
 * <p>Instances are immutable apart from an internal cache and are safe to share between threads.
 */
public final class Gpt2Tokenizer {
    private static final String END_OF_TEXT = "<|endoftext|>";
    /** Pieces longer than this are not cached: rare, and they would pin large strings. */
    private static final int MAX_CACHED_CHARS = 64;
    private static final int CACHE_SLOTS = 1 << 15;

    /** Indexed by id; null where the vocabulary has a gap. */
    private final String[] idToText;
    private final byte[][] idToBytes;
    private final int[] byteToId;
    private final MergeTable merges;
    private final AddedToken[] addedTokens;
    /** Token string -> id when {@code ignoreMerges} is set (consulted on cache misses), else empty. */
    private final Map<String, Integer> vocab;
    private final boolean ignoreMerges;
    private final int eosTokenId;

    /**
     * Direct-mapped cache from a pre-token to its ids. A collision simply replaces the slot, which
     * bounds memory without LRU bookkeeping. Entries are immutable records, so the racy reads and
     * writes from several threads are safe under the Java memory model (final-field semantics):
     * a reader sees either null, an older entry or a complete new one, and checks the key anyway.
     */
    private final CacheEntry[] cache = new CacheEntry[CACHE_SLOTS];

    private record CacheEntry(int hash, String key, int[] ids) {
    }

    Gpt2Tokenizer(String[] idToText, byte[][] idToBytes, int[] byteToId, MergeTable merges,
                  List<AddedToken> addedTokens, Map<String, Integer> vocab, boolean ignoreMerges) {
        this.idToText = idToText;
        this.idToBytes = idToBytes;
        this.byteToId = byteToId;
        this.merges = merges;
        this.addedTokens = addedTokens.toArray(AddedToken[]::new);
        // The string map is ~5 MB for GPT-2 and only needed for ignore_merges look-ups.
        this.vocab = ignoreMerges ? vocab : Map.of();
        this.ignoreMerges = ignoreMerges;
        int eos = -1;
        for (AddedToken t : addedTokens) {
            if (t.content().equals(END_OF_TEXT)) {
                eos = t.id();
            }
        }
        if (eos < 0) {
            Integer id = vocab.get(END_OF_TEXT);
            eos = id == null ? -1 : id;
        }
        this.eosTokenId = eos;
    }

    /**
     * The tokenizer of a model directory: {@code tokenizer.json} when present, else
     * {@code vocab.json} + {@code merges.txt}; empty when the directory has neither.
     */
    public static java.util.Optional<Gpt2Tokenizer> fromDirectory(Path dir) {
        Path json = dir.resolve("tokenizer.json");
        if (java.nio.file.Files.isRegularFile(json)) {
            return java.util.Optional.of(fromTokenizerJson(json));
        }
        Path vocab = dir.resolve("vocab.json");
        Path merges = dir.resolve("merges.txt");
        if (java.nio.file.Files.isRegularFile(vocab) && java.nio.file.Files.isRegularFile(merges)) {
            return java.util.Optional.of(fromVocabAndMerges(vocab, merges));
        }
        return java.util.Optional.empty();
    }

    /**
     * Loads a Hugging Face {@code tokenizer.json} with a BPE model (merges written either as
     * "A B" strings or as [A, B] arrays) and its {@code added_tokens}.
     *
     * @throws BtlmException if the file is missing or malformed; the message names the file
     */
    public static Gpt2Tokenizer fromTokenizerJson(Path tokenizerJson) {
        return TokenizerFiles.fromTokenizerJson(tokenizerJson);
    }

    /**
     * Loads GPT-2's {@code vocab.json} + {@code merges.txt}. {@code <|endoftext|>}, if present in
     * the vocabulary, is registered as a special token as HF's GPT-2 configuration does.
     *
     * @throws BtlmException if a file is missing or malformed; the message names the file
     */
    public static Gpt2Tokenizer fromVocabAndMerges(Path vocabJson, Path mergesTxt) {
        return TokenizerFiles.fromVocabAndMerges(vocabJson, mergesTxt);
    }

    /**
     * Builds the tokenizer from a token list (index = id, byte-level strings as in vocab.json) and
     * "A B" merge rules in rank order: the form GGUF files carry ({@code tokenizer.ggml.*}).
     *
     * @param where names the source in error messages
     */
    public static Gpt2Tokenizer fromTokensAndMerges(java.util.List<String> tokens, java.util.List<String> merges,
            String where) {
        return TokenizerFiles.fromTokensAndMerges(tokens, merges, where);
    }

    /** The merge rules in rank order as "A B" strings (for writing them elsewhere, e.g. GGUF). */
    public java.util.List<String> mergeRules() {
        int[][] pairs = merges.pairsByRank();
        java.util.List<String> rules = new java.util.ArrayList<>(pairs.length);
        for (int[] p : pairs) {
            rules.add(idToText[p[0]] + " " + idToText[p[1]]);
        }
        return rules;
    }

    /** Every token's vocabulary string by id (null where an id is unassigned). */
    public java.util.List<String> tokenStrings() {
        return java.util.Collections.unmodifiableList(java.util.Arrays.asList(idToText.clone()));
    }

    /** Encodes like HF {@code encode(text)}: added/special tokens in the text become their ids. */
    public int[] encode(String text) {
        requireText(text);
        IntList out = new IntList(text.length() / 3 + 4);
        if (addedTokens.length == 0) {
            encodeOrdinary(text, 0, text.length(), out);
            return out.toArray();
        }
        // Leftmost-longest matching of the added tokens (as HF's aho-corasick split does); the
        // text between matches is pre-tokenized on its own, so pieces never span a special token.
        int[] nextAt = new int[addedTokens.length];
        Arrays.fill(nextAt, -2); // -2: not searched yet, -1: no further occurrence
        int pos = 0;
        int length = text.length();
        while (pos < length) {
            int bestAt = -1;
            int best = -1;
            for (int t = 0; t < addedTokens.length; t++) {
                if (nextAt[t] == -2 || (nextAt[t] >= 0 && nextAt[t] < pos)) {
                    nextAt[t] = text.indexOf(addedTokens[t].content(), pos);
                }
                int at = nextAt[t];
                if (at >= 0 && (bestAt < 0 || at < bestAt
                        || (at == bestAt && addedTokens[t].content().length() > addedTokens[best].content().length()))) {
                    bestAt = at;
                    best = t;
                }
            }
            if (best < 0) {
                break;
            }
            AddedToken token = addedTokens[best];
            int start = bestAt;
            int end = bestAt + token.content().length();
            if (token.lstrip()) {
                while (start > pos && PreTokenizer.isWhiteSpace(text.charAt(start - 1))) {
                    start--;
                }
            }
            if (token.rstrip()) {
                while (end < length && PreTokenizer.isWhiteSpace(text.charAt(end))) {
                    end++;
                }
            }
            encodeOrdinary(text, pos, start, out);
            out.add(token.id());
            pos = end;
        }
        encodeOrdinary(text, pos, length, out);
        return out.toArray();
    }

    /** Encodes treating every character as text, like tiktoken's {@code encode_ordinary}. */
    public int[] encodeOrdinary(String text) {
        requireText(text);
        IntList out = new IntList(text.length() / 3 + 4);
        encodeOrdinary(text, 0, text.length(), out);
        return out.toArray();
    }

    private static void requireText(String text) {
        if (text == null) {
            throw new BtlmException("cannot encode null text");
        }
    }

    private void encodeOrdinary(String text, int from, int to, IntList out) {
        int pos = from;
        while (pos < to) {
            int end = PreTokenizer.pieceEnd(text, pos, to);
            encodePiece(text, pos, end, out);
            pos = end;
        }
    }

    private void encodePiece(String text, int from, int to, IntList out) {
        int length = to - from;
        if (length == 1 && text.charAt(from) < 0x80) {
            out.add(byteToId[text.charAt(from)]); // one ASCII byte never merges with anything
            return;
        }
        if (length > MAX_CACHED_CHARS) {
            out.addAll(bytePairEncode(text, from, to));
            return;
        }
        int hash = 0;
        for (int i = from; i < to; i++) {
            hash = 31 * hash + text.charAt(i); // same as String.hashCode of the piece
        }
        int slot = (hash ^ (hash >>> 15)) & (CACHE_SLOTS - 1);
        CacheEntry entry = cache[slot];
        if (entry != null && entry.hash == hash && entry.key.length() == length
                && text.regionMatches(from, entry.key, 0, length)) {
            out.addAll(entry.ids);
            return;
        }
        int[] ids = bytePairEncode(text, from, to);
        cache[slot] = new CacheEntry(hash, text.substring(from, to), ids);
        out.addAll(ids);
    }

    /** UTF-8 bytes of the piece -> byte-level symbol ids -> merged ids. */
    private int[] bytePairEncode(String text, int from, int to) {
        int[] sym = new int[(to - from) * 3];
        int n = 0;
        for (int i = from; i < to; i++) {
            int c = text.charAt(i);
            if (c < 0x80) {
                sym[n++] = byteToId[c];
                continue;
            }
            if (Character.isHighSurrogate((char) c) && i + 1 < to && Character.isLowSurrogate(text.charAt(i + 1))) {
                c = Character.toCodePoint((char) c, text.charAt(++i));
            } else if (Character.isSurrogate((char) c)) {
                c = Utf8Lossy.REPLACEMENT; // a lone surrogate has no UTF-8 form; Rust would see U+FFFD
            }
            if (c < 0x800) {
                sym[n++] = byteToId[0xC0 | (c >>> 6)];
            } else if (c < 0x10000) {
                sym[n++] = byteToId[0xE0 | (c >>> 12)];
                sym[n++] = byteToId[0x80 | ((c >>> 6) & 0x3F)];
            } else {
                sym[n++] = byteToId[0xF0 | (c >>> 18)];
                sym[n++] = byteToId[0x80 | ((c >>> 12) & 0x3F)];
                sym[n++] = byteToId[0x80 | ((c >>> 6) & 0x3F)];
            }
            sym[n++] = byteToId[0x80 | (c & 0x3F)];
        }
        if (ignoreMerges) {
            Integer whole = vocab.get(symbolsToText(sym, n));
            if (whole != null) {
                return new int[] {whole};
            }
        }
        n = BytePairMerger.merge(merges, sym, n);
        return Arrays.copyOf(sym, n);
    }

    private String symbolsToText(int[] sym, int n) {
        StringBuilder sb = new StringBuilder(n);
        for (int i = 0; i < n; i++) {
            sb.append(idToText[sym[i]]);
        }
        return sb.toString();
    }

    /**
     * Decodes like HF {@code decode(ids, skip_special_tokens=false)}: token bytes are joined and
     * read as UTF-8 with each maximal invalid subpart replaced by one U+FFFD; special tokens give
     * their text.
     *
     * @throws BtlmException if an id is outside the vocabulary
     */
    public String decode(int[] ids) {
        if (ids == null) {
            throw new BtlmException("cannot decode null ids");
        }
        int total = 0;
        for (int id : ids) {
            total += bytesOf(id).length;
        }
        byte[] all = new byte[total];
        int at = 0;
        for (int id : ids) {
            byte[] b = idToBytes[id];
            System.arraycopy(b, 0, all, at, b.length);
            at += b.length;
        }
        return Utf8Lossy.decode(all, 0, total);
    }

    /** Raw bytes of a token (a copy). */
    public byte[] tokenBytes(int id) {
        return bytesOf(id).clone();
    }

    /** The token as written in the vocabulary, e.g. "Ġthe" for " the"; for display. */
    public String tokenText(int id) {
        bytesOf(id);
        return idToText[id];
    }

    /** Number of ids, including added tokens: 50257 for GPT-2. */
    public int vocabSize() {
        return idToText.length;
    }

    /** Id of {@code <|endoftext|>} (50256 for GPT-2), or -1 if the vocabulary lacks it. */
    public int eosTokenId() {
        return eosTokenId;
    }

    public StreamingDecoder newStreamingDecoder() {
        return new StreamingDecoder(this);
    }

    /** The token's bytes, shared (callers must not modify); validates the id. */
    byte[] bytesOf(int id) {
        if (id < 0 || id >= idToBytes.length) {
            throw new BtlmException("token id " + id + " is outside the vocabulary (0.." + (idToBytes.length - 1) + ")");
        }
        byte[] b = idToBytes[id];
        if (b == null) {
            throw new BtlmException("token id " + id + " is not assigned in the vocabulary");
        }
        return b;
    }

    /** Growable int array; avoids boxing in the encode loop. */
    private static final class IntList {
        private int[] a;
        private int size;

        IntList(int capacity) {
            a = new int[Math.max(8, capacity)];
        }

        void add(int v) {
            if (size == a.length) {
                a = Arrays.copyOf(a, size * 2);
            }
            a[size++] = v;
        }

        void addAll(int[] vs) {
            if (size + vs.length > a.length) {
                a = Arrays.copyOf(a, Math.max(a.length * 2, size + vs.length));
            }
            System.arraycopy(vs, 0, a, size, vs.length);
            size += vs.length;
        }

        int[] toArray() {
            return Arrays.copyOf(a, size);
        }
    }
}
