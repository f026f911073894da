package org.btlm4j.tokenizer;

/**
 * A token that HF matches verbatim in the input before pre-tokenization (e.g. "<|endoftext|>").
 * {@code lstrip}/{@code rstrip} make a match swallow neighbouring whitespace, as in HF.
 */
record AddedToken(int id, String content, boolean special, boolean lstrip, boolean rstrip) {
}
