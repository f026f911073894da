package org.btlm4j.langchain4j;

import dev.langchain4j.model.ModelProvider;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import org.btlm4j.BtlmModel;
import org.btlm4j.ChatTemplate;
import org.btlm4j.GenerationParams;

/**
 * A LangChain4j {@link ChatModel} on a {@link BtlmModel}: the conversation's system, user and AI
 * messages become the {@link ChatTemplate#SYSTEM system}, {@link ChatTemplate#USER user} and
 * {@link ChatTemplate#ASSISTANT assistant} turns of the project's {@link ChatTemplate} (by default a
 * {@code User: …}/{@code Assistant:} transcript, as the server's chat endpoint writes), the model
 * continues it as the assistant, and the answer ends at the template's stops (the next role line).
 * The request's temperature, top-p, top-k, maximum output tokens and stop sequences override the
 * {@link GenerationParams} given here; tools and JSON response formats are refused with an
 * {@code UnsupportedFeatureException}.
 *
 * <pre>{@code
 * ChatModel chat = new BtlmChatModel(model, GenerationParams.defaults().withMaxNewTokens(64));
 * Assistant assistant = AiServices.create(Assistant.class, chat);
 * }</pre>
 *
 * <p>The model stays owned by the caller (close it when done); one instance may serve several threads.
 */
public final class BtlmChatModel implements ChatModel {
    private final Chat chat;

    /**
     * @param model    the loaded model
     * @param params   how to generate when the request does not say
     * @param template how to write the conversation as a prompt
     */
    public BtlmChatModel(BtlmModel model, GenerationParams params, ChatTemplate template) {
        this.chat = new Chat(model, params, template);
    }

    /** With the plain {@link ChatTemplate#transcript()} template. */
    public BtlmChatModel(BtlmModel model, GenerationParams params) {
        this(model, params, ChatTemplate.transcript());
    }

    /** The template that writes conversations as prompts. */
    public ChatTemplate template() {
        return chat.template();
    }

    /** Answers the conversation of {@code request}. */
    @Override
    public ChatResponse doChat(ChatRequest request) {
        return chat.answer(request, null);
    }

    /** {@link ModelProvider#OTHER}: a local model. */
    @Override
    public ModelProvider provider() {
        return ModelProvider.OTHER;
    }
}
