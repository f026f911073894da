package org.btlm4j.langchain4j;

import dev.langchain4j.model.StreamingResponseHandler;
import dev.langchain4j.model.language.LanguageModel;
import dev.langchain4j.model.language.StreamingLanguageModel;
import dev.langchain4j.model.output.Response;
import java.util.Objects;
import org.btlm4j.BtlmModel;
import org.btlm4j.GenerationParams;
import org.btlm4j.GenerationResult;

/**
 * A LangChain4j {@link LanguageModel} and {@link StreamingLanguageModel}: plain text completion of a
 * prompt by a {@link BtlmModel}. The model stays owned by the caller (close it when done); one
 * instance may be used by several threads.
 *
 * <p>Streaming runs on the calling thread: the handler sees every piece of text, then the complete
 * response, before {@code generate} returns.
 */
public final class BtlmLanguageModel implements LanguageModel, StreamingLanguageModel {
    private final BtlmModel model;
    private final GenerationParams params;

    /**
     * @param model  the loaded model
     * @param params how to generate (sampling, token limit, stop strings)
     */
    public BtlmLanguageModel(BtlmModel model, GenerationParams params) {
        this.model = Objects.requireNonNull(model, "model");
        this.params = Objects.requireNonNull(params, "params");
    }

    /** Completes {@code prompt} with the model's default generation settings ({@link GenerationParams#defaults()}). */
    public BtlmLanguageModel(BtlmModel model) {
        this(model, GenerationParams.defaults());
    }

    /** The text generated after {@code prompt}, with token counts and why it ended. */
    @Override
    public Response<String> generate(String prompt) {
        GenerationResult r = model.generate(prompt, params);
        return Response.from(r.text(), Requests.usage(r), Requests.finishReason(r));
    }

    /** Generates after {@code prompt}, handing each piece of text to {@code handler} as it is known. */
    @Override
    public void generate(String prompt, StreamingResponseHandler<String> handler) {
        GenerationResult r;
        try {
            r = model.stream(prompt, params, handler::onNext);
        } catch (RuntimeException e) {
            handler.onError(e);
            return;
        }
        handler.onComplete(Response.from(r.text(), Requests.usage(r), Requests.finishReason(r)));
    }
}
