package org.btlm4j.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.javalin.Javalin;
import io.javalin.http.Context;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import org.btlm4j.FinishReason;
import org.btlm4j.GenerationParams;
import org.btlm4j.GenerationResult;
import org.btlm4j.tokenizer.Gpt2Tokenizer;
import org.btlm4j.tokenizer.StreamingDecoder;

/**
 * The OpenAI-compatible HTTP server: {@code /v1/completions}, {@code /v1/chat/completions},
 * {@code /v1/models}, {@code /tokenize}, {@code /detokenize}, {@code /health}, {@code /metrics}.
 *
 * <p>HTTP is Javalin (on Jetty 12): a small, actively released library whose handlers are plain
 * blocking Java, which suits a server whose every request waits on one batching thread anyway; it
 * runs handlers on virtual threads, so a thousand waiting streams cost no platform threads, and it
 * brings no framework, injection or annotation processing (Helidon SE would do as well, at the
 * price of its own reactive-free but larger API surface; Vert.x would push callbacks everywhere).
 *
 * <p>The server listens at once and loads the model in the background: {@code /health} answers 503
 * until it is ready, and so do the model endpoints.
 */
public final class OpenAiServer implements AutoCloseable {
    private final ServerOptions options;
    private final Metrics metrics = new Metrics();
    private final Javalin app;
    private final byte[] apiKey;
    private final Thread loader;
    private volatile BtlmModel model;
    private volatile BatchEngine engine;
    private volatile String loadError;
    private volatile boolean stopping;

    private OpenAiServer(ServerOptions options, Supplier<BtlmModel> load) {
        this.options = options;
        this.apiKey = options.apiKey() == null ? null : options.apiKey().getBytes(StandardCharsets.UTF_8);
        this.app = Javalin.create(cfg -> {
            cfg.jetty.host = options.host();
            cfg.jetty.port = options.port();
            cfg.http.maxRequestSize = options.maxBodyBytes();
            cfg.concurrency.useVirtualThreads = true;
            cfg.startup.showJavalinBanner = false;
            cfg.startup.showOldJavalinVersionWarning = false;
            cfg.routes.before(this::admit);
            cfg.routes.get("/health", this::health);
            cfg.routes.get("/metrics", ctx -> ctx.contentType("text/plain; version=0.0.4").result(
                    metrics.prometheus(engine)));
            cfg.routes.get("/v1/models", this::models);
            cfg.routes.post("/v1/completions", this::completions);
            cfg.routes.post("/v1/chat/completions", this::chat);
            cfg.routes.post("/tokenize", this::tokenize);
            cfg.routes.post("/detokenize", this::detokenize);
            cfg.routes.exception(ApiException.class, (e, ctx) -> error(ctx, e));
            cfg.routes.exception(Exception.class, (e, ctx) -> error(ctx, new ApiException(500, "server_error", null,
                    null, "internal error: " + e)));
            cfg.routes.error(404, ctx -> {
                if (ctx.result() == null || !ctx.result().startsWith("{\"error\"")) {
                    error(ctx, new ApiException(404, "invalid_request_error", null, "not_found", "no such endpoint: "
                            + ctx.method() + " " + ctx.path()));
                }
            });
            cfg.routes.error(405, ctx -> error(ctx, new ApiException(405, "invalid_request_error", null, null,
                    "method " + ctx.method() + " is not allowed on " + ctx.path())));
        });
        this.loader = Thread.ofPlatform().name("btlm-load").daemon(true).unstarted(() -> {
            try {
                BtlmModel m = load.get();
                model = m;
                engine = new BatchEngine(m, options, metrics);
            } catch (RuntimeException e) {
                loadError = e.getMessage();
            }
        });
    }

    /** Starts listening now and loads the model in the background. */
    public static OpenAiServer start(ServerOptions options, Supplier<BtlmModel> load) {
        OpenAiServer s = new OpenAiServer(options, load);
        s.app.start();
        s.loader.start();
        return s;
    }

    /** The port listened on (the chosen one when the options asked for 0). */
    public int port() {
        return app.port();
    }

    /** Waits until the model is loaded; a {@link BtlmException} if loading failed. */
    public void awaitReady() throws InterruptedException {
        loader.join();
        if (loadError != null) {
            throw new BtlmException(loadError);
        }
    }

