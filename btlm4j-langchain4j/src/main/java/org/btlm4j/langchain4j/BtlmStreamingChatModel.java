package org.btlm4j.langchain4j;

import dev.langchain4j.model.ModelProvider;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import org.btlm4j.BtlmModel;
import org.btlm4j.ChatTemplate;
import org.btlm4j.GenerationParams;

/**
 * A LangChain4j {@link StreamingChatModel} on a {@link BtlmModel}: as {@link BtlmChatModel}, with
 * each piece of the answer handed to the handler as soon as it is final (a piece that could be the
 * start of the next role line is held back until it is known not to be).
 *
 * <p>Generation runs on the calling thread: the handler sees every piece, then the complete
 * response (or the error), before {@code chat} returns.
 */
public final class BtlmStreamingChatModel implements StreamingChatModel {
    private final Chat chat;

    /**
     * @param model    the loaded model
     * @param params   how to generate when the request does not say
     * @param template how to write the conversation as a prompt
     */
    public BtlmStreamingChatModel(BtlmModel model, GenerationParams params, ChatTemplate template) {
        this.chat = new Chat(model, params, template);
    }

    /** With the plain {@link ChatTemplate#transcript()} template. */
    public BtlmStreamingChatModel(BtlmModel model, GenerationParams params) {
        this(model, params, ChatTemplate.transcript());
    }

    /** The template that writes conversations as prompts. */
    public ChatTemplate template() {
        return chat.template();
    }

    /** Answers the conversation of {@code request}, streaming the answer to {@code handler}. */
    @Override
    public void doChat(ChatRequest request, StreamingChatResponseHandler handler) {
        ChatResponse response;
        try {
            response = chat.answer(request, handler::onPartialResponse);
        } catch (RuntimeException e) {
            handler.onError(e);
            return;
        }
        handler.onCompleteResponse(response);
    }

    /** {@link ModelProvider#OTHER}: a local model. */
    @Override
    public ModelProvider provider() {
        return ModelProvider.OTHER;
    }
}
