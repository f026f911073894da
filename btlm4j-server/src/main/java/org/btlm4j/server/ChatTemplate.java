package org.btlm4j.server;

import java.util.List;
import org.btlm4j.BtlmException;

/**
 * How chat messages become one prompt for a base model (BTLM has no chat format of its own): each
 * message is written with {@code messageFormat}, where {@code {role}} and {@code {content}} are
 * replaced, then {@code replyPrefix} opens the assistant's turn. Generation also stops at
 * {@code stops} (e.g. where the model starts writing the user's next turn).
 */
public record ChatTemplate(String messageFormat, String replyPrefix, List<String> stops) {
    public ChatTemplate {
        if (messageFormat == null || !messageFormat.contains("{content}")) {
            throw new BtlmException("a chat message format must contain {content}, got " + messageFormat);
        }
        replyPrefix = replyPrefix == null ? "" : replyPrefix;
        stops = stops == null ? List.of() : List.copyOf(stops);
        for (String s : stops) {
            if (s.isEmpty()) {
                throw new BtlmException("a chat stop string must not be empty");
            }
        }
    }

    /** A plain transcript: {@code user: Hi\nassistant:}, stopping where a user or system line begins. */
    public static ChatTemplate transcript() {
        return new ChatTemplate("{role}: {content}\n", "assistant:", List.of("\nuser:", "\nsystem:"));
    }

    /** The prompt for {@code messages}. */
    public String render(List<ChatMessage> messages) {
        StringBuilder b = new StringBuilder();
        for (ChatMessage m : messages) {
            b.append(messageFormat.replace("{role}", m.role()).replace("{content}", m.content()));
        }
        return b.append(replyPrefix).toString();
    }

    /** One chat message: its role (system, user, assistant, …) and its text. */
    public record ChatMessage(String role, String content) {
    }
}