    /**
     * Graceful stop: new requests get 503, running ones have {@code graceMillis} to finish (then they
     * end with what they have), then the listener closes and the model is released.
     */
    public void stop(long graceMillis) {
        stopping = true;
        try {
            loader.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        BatchEngine e = engine;
        if (e != null) {
            e.shutdown(graceMillis);
        }
        // every sequence has ended: let the handlers write their last chunks before the listener closes
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (metrics.inFlight.get() > 0 && System.nanoTime() < until) {
            try {
                Thread.sleep(10);
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        app.stop();
        if (model != null) {
            model.close();
        }
    }

    @Override
    public void close() {
        stop(0);
    }

    // ---- plumbing ---------------------------------------------------------------------------

    private void admit(Context ctx) {
        metrics.requests.incrementAndGet();
        if (apiKey != null && !ctx.path().equals("/health")) {
            String h = ctx.header("Authorization");
            byte[] given = h != null && h.startsWith("Bearer ") ? h.substring(7).trim().getBytes(StandardCharsets.UTF_8)
                    : new byte[0];
            if (!MessageDigest.isEqual(given, apiKey)) {
                throw new ApiException(401, "invalid_request_error", null, "invalid_api_key",
                        "a valid API key is required: Authorization: Bearer KEY");
            }
        }
    }

    private void error(Context ctx, ApiException e) {
        ctx.result(errorHead(ctx, e));
    }

    /** Counts the error, sets its status and headers; returns its JSON body. */
    private String errorHead(Context ctx, ApiException e) {
        if (e.status() >= 400 && e.status() < 500) {
            metrics.rejected.incrementAndGet();
        }
        if (e.status() == 429) {
            metrics.busy.incrementAndGet();
            ctx.header("Retry-After", "1");
        }
        ctx.status(e.status()).contentType("application/json");
        return json(e.body());
    }

    /**
     * Writes a whole JSON answer now, inside the handler, rather than after it returns: a graceful
     * stop waits for the completion handlers only, and must not close the listener under an answer
     * not yet written.
     */
    private static void writeNow(Context ctx, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ctx.res().setContentType("application/json");
        ctx.res().setContentLength(b.length);
        OutputStream out = ctx.res().getOutputStream();
        out.write(b);
        out.flush();
    }

    static String json(Object o) {
        try {
            return Requests.JSON.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write JSON", e);
        }
    }

    /**
     * Bytes past the body limit that are still read (and dropped) before the 413 is sent: a client
     * writes its whole body before it reads the answer, and a connection closed on unread bytes is
     * reset, which can destroy the 413 on its way, so that the client sees no answer at all.
     */
    static final long DRAIN_BYTES = 16L << 20;

    /** The body, at most maxBodyBytes (413 beyond, after dropping at most {@link #DRAIN_BYTES} more). */
    private byte[] body(Context ctx) {
        long declared = ctx.req().getContentLengthLong();
        try (InputStream in = ctx.req().getInputStream()) {
            if (declared > options.maxBodyBytes()) {
                if (declared <= options.maxBodyBytes() + DRAIN_BYTES) {
                    drain(in, declared);
                }
                throw tooLarge();
            }
            byte[] b = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, options.maxBodyBytes() + 1));
            if (b.length > options.maxBodyBytes()) {
                drain(in, options.maxBodyBytes() + DRAIN_BYTES - b.length);
                throw tooLarge();
            }
            return b;
        } catch (IOException e) {
            throw ApiException.invalid(null, "the request body could not be read: " + e.getMessage());
        }
    }

    /** Reads and drops at most {@code limit} bytes, up to the end of the body. */
    private static void drain(InputStream in, long limit) throws IOException {
        byte[] buffer = new byte[64 << 10];
        for (long left = limit; left > 0; ) {
            int n = in.read(buffer, 0, (int) Math.min(buffer.length, left));
            if (n < 0) {
                return;
            }
            left -= n;
        }
    }

    private ApiException tooLarge() {
        return new ApiException(413, "invalid_request_error", null, "request_too_large",
                "the request body exceeds this server's limit of " + options.maxBodyBytes() + " bytes");
    }

    private BtlmModel ready() {
        if (stopping) {
            throw new ApiException(503, "server_error", null, "shutting_down", "the server is shutting down");
        }
        BtlmModel m = model;
        if (m == null || engine == null) {
            throw new ApiException(503, "server_error", null, "model_loading",
                    loadError != null ? "the model failed to load: " + loadError : "the model is still loading");
        }
        return m;
    }

    private Gpt2Tokenizer tokenizer(BtlmModel m) {
        if (!m.hasTokenizer()) {
            throw ApiException.invalid("prompt", "this model has no tokenizer: give prompts as token ids");
        }
        return m.tokenizer();
    }

    // ---- small endpoints --------------------------------------------------------------------

    private void health(Context ctx) {
        if (model == null || engine == null) {
            ctx.status(503).contentType("application/json").result(json(Map.of("status",
                    loadError != null ? "error: " + loadError : "loading")));
            return;
        }
        ctx.status(stopping ? 503 : 200).contentType("application/json")
                .result(json(Map.of("status", stopping ? "stopping" : "ok")));
    }

    private void models(Context ctx) {
        BtlmModel m = ready();
        Map<String, Object> entry = new LinkedHashMap<>();
        entry.put("id", options.modelName());
        entry.put("object", "model");
        entry.put("created", 0);
        entry.put("owned_by", "btlm4j");
        entry.put("context_length", m.contextLength());
        ctx.contentType("application/json").result(json(Map.of("object", "list", "data", List.of(entry))));
    }

    private void tokenize(Context ctx) {
        BtlmModel m = ready();
        Requests.Tokenize r = Requests.tokenize(body(ctx));
        int[] ids = tokenizer(m).encode(r.content());
        ctx.contentType("application/json").result(json(Map.of("tokens", ids)));
    }

    private void detokenize(Context ctx) {
        BtlmModel m = ready();
        Requests.Detokenize r = Requests.detokenize(body(ctx));
        checkIds(m, r.tokens(), "tokens");
        ctx.contentType("application/json").result(json(Map.of("content", tokenizer(m).decode(r.tokens()))));
    }

    private static void checkIds(BtlmModel m, int[] ids, String param) {
        int vocab = m.config().vocabSize();
        for (int id : ids) {
            if (id >= vocab) {
                throw ApiException.invalid(param, "token id " + id + " is outside the vocabulary (0.." + (vocab - 1) + ")");
            }
        }
    }

    // ---- completions ------------------------------------------------------------------------

    /** The token ids of a prompt, checked against the context and the limits. */
    private int[] promptIds(BtlmModel m, Requests.Prompt p, Requests.Sampling s) {
        int[] ids = p.ids() != null ? p.ids() : tokenizer(m).encode(p.text());
        if (ids.length == 0) {
            throw ApiException.invalid("prompt", "the prompt is empty: it has no tokens");
        }
        checkIds(m, ids, "prompt");
        int limit = options.maxPromptTokens() == 0 ? m.contextLength() : Math.min(options.maxPromptTokens(),
                m.contextLength());
        if (ids.length > limit) {
            throw new ApiException(400, "invalid_request_error", "prompt", "context_length_exceeded", "the prompt has "
                    + ids.length + " tokens; this server takes at most " + limit);
        }
        if (s.maxTokens() >= 0 && (long) ids.length + s.maxTokens() > m.contextLength()) {
            throw new ApiException(400, "invalid_request_error", "max_tokens", "context_length_exceeded",
                    "the prompt's " + ids.length + " tokens plus max_tokens " + s.maxTokens() + " exceed the context of "
                            + m.contextLength() + " tokens");
        }
        return ids;
    }

    private GenerationParams params(BtlmModel m, Requests.Sampling s, int promptLength, List<String> extraStops) {
        int maxTokens = s.maxTokens() >= 0 ? s.maxTokens()
                : Math.min(options.maxTokensLimit(), m.contextLength() - promptLength);
        List<String> stops = new ArrayList<>(s.stop());
        stops.addAll(extraStops);
        try {
            return new GenerationParams(maxTokens, s.temperature(), s.topK(), s.topP(), s.minP(),
                    s.repetitionPenalty(), s.seed(), stops, s.ignoreEos());
        } catch (BtlmException e) {
            throw ApiException.invalid(null, e.getMessage());
        }
    }

    private void completions(Context ctx) throws IOException, InterruptedException {
        BtlmModel m = ready();
        Requests.Completion r = Requests.completion(body(ctx), options.maxTokensLimit());
        Requests.Sampling s = r.sampling();
        List<BatchEngine.Spec> specs = new ArrayList<>();
        List<int[]> prompts = new ArrayList<>();
        for (Requests.Prompt p : r.prompts()) {
            int[] ids = promptIds(m, p, s);
            for (int k = 0; k < s.n(); k++) {
                prompts.add(ids);
                specs.add(new BatchEngine.Spec(ids, params(m, s, ids.length, List.of()),
                        r.logprobs() == null ? -1 : r.logprobs(), r.echo() && r.logprobs() != null));
            }
        }
        Call call = new Call("cmpl-", "text_completion", m, prompts, r.logprobs(), r.echo());
        run(ctx, call, specs, s);
    }

    private void chat(Context ctx) throws IOException, InterruptedException {
        BtlmModel m = ready();
        Requests.Chat r = Requests.chat(body(ctx), options.maxTokensLimit());
        Requests.Sampling s = r.sampling();
        String prompt = options.chatTemplate().render(r.messages());
        int[] ids = promptIds(m, new Requests.Prompt(prompt, null), s);
        List<BatchEngine.Spec> specs = new ArrayList<>();
        List<int[]> prompts = new ArrayList<>();
        for (int k = 0; k < s.n(); k++) {
            prompts.add(ids);
            specs.add(new BatchEngine.Spec(ids, params(m, s, ids.length, options.chatTemplate().stops()), -1, false));
        }
        run(ctx, new Call("chatcmpl-", "chat.completion", m, prompts, null, false), specs, s);
    }

    /** One completion request in flight: what is known of each choice. */
    private final class Call {
        final String id;
        final String object;
        final boolean isChat;
        final long created = System.currentTimeMillis() / 1000;
        final BtlmModel model;
        final List<int[]> prompts;
        final Integer logprobs;
        final boolean echo;
        final StringBuilder[] text;
        final List<List<BatchEngine.TokenLogprob>> genLogprobs = new ArrayList<>();
        final BatchEngine.Done[] done;
        final boolean[] promptSent;
        final List<List<BatchEngine.TokenLogprob>> promptLogprobs = new ArrayList<>();

        Call(String prefix, String object, BtlmModel model, List<int[]> prompts, Integer logprobs, boolean echo) {
            this.id = prefix + UUID.randomUUID().toString().replace("-", "");
            this.object = object;
            this.isChat = object.startsWith("chat");
            this.model = model;
            this.prompts = prompts;
            this.logprobs = logprobs;
            this.echo = echo;
            int n = prompts.size();
            this.text = new StringBuilder[n];
            this.done = new BatchEngine.Done[n];
            this.promptSent = new boolean[n];
            for (int i = 0; i < n; i++) {
                text[i] = new StringBuilder();
                genLogprobs.add(new ArrayList<>());
                promptLogprobs.add(List.of());
            }
        }

        Map<String, Object> head(String obj) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("id", id);
            o.put("object", obj);
            o.put("created", created);
            o.put("model", options.modelName());
            return o;
        }

        String promptText(int choice) {
            return model.hasTokenizer() ? model.tokenizer().decode(prompts.get(choice)) : "";
        }

        String tokenText(int id) {
            return model.hasTokenizer() ? new String(model.tokenizer().tokenBytes(id), StandardCharsets.UTF_8) : "";
        }

        /** OpenAI's legacy logprobs object for {@code tokens} (null entries where there is no value). */
        Map<String, Object> logprobsObject(List<Integer> tokens, List<BatchEngine.TokenLogprob> lps, boolean firstNull,
                int offset0) {
            List<String> strings = new ArrayList<>();
            List<Object> values = new ArrayList<>();
            List<Object> tops = new ArrayList<>();
            List<Integer> offsets = new ArrayList<>();
            StreamingDecoder decoder = model.hasTokenizer() ? model.tokenizer().newStreamingDecoder() : null;
            int offset = offset0;
            for (int t = 0; t < tokens.size(); t++) {
                strings.add(tokenText(tokens.get(t)));
                offsets.add(offset);
                if (decoder != null) {
                    offset += decoder.accept(tokens.get(t)).length();
                }
                int k = firstNull ? t - 1 : t;
                if (k < 0 || k >= lps.size()) {
                    values.add(null);
                    tops.add(null);
                } else {
                    BatchEngine.TokenLogprob lp = lps.get(k);
                    values.add(lp.logprob());
                    Map<String, Double> top = new LinkedHashMap<>();
                    for (int i = 0; i < lp.topIds().length; i++) {
                        top.putIfAbsent(tokenText(lp.topIds()[i]), lp.topLogprobs()[i]);
                    }
                    tops.add(top);
                }
            }
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("tokens", strings);
            o.put("token_logprobs", values);
            o.put("top_logprobs", tops);
            o.put("text_offset", offsets);
            return o;
        }

        static List<Integer> list(int[] a) {
            List<Integer> l = new ArrayList<>(a.length);
            for (int v : a) {
                l.add(v);
            }
            return l;
        }

        Map<String, Object> usage() {
            long promptTokens = 0;
            long completion = 0;
            for (int i = 0; i < done.length; i++) {
                promptTokens += prompts.get(i).length;
                completion += done[i] == null ? 0 : done[i].result().tokenIds().length;
            }
            Map<String, Object> u = new LinkedHashMap<>();
            u.put("prompt_tokens", promptTokens);
            u.put("completion_tokens", completion);
            u.put("total_tokens", promptTokens + completion);
            return u;
        }

        Map<String, Object> timings() {
            double promptMs = 0;
            double totalMs = 0;
            long generated = 0;
            long read = 0;
            for (int i = 0; i < done.length; i++) {
                if (done[i] != null) {
                    promptMs = Math.max(promptMs, done[i].promptNanos() / 1e6);
                    totalMs = Math.max(totalMs, done[i].totalNanos() / 1e6);
                    generated += done[i].result().tokenIds().length;
                    read += prompts.get(i).length;
                }
            }
            double predictedMs = Math.max(0, totalMs - promptMs);
            Map<String, Object> t = new LinkedHashMap<>();
            t.put("prompt_n", read);
            t.put("prompt_ms", promptMs);
            t.put("prompt_per_second", promptMs > 0 ? read / (promptMs / 1e3) : null);
            t.put("predicted_n", generated);
            t.put("predicted_ms", predictedMs);
            t.put("predicted_per_second", predictedMs > 0 ? generated / (predictedMs / 1e3) : null);
            return t;
        }

        static String finish(FinishReason r) {
            return r == FinishReason.LENGTH ? "length" : "stop";
        }

        /** The whole answer, once every choice is done. */
        Map<String, Object> response() {
            Map<String, Object> o = head(object);
            List<Object> choices = new ArrayList<>();
            for (int i = 0; i < done.length; i++) {
                GenerationResult res = done[i].result();
                Map<String, Object> c = new LinkedHashMap<>();
                c.put("index", i);
                if (isChat) {
                    c.put("message", Map.of("role", "assistant", "content", res.text()));
                    c.put("logprobs", null);
                } else {
                    String prefix = echo ? promptText(i) : "";
                    c.put("text", prefix + res.text());
                    c.put("logprobs", logprobs == null ? null : fullLogprobs(i, res));
                }
                c.put("finish_reason", finish(res.finishReason()));
                choices.add(c);
            }
            o.put("choices", choices);
            o.put("usage", usage());
            o.put("timings", timings());
            return o;
        }

        Map<String, Object> fullLogprobs(int i, GenerationResult res) {
            List<Integer> tokens = new ArrayList<>();
            List<BatchEngine.TokenLogprob> lps = new ArrayList<>();
            if (echo) {
                tokens.addAll(list(prompts.get(i)));
                lps.addAll(promptLogprobs.get(i));
            }
            List<Integer> gen = list(res.tokenIds());
            tokens.addAll(gen);
            lps.addAll(genLogprobs.get(i));
            return logprobsObject(tokens, lps, echo, 0);
        }

        Map<String, Object> chunk(int choice, String piece, Map<String, Object> lp, String finish, boolean first) {
            Map<String, Object> o = head(isChat ? "chat.completion.chunk" : "text_completion");
            Map<String, Object> c = new LinkedHashMap<>();
            c.put("index", choice);
            if (isChat) {
                Map<String, Object> delta = new LinkedHashMap<>();
                if (first) {
                    delta.put("role", "assistant");
                }
                if (piece != null) {
                    delta.put("content", piece);
                }
                c.put("delta", delta);
                c.put("logprobs", null);
            } else {
                c.put("text", piece == null ? "" : piece);
                c.put("logprobs", lp);
            }
            c.put("finish_reason", finish);
            o.put("choices", List.of(c));
            return o;
        }
    }

