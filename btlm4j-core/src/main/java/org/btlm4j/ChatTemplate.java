package org.btlm4j;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How a conversation becomes one prompt for a base model, which has no chat format of its own; the
 * one template of the project, used by the HTTP server's chat endpoint and the LangChain4j chat
 * models alike.
 *
 * <p>Each message is written with {@code messageFormat}, where {@code {role}} is replaced by the
 * role's name ({@code roleNames}, else the role as given) and {@code {content}} by the message's
 * text without surrounding whitespace; then {@code replyPrefix} opens the assistant's turn for the
 * model to continue. The answer ends at the first of {@code stops}, e.g. where the model starts
 * writing the next turn. The default, {@link #transcript()}, is a plain transcript:
 *
 * <pre>
 * System: You answer briefly.
 * User: Who created the heaven and the earth?
 * Assistant:
 * </pre>
 *
 * The answer the model writes after {@code Assistant:} usually starts with a space (the LangChain4j
 * chat models strip the answer; the server's chat endpoint sends the text as generated).
 *
 * @param messageFormat how one message is written; contains {@code {content}}
 * @param roleNames     the name written for a role ({@link #SYSTEM}, {@link #USER}, {@link #ASSISTANT} or
 *                      another), where it is not the role itself
 * @param replyPrefix   the text after the last message that opens the assistant's turn
 * @param stops         where an answer ends (not empty strings)
 */
public record ChatTemplate(String messageFormat, Map<String, String> roleNames, String replyPrefix,
        List<String> stops) {
    /** The role of instructions about the whole conversation. */
    public static final String SYSTEM = "system";
    /** The role of the person asking. */
    public static final String USER = "user";
    /** The role of the model answering. */
    public static final String ASSISTANT = "assistant";

    /** Checks the format, the names and the stop strings. */
    public ChatTemplate {
        if (messageFormat == null || !messageFormat.contains("{content}")) {
            throw new BtlmException("a chat message format must contain {content}, got " + messageFormat);
        }
        roleNames = roleNames == null ? Map.of() : Map.copyOf(roleNames);
        for (Map.Entry<String, String> e : roleNames.entrySet()) {
            String name = e.getValue();
            if (name.isBlank() || name.contains("\n") || name.contains("\r") || name.contains(":")) {
                throw new BtlmException("a role name must be a word or phrase without ':' or line breaks, got \""
                        + name + "\" for " + e.getKey());
            }
        }
        replyPrefix = replyPrefix == null ? "" : replyPrefix;
        stops = stops == null ? List.of() : List.copyOf(stops);
        for (String s : stops) {
            if (s.isEmpty()) {
                throw new BtlmException("a chat stop string must not be empty");
            }
        }
    }

    /** A template that writes every role as it is given. */
    public ChatTemplate(String messageFormat, String replyPrefix, List<String> stops) {
        this(messageFormat, Map.of(), replyPrefix, stops);
    }

    /** The default: {@code System: …}, {@code User: …}, then {@code Assistant:}; the answer ends at the next role line. */
    public static ChatTemplate transcript() {
        return transcript("System", "User", "Assistant");
    }

    /**
     * A transcript with other names for the three roles, e.g. {@code transcript("System", "Human", "AI")}:
     * one {@code Name: content} line per message, the assistant's name and a colon to continue, and
     * the answer ends where any of the three names starts a line.
     */
    public static ChatTemplate transcript(String system, String user, String assistant) {
        Map<String, String> names = new LinkedHashMap<>();
        names.put(SYSTEM, system);
        names.put(USER, user);
        names.put(ASSISTANT, assistant);
        for (String n : new String[] {system, user, assistant}) {
            if (n == null) {
                throw new BtlmException("a role name must not be null");
            }
        }
        return new ChatTemplate("{role}: {content}\n", names, assistant + ":",
                List.of("\n" + user + ":", "\n" + system + ":", "\n" + assistant + ":"));
    }

    /** The name written for {@code role}. */
    public String name(String role) {
        return roleNames.getOrDefault(role, role);
    }

    /** The prompt for {@code messages}: each written with the format, then the reply prefix. */
    public String render(List<Message> messages) {
        StringBuilder b = new StringBuilder();
        for (Message m : messages) {
            // {content} last, so that a message containing "{role}" is written as it is
            b.append(messageFormat.replace("{role}", name(m.role())).replace("{content}", m.content().strip()));
        }
        return b.append(replyPrefix).toString();
    }

    /**
     * One message: its role ({@link #SYSTEM}, {@link #USER}, {@link #ASSISTANT}, or another name)
     * and its text.
     */
    public record Message(String role, String content) {
        /** Checks that the role is a name on one line. */
        public Message {
            if (role == null || role.isBlank() || role.contains("\n") || role.contains("\r")) {
                throw new BtlmException("a chat message's role must be a name on one line, got \"" + role + "\"");
            }
            content = content == null ? "" : content;
        }
    }
}
