package org.btlm4j.langchain4j;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ResponseFormat;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.TokenUsage;
import java.util.ArrayList;
import java.util.List;
import org.btlm4j.ChatTemplate;
import org.btlm4j.GenerationParams;
import org.btlm4j.GenerationResult;

/** Translations between LangChain4j's requests and results and btlm4j's. */
final class Requests {
    private Requests() {
    }

    /** LangChain4j's messages as the (role, content) pairs of a {@link ChatTemplate}; text only, no tools. */
    static List<ChatTemplate.Message> messages(List<ChatMessage> messages) {
        List<ChatTemplate.Message> out = new ArrayList<>(messages.size());
        for (ChatMessage m : messages) {
            if (m instanceof SystemMessage s) {
                out.add(new ChatTemplate.Message(ChatTemplate.SYSTEM, s.text()));
            } else if (m instanceof UserMessage u) {
                if (!u.hasSingleText()) {
                    throw new UnsupportedFeatureException("btlm4j reads text only; a user message holds "
                            + u.contents().size() + " contents");
                }
                out.add(new ChatTemplate.Message(ChatTemplate.USER, u.singleText()));
            } else if (m instanceof AiMessage a) {
                if (a.hasToolExecutionRequests()) {
                    throw new UnsupportedFeatureException("btlm4j does not call tools");
                }
                out.add(new ChatTemplate.Message(ChatTemplate.ASSISTANT, a.text()));
            } else {
                throw new UnsupportedFeatureException("btlm4j cannot put a " + m.type() + " message into a prompt");
            }
        }
        return out;
    }

    /** {@code base} with the parameters the request sets, and {@code stops} added to its stop strings. */
    static GenerationParams params(GenerationParams base, ChatRequest request, List<String> stops) {
        if (request.toolSpecifications() != null && !request.toolSpecifications().isEmpty()) {
            throw new UnsupportedFeatureException("btlm4j does not call tools");
        }
        if (request.responseFormat() != null && !ResponseFormat.TEXT.equals(request.responseFormat())) {
            throw new UnsupportedFeatureException("btlm4j answers in plain text only, not " + request.responseFormat());
        }
        GenerationParams p = base;
        if (request.temperature() != null) {
            p = p.withTemperature(request.temperature().floatValue());
        }
        if (request.topP() != null) {
            p = p.withTopP(request.topP().floatValue());
        }
        if (request.topK() != null) {
            p = p.withTopK(request.topK());
        }
        if (request.maxOutputTokens() != null) {
            p = p.withMaxNewTokens(request.maxOutputTokens());
        }
        List<String> all = new ArrayList<>(p.stop());
        all.addAll(stops);
        if (request.stopSequences() != null) {
            all.addAll(request.stopSequences());
        }
        return p.withStop(all);
    }

    static TokenUsage usage(GenerationResult r) {
        return new TokenUsage(r.promptTokenIds().length, r.tokenIds().length);
    }

    /** End of text and a stop string are both a natural stop; the token limit is LENGTH. */
    static FinishReason finishReason(GenerationResult r) {
        return switch (r.finishReason()) {
            case LENGTH -> FinishReason.LENGTH;
            case STOP, EOS -> FinishReason.STOP;
        };
    }
}
