package org.btlm4j.langchain4j;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import java.util.Objects;
import java.util.function.Consumer;
import org.btlm4j.BtlmModel;
import org.btlm4j.ChatTemplate;
import org.btlm4j.GenerationParams;
import org.btlm4j.GenerationResult;

/** What the blocking and the streaming chat model share: the prompt, the parameters, the response. */
final class Chat {
    private final BtlmModel model;
    private final GenerationParams params;
    private final ChatTemplate template;
    private final String name;

    Chat(BtlmModel model, GenerationParams params, ChatTemplate template) {
        this.model = Objects.requireNonNull(model, "model");
        this.params = Objects.requireNonNull(params, "params");
        this.template = Objects.requireNonNull(template, "template");
        this.name = model.files().directory().toAbsolutePath().normalize().getFileName().toString();
    }

    ChatTemplate template() {
        return template;
    }

    /**
     * Answers the request; with {@code onPiece}, hands it each piece of the answer (the space after
     * the assistant's role is not part of it).
     */
    ChatResponse answer(ChatRequest request, Consumer<String> onPiece) {
        String prompt = template.render(Requests.messages(request.messages()));
        GenerationParams p = Requests.params(params, request, template.stops());
        GenerationResult r;
        if (onPiece == null) {
            r = model.generate(prompt, p);
        } else {
            boolean[] started = {false};
            r = model.stream(prompt, p, piece -> {
                String s = started[0] ? piece : piece.stripLeading();
                if (!s.isEmpty()) {
                    started[0] = true;
                    onPiece.accept(s);
                }
            });
        }
        return ChatResponse.builder().aiMessage(AiMessage.from(r.text().strip())).modelName(name)
                .tokenUsage(Requests.usage(r)).finishReason(Requests.finishReason(r)).build();
    }
}
