package org.btlm4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The project's one chat template: the transcripts it writes, compared with ones written by hand. */
class ChatTemplateTest {
    static List<ChatTemplate.Message> conversation() {
        return List.of(new ChatTemplate.Message(ChatTemplate.SYSTEM, "You answer briefly."),
                new ChatTemplate.Message(ChatTemplate.USER, "  Who made the light?\n"),
                new ChatTemplate.Message(ChatTemplate.ASSISTANT, "God."),
                new ChatTemplate.Message(ChatTemplate.USER, "When?"));
    }

    @Test
    void theDefaultIsAUserAssistantTranscriptEndingAtTheNextRoleLine() {
        ChatTemplate t = ChatTemplate.transcript();
        assertEquals("System: You answer briefly.\nUser: Who made the light?\nAssistant: God.\nUser: When?\nAssistant:",
                t.render(conversation()));
        assertEquals(List.of("\nUser:", "\nSystem:", "\nAssistant:"), t.stops());
    }

    @Test
    void otherRoleNamesAndRolesWithoutANameAreWrittenAsGiven() {
        ChatTemplate t = ChatTemplate.transcript("Narrator", "Moses", "God");
        assertEquals("Narrator: x\nMoses: Who art thou?\ntool: 42\nGod:", t.render(List.of(
                new ChatTemplate.Message("system", "x"), new ChatTemplate.Message("user", "Who art thou?"),
                new ChatTemplate.Message("tool", "42"))));
        assertEquals(List.of("\nMoses:", "\nNarrator:", "\nGod:"), t.stops());
    }

    @Test
    void aCustomFormatReplacesRoleAndContentOnly() {
        ChatTemplate t = new ChatTemplate("<{role}>{content}</{role}>\n", Map.of("user", "U"), "<assistant>",
                List.of("</assistant>"));
        assertEquals("<U>say {role} and {content}</U>\n<system>s</system>\n<assistant>", t.render(List.of(
                new ChatTemplate.Message("user", "say {role} and {content}"), new ChatTemplate.Message("system", "s"))));
        assertEquals("", new ChatTemplate("{content}", null, null).render(List.of()));
    }

    @Test
    void badTemplatesAndRolesAreRefusedWithAMessage() {
        assertTrue(assertThrows(BtlmException.class, () -> new ChatTemplate("{role}", "", List.of()))
                .getMessage().contains("{content}"));
        assertTrue(assertThrows(BtlmException.class, () -> new ChatTemplate("{content}", "", List.of("")))
                .getMessage().contains("stop"));
        assertTrue(assertThrows(BtlmException.class, () -> ChatTemplate.transcript("System", "Us:er", "AI"))
                .getMessage().contains("Us:er"));
        assertTrue(assertThrows(BtlmException.class, () -> new ChatTemplate.Message("a\nb", "x"))
                .getMessage().contains("role"));
        assertEquals("", new ChatTemplate.Message("user", null).content());
    }
}