    private void run(Context ctx, Call call, List<BatchEngine.Spec> specs, Requests.Sampling s)
            throws IOException, InterruptedException {
        metrics.inFlight.incrementAndGet();
        try {
            answer(ctx, call, specs, s);
        } catch (ApiException e) {
            if (ctx.res().isCommitted()) {
                throw e;
            }
            writeNow(ctx, errorHead(ctx, e));
        } finally {
            metrics.inFlight.decrementAndGet();
        }
    }

    private void answer(Context ctx, Call call, List<BatchEngine.Spec> specs, Requests.Sampling s)
            throws IOException, InterruptedException {
        BatchEngine e = engine;
        long timeout = options.requestTimeout().toNanos();
        BatchEngine.Ticket ticket = e.submit(specs, System.nanoTime() + timeout);
        long giveUp = System.nanoTime() + timeout + TimeUnit.SECONDS.toNanos(30);
        int remaining = specs.size();
        try {
            if (!s.stream()) {
                while (remaining > 0) {
                    BatchEngine.Event ev = next(ticket, giveUp);
                    switch (ev) {
                        case BatchEngine.PromptRead p -> call.promptLogprobs.set(p.choice(), p.promptLogprobs());
                        case BatchEngine.Text t -> {
                            call.text[t.choice()].append(t.text());
                            call.genLogprobs.get(t.choice()).addAll(t.logprobs());
                        }
                        case BatchEngine.Done d -> {
                            call.done[d.choice()] = d;
                            remaining--;
                        }
                        case BatchEngine.Failed f -> throw f.error();
                    }
                }
                ctx.status(200);
                writeNow(ctx, json(call.response()));
                return;
            }
            // a request that fails before its first event (refused from the queue) still gets its status
            BatchEngine.Event first = next(ticket, giveUp);
            if (first instanceof BatchEngine.Failed f) {
                throw f.error();
            }
            ctx.status(200);
            ctx.res().setContentType("text/event-stream");
            ctx.res().setCharacterEncoding("utf-8");
            ctx.res().setHeader("Cache-Control", "no-cache");
            OutputStream out = ctx.res().getOutputStream();
            int[] textOffset = new int[specs.size()];
            while (remaining > 0) {
                BatchEngine.Event ev = first != null ? first : next(ticket, giveUp);
                first = null;
                switch (ev) {
                    case BatchEngine.PromptRead p -> {
                        int i = p.choice();
                        if (call.isChat) {
                            send(out, call.chunk(i, "", null, null, true));
                        } else if (call.echo) {
                            String prompt = call.promptText(i);
                            Map<String, Object> lp = call.logprobs == null ? null : call.logprobsObject(
                                    Call.list(call.prompts.get(i)), p.promptLogprobs(), true, 0);
                            send(out, call.chunk(i, prompt, lp, null, true));
                            textOffset[i] = prompt.length();
                        }
                    }
                    case BatchEngine.Text t -> {
                        int i = t.choice();
                        Map<String, Object> lp = null;
                        if (call.logprobs != null) {
                            List<Integer> ids = new ArrayList<>();
                            t.logprobs().forEach(x -> ids.add(x.token()));
                            lp = call.logprobsObject(ids, t.logprobs(), false, textOffset[i]);
                        }
                        textOffset[i] += t.text().length();
                        send(out, call.chunk(i, t.text(), lp, null, false));
                    }
                    case BatchEngine.Done d -> {
                        call.done[d.choice()] = d;
                        remaining--;
                        send(out, call.chunk(d.choice(), call.isChat ? null : "", null,
                                Call.finish(d.result().finishReason()), false));
                    }
                    case BatchEngine.Failed f -> {
                        send(out, f.error().body());
                        remaining = 0;
                        call.done[f.choice()] = null;
                        ticket.cancel();
                        out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
                        out.flush();
                        return;
                    }
                }
            }
            if (s.includeUsage()) {
                Map<String, Object> u = call.head(call.isChat ? "chat.completion.chunk" : "text_completion");
                u.put("choices", List.of());
                u.put("usage", call.usage());
                u.put("timings", call.timings());
                send(out, u);
            }
            out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
            out.flush();
        } catch (IOException | RuntimeException | InterruptedException ex) {
            ticket.cancel(); // the client went away (or we failed): free its sequences now
            throw ex;
        } finally {
            if (remaining > 0) {
                ticket.cancel();
            }
        }
    }

    private static BatchEngine.Event next(BatchEngine.Ticket ticket, long giveUp) throws InterruptedException {
        BatchEngine.Event ev = ticket.events.poll(Math.max(1, giveUp - System.nanoTime()), TimeUnit.NANOSECONDS);
        if (ev == null) {
            throw new ApiException(504, "server_error", null, "timeout", "the request took too long");
        }
        return ev;
    }

    private static void send(OutputStream out, Object chunk) throws IOException {
        out.write(("data: " + json(chunk) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }
}
