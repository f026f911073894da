package org.btlm4j.cli;

import java.io.PrintWriter;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.btlm4j.ChatTemplate;
import org.btlm4j.server.OpenAiServer;
import org.btlm4j.server.ServerOptions;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "serve", description = "OpenAI-compatible HTTP server with continuous batching.",
        mixinStandardHelpOptions = true, sortOptions = false,
        footer = {"%nExample:%n  btlm serve -m models/btlm-demo --port 8080 --parallel 8%n"
                + "  curl -s localhost:8080/v1/completions -H 'Content-Type: application/json' "
                + "-d '{\"prompt\":\"And God said\",\"max_tokens\":16,\"temperature\":0}'",
            "%nLimits (every one has a safe default; a refused request gets an OpenAI-style JSON error):%n"
                + "  prompt over --max-prompt-tokens or the context, prompt + max_tokens over the context: 400%n"
                + "  max_tokens over --max-tokens-limit: 400 (without max_tokens: 16, or up to the limit for chat)%n"
                + "  more sequences than --parallel running + --queue waiting: 429 with Retry-After%n"
                + "  request body over --max-body: 413; at most 64 choices (prompts x n) per request%n"
                + "  a request running past --timeout ends with finish_reason \"length\" (still queued: 429)%n"
                + "  each running sequence holds a KV cache that grows with its length, up to the context"})
final class ServeCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @ArgGroup(exclusive = false, heading = "Model:%n")
    ModelOptions model = new ModelOptions();

    @Option(names = "--host", paramLabel = "ADDR", defaultValue = "127.0.0.1", description = "Address to listen on (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", paramLabel = "PORT", defaultValue = "8080", description = "TCP port; 0 picks a free one (default: ${DEFAULT-VALUE}).")
    int port;

    @Option(names = "--parallel", paramLabel = "N", defaultValue = "4", description = "Most sequences decoded together in one batch (default: ${DEFAULT-VALUE}).")
    int parallel;

    @Option(names = "--queue", paramLabel = "N", defaultValue = "64", description = "Most sequences waiting for a place; beyond: 429 (default: ${DEFAULT-VALUE}).")
    int queue;

    @Option(names = "--api-key", paramLabel = "KEY", description = "Require 'Authorization: Bearer KEY' (all but /health). Default: $BTLM_API_KEY, else none.")
    String apiKey;

    @Option(names = "--model-name", paramLabel = "NAME", description = "Model id reported by /v1/models (default: the model directory's name).")
    String modelName;

    @Option(names = "--max-prompt-tokens", paramLabel = "N", defaultValue = "0", description = "Longest prompt accepted, in tokens; 0: the context length (default: ${DEFAULT-VALUE}).")
    int maxPromptTokens;

    @Option(names = "--max-tokens-limit", paramLabel = "N", defaultValue = "2048", description = "Largest max_tokens accepted (default: ${DEFAULT-VALUE}).")
    int maxTokensLimit;

    @Option(names = "--max-body", paramLabel = "BYTES", defaultValue = "4194304", description = "Largest request body; 413 beyond (default: ${DEFAULT-VALUE}).")
    long maxBody;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "300", description = "Time limit of one request, queueing included; then it ends with what it has (default: ${DEFAULT-VALUE}).")
    long timeoutSeconds;

    @Option(names = "--prefill-chunk", paramLabel = "N", defaultValue = "128", description = "Prompt tokens read per batched step, shared by new requests (default: ${DEFAULT-VALUE}).")
    int prefillChunk;

    @Option(names = "--prompt-cache-entries", paramLabel = "N", defaultValue = "4", description = "KV caches of finished requests kept so that a later prompt sharing their prefix (chat turns, few-shot blocks) reads only the rest; 0: none (default: ${DEFAULT-VALUE}).")
    int promptCacheEntries;

    @Option(names = "--prompt-cache-mib", paramLabel = "MIB", defaultValue = "1024", description = "Most memory those kept caches hold together, in MiB (default: ${DEFAULT-VALUE}).")
    long promptCacheMib;

    @Option(names = "--chat-message", paramLabel = "FORMAT", defaultValue = "{role}: {content}\\n", description = "How each chat message is written; {content} is the text, {role} System, User, Assistant (other roles as sent) (default: '{role}: {content}\\n').")
    String chatMessage;

    @Option(names = "--chat-reply-prefix", paramLabel = "TEXT", defaultValue = "Assistant:", description = "Text that opens the assistant's turn (default: ${DEFAULT-VALUE}).")
    String chatReplyPrefix;

    @Option(names = "--chat-stop", paramLabel = "TEXT", split = "\\|\\|", description = "Chat stop strings (repeatable; default: '\\nUser:', '\\nSystem:' and '\\nAssistant:').")
    List<String> chatStops;

    @Option(names = "--shutdown-grace", paramLabel = "SECONDS", defaultValue = "10", description = "On Ctrl-C, time running requests get to finish (default: ${DEFAULT-VALUE}).")
    long graceSeconds;

    @Override
    public Integer call() throws InterruptedException {
        PrintWriter err = spec.commandLine().getErr();
        String key = apiKey != null ? apiKey : System.getenv("BTLM_API_KEY");
        String name = modelName;
        if (name == null) {
            // the last part of -m: a directory's or file's name, or a Hub id's name (org/name@rev)
            String m = model.model == null ? "" : model.model.replaceAll("[/\\\\]+$", "");
            String last = m.substring(Math.max(m.lastIndexOf('/'), m.lastIndexOf('\\')) + 1);
            name = last.isEmpty() ? "btlm" : last;
        }
        ChatTemplate template = new ChatTemplate(unescape(chatMessage), ChatTemplate.transcript().roleNames(),
                unescape(chatReplyPrefix), chatStops == null ? ChatTemplate.transcript().stops() : chatStops.stream().map(ServeCommand::unescape).toList());
        ServerOptions options = new ServerOptions(host, port, name, key == null || key.isEmpty() ? null : key, parallel,
                queue, maxPromptTokens, maxTokensLimit, maxBody, Duration.ofSeconds(timeoutSeconds), prefillChunk,
                template, promptCacheEntries, promptCacheMib << 20);
        OpenAiServer server = OpenAiServer.start(options, () -> model.load(err));
        err.println("btlm: listening on http://" + host + ":" + server.port() + " (loading the model; /health says "
                + "when it is ready)");
        try {
            server.awaitReady();
        } catch (RuntimeException e) {
            server.stop(0);
            throw e;
        }
        err.println("btlm: ready — " + parallel + " parallel sequences" + (options.apiKey() != null ? ", API key required" : ""));
        err.flush();
        // Ctrl-C or SIGTERM: the JVM runs this hook and then exits; the command itself never returns
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            err.println("btlm: stopping (running requests get " + graceSeconds + " s to finish)");
            err.flush();
            server.stop(graceSeconds * 1000);
        }));
        new CountDownLatch(1).await();
        return 0;
    }

    /** {@code \n} and {@code \t} as typed on a command line become the characters. */
    static String unescape(String s) {
        return s.replace("\\n", "\n").replace("\\t", "\t");
    }
}
