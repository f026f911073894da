package org.btlm4j.server;

import java.time.Duration;
import org.btlm4j.BtlmException;
import org.btlm4j.ChatTemplate;

/**
 * How the server listens and what it allows: every limit has a safe default, so that no client can
 * make the server hold unbounded memory or time.
 *
 * @param host                 address to listen on (loopback by default)
 * @param port                 TCP port (0: any free port)
 * @param modelName            the id {@code /v1/models} reports and responses carry
 * @param apiKey               null: no authentication; else every endpoint but {@code /health}
 *                             needs {@code Authorization: Bearer KEY}
 * @param parallel             most sequences decoded together (each choice of each request is one)
 * @param queueLength          most sequences waiting for a place; beyond that: 429
 * @param maxPromptTokens      most prompt tokens per sequence (0: the model's context)
 * @param maxTokensLimit       the largest {@code max_tokens} accepted
 * @param maxBodyBytes         the largest request body accepted (413 beyond)
 * @param requestTimeout       a request that takes longer is ended: generation stops with finish
 *                             reason {@code length}, a request still waiting gets 429
 * @param prefillChunk         most prompt tokens run per step, shared by the prompts being read,
 *                             so that a long prompt delays the other sequences' next token by one
 *                             bounded step only
 * @param chatTemplate         how chat messages become a prompt (null: {@link ChatTemplate#transcript()})
 * @param promptCacheEntries   most KV caches of finished sequences kept for a later prompt sharing
 *                             their prefix (0: none)
 * @param promptCacheBytes     most bytes those kept caches may hold together
 */
public record ServerOptions(String host, int port, String modelName, String apiKey, int parallel, int queueLength,
        int maxPromptTokens, int maxTokensLimit, long maxBodyBytes, Duration requestTimeout, int prefillChunk,
        ChatTemplate chatTemplate, int promptCacheEntries, long promptCacheBytes) {

    /** Without prompt-cache settings: the default pool (4 entries, 1 GiB). */
    public ServerOptions(String host, int port, String modelName, String apiKey, int parallel, int queueLength,
            int maxPromptTokens, int maxTokensLimit, long maxBodyBytes, Duration requestTimeout, int prefillChunk,
            ChatTemplate chatTemplate) {
        this(host, port, modelName, apiKey, parallel, queueLength, maxPromptTokens, maxTokensLimit, maxBodyBytes,
                requestTimeout, prefillChunk, chatTemplate, 4, 1L << 30);
    }

    public ServerOptions {
        if (port < 0 || port > 65535) {
            throw new BtlmException("port must be in 0..65535, got " + port);
        }
        if (parallel < 1) {
            throw new BtlmException("--parallel must be at least 1, got " + parallel);
        }
        if (queueLength < 0) {
            throw new BtlmException("--queue must be 0 or more, got " + queueLength);
        }
        if (maxPromptTokens < 0) {
            throw new BtlmException("--max-prompt-tokens must be 0 (the context) or more, got " + maxPromptTokens);
        }
        if (maxTokensLimit < 0) {
            throw new BtlmException("--max-tokens-limit must be 0 or more, got " + maxTokensLimit);
        }
        if (maxBodyBytes < 1024) {
            throw new BtlmException("--max-body must be at least 1024 bytes, got " + maxBodyBytes);
        }
        if (requestTimeout == null || requestTimeout.isNegative() || requestTimeout.isZero()) {
            throw new BtlmException("--timeout (the request time limit) must be positive, got " + requestTimeout);
        }
        if (prefillChunk < 1) {
            throw new BtlmException("--prefill-chunk must be at least 1, got " + prefillChunk);
        }
        if (promptCacheEntries < 0) {
            throw new BtlmException("--prompt-cache-entries must be 0 (none) or more, got " + promptCacheEntries);
        }
        if (promptCacheBytes < 0) {
            throw new BtlmException("--prompt-cache-mib must be 0 or more, got " + promptCacheBytes + " bytes");
        }
        if (chatTemplate == null) {
            chatTemplate = ChatTemplate.transcript();
        }
        if (modelName == null || modelName.isBlank()) {
            modelName = "btlm";
        }
    }

    /** Loopback, port 8080, 4 parallel sequences, a queue of 64, 4 MiB bodies, 5 minutes a request. */
    public static ServerOptions defaults() {
        return new ServerOptions("127.0.0.1", 8080, "btlm", null, 4, 64, 0, 2048, 4L << 20, Duration.ofMinutes(5),
                128, ChatTemplate.transcript());
    }

    public ServerOptions withPort(int p) {
        return new ServerOptions(host, p, modelName, apiKey, parallel, queueLength, maxPromptTokens, maxTokensLimit,
                maxBodyBytes, requestTimeout, prefillChunk, chatTemplate, promptCacheEntries,
                promptCacheBytes);
    }

    public ServerOptions withApiKey(String key) {
        return new ServerOptions(host, port, modelName, key, parallel, queueLength, maxPromptTokens, maxTokensLimit,
                maxBodyBytes, requestTimeout, prefillChunk, chatTemplate, promptCacheEntries,
                promptCacheBytes);
    }

    public ServerOptions withParallel(int n, int queue) {
        return new ServerOptions(host, port, modelName, apiKey, n, queue, maxPromptTokens, maxTokensLimit,
                maxBodyBytes, requestTimeout, prefillChunk, chatTemplate, promptCacheEntries,
                promptCacheBytes);
    }

    public ServerOptions withLimits(int promptTokens, int maxTokens, long bodyBytes, Duration timeout) {
        return new ServerOptions(host, port, modelName, apiKey, parallel, queueLength, promptTokens, maxTokens,
                bodyBytes, timeout, prefillChunk, chatTemplate, promptCacheEntries,
                promptCacheBytes);
    }

    public ServerOptions withPromptCache(int entries, long bytes) {
        return new ServerOptions(host, port, modelName, apiKey, parallel, queueLength, maxPromptTokens, maxTokensLimit,
                maxBodyBytes, requestTimeout, prefillChunk, chatTemplate, entries, bytes);
    }

    public ServerOptions withModelName(String name) {
        return new ServerOptions(host, port, name, apiKey, parallel, queueLength, maxPromptTokens, maxTokensLimit,
                maxBodyBytes, requestTimeout, prefillChunk, chatTemplate, promptCacheEntries,
                promptCacheBytes);
    }
}
