package org.btlm4j.langchain4j;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.UnsupportedFeatureException;
import java.util.List;

/**
 * How a conversation becomes a prompt for a base model, which has no chat format of its own: a
 * plain transcript, one {@code Role: content} block per message, ending with the assistant's role
 * for the model to continue.
 *
 * <pre>
 * System: You answer briefly.
 * User: Who created the heaven and the earth?
 * Assistant:
 * </pre>
 *
 * The answer ends where the model starts the next role line ({@link #stops()}).
 *
 * @param system    the name of the system role, e.g. {@code System}
 * @param user      the name of the user role, e.g. {@code User}
 * @param assistant the name of the assistant role, e.g. {@code Assistant}
 */
public record ChatTemplate(String system, String user, String assistant) {

    /** Checks that every role has a name without line breaks or colons. */
    public ChatTemplate {
        for (String role : new String[] {system, user, assistant}) {
            if (role == null || role.isBlank() || role.contains("\n") || role.contains(":")) {
                throw new IllegalArgumentException("a role name must be one word or phrase without ':' or line "
                        + "breaks, got \"" + role + "\"");
            }
        }
    }

    /** {@code System}, {@code User} and {@code Assistant}. */
    public static ChatTemplate transcript() {
        return new ChatTemplate("System", "User", "Assistant");
    }

    /** The transcript of {@code messages} followed by the assistant's role line to continue. */
    public String prompt(List<ChatMessage> messages) {
        StringBuilder sb = new StringBuilder();
        for (ChatMessage m : messages) {
            String role;
            String text;
            if (m instanceof SystemMessage s) {
                role = system;
                text = s.text();
            } else if (m instanceof UserMessage u) {
                if (!u.hasSingleText()) {
                    throw new UnsupportedFeatureException("btlm4j reads text only; a user message holds "
                            + u.contents().size() + " contents");
                }
                role = user;
                text = u.singleText();
            } else if (m instanceof AiMessage a) {
                if (a.hasToolExecutionRequests()) {
                    throw new UnsupportedFeatureException("btlm4j does not call tools");
                }
                role = assistant;
                text = a.text() == null ? "" : a.text();
            } else {
                throw new UnsupportedFeatureException("btlm4j cannot put a " + m.type() + " message into a prompt");
            }
            sb.append(role).append(": ").append(text.strip()).append('\n');
        }
        return sb.append(assistant).append(':').toString();
    }

    /** The beginnings of the next role lines, where an answer ends. */
    public List<String> stops() {
        return List.of("\n" + user + ":", "\n" + system + ":", "\n" + assistant + ":");
    }
}
