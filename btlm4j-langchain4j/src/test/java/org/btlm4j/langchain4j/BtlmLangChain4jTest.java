package org.btlm4j.langchain4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.StreamingResponseHandler;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.Response;
import dev.langchain4j.service.AiServices;
import dev.langchain4j.service.SystemMessage;
import dev.langchain4j.service.TokenStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.btlm4j.BtlmModel;
import org.btlm4j.ChatTemplate;
import org.btlm4j.GenerationParams;
import org.btlm4j.GenerationResult;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The LangChain4j models on the bundled demo model, checked against the engine's own greedy generation. */
class BtlmLangChain4jTest {
    private static final GenerationParams PARAMS = GenerationParams.defaults().withMaxNewTokens(40);
    private static BtlmModel model;

    interface Assistant {
        String chat(String message);
    }

    interface Preacher {
        @SystemMessage("You answer in the words of the King James Bible.")
        String ask(String question);
    }

    interface StreamingAssistant {
        TokenStream chat(String message);
    }

    @BeforeAll
    static void load() {
        Path demo = Path.of("..", "models", "btlm-demo");
        model = BtlmModel.load(Files.isDirectory(demo) ? demo : Path.of("models", "btlm-demo"));
    }

    @AfterAll
    static void close() {
        model.close();
    }

    /** The engine's own answer to a transcript written out by hand, cut at the next role line. */
    private static String engineAnswer(String transcript) {
        GenerationResult r = model.generate(transcript,
                PARAMS.withStop(List.of("\nUser:", "\nSystem:", "\nAssistant:")));
        return r.text().strip();
    }

    @Test
    void anAiServiceAnswersWhatTheEngineGeneratesGreedily() {
        Assistant assistant = AiServices.builder(Assistant.class).chatModel(new BtlmChatModel(model, PARAMS)).build();
        String question = "Who created the heaven and the earth?";
        String answer = assistant.chat(question);
        assertEquals(engineAnswer("User: " + question + "\nAssistant:"), answer);
        assertFalse(answer.isEmpty());
        assertFalse(answer.contains("\nUser:"));
    }

    @Test
    void aSystemMessageOpensTheTranscript() {
        Preacher preacher = AiServices.create(Preacher.class, new BtlmChatModel(model, PARAMS));
        String answer = preacher.ask("What is love?");
        assertEquals(engineAnswer("System: You answer in the words of the King James Bible.\nUser: What is love?"
                + "\nAssistant:"), answer);
    }

    @Test
    void aStreamingAiServiceStreamsTheSameAnswer() throws Exception {
        StreamingAssistant assistant = AiServices.builder(StreamingAssistant.class)
                .streamingChatModel(new BtlmStreamingChatModel(model, PARAMS)).build();
        StringBuilder pieces = new StringBuilder();
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        assistant.chat("Who created the heaven and the earth?")
                .onPartialResponse(pieces::append)
                .onCompleteResponse(done::complete)
                .onError(done::completeExceptionally)
                .start();
        ChatResponse response = done.get(60, TimeUnit.SECONDS);
        String expected = engineAnswer("User: Who created the heaven and the earth?\nAssistant:");
        assertEquals(expected, response.aiMessage().text());
        assertEquals(expected, pieces.toString().strip());
    }

    @Test
    void aConfiguredTemplateNamesTheRolesAndRequestParametersApply() {
        BtlmChatModel chat = new BtlmChatModel(model, PARAMS, ChatTemplate.transcript("Narrator", "Moses", "God"));
        ChatRequest request = ChatRequest.builder()
                .messages(UserMessage.from("Who art thou?"), AiMessage.from("I AM THAT I AM."),
                        UserMessage.from("What shall I say?"))
                .maxOutputTokens(7).build();
        ChatResponse response = chat.chat(request);
        GenerationResult r = model.generate("Moses: Who art thou?\nGod: I AM THAT I AM.\nMoses: What shall I say?\nGod:",
                PARAMS.withMaxNewTokens(7).withStop(List.of("\nMoses:", "\nNarrator:", "\nGod:")));
        assertEquals(r.text().strip(), response.aiMessage().text());
        assertEquals(r.tokenIds().length, response.tokenUsage().outputTokenCount());
        assertEquals(r.promptTokenIds().length, response.tokenUsage().inputTokenCount());
    }

    @Test
    void theLanguageModelCompletesLikeTheEngine() {
        BtlmLanguageModel lm = new BtlmLanguageModel(model, PARAMS);
        GenerationResult expected = model.generate("And God said", PARAMS);
        Response<String> response = lm.generate("And God said");
        assertEquals(expected.text(), response.content());
        assertEquals(expected.tokenIds().length, response.tokenUsage().outputTokenCount());

        StringBuilder pieces = new StringBuilder();
        CompletableFuture<Response<String>> done = new CompletableFuture<>();
        lm.generate("And God said", new StreamingResponseHandler<>() {
            @Override
            public void onNext(String token) {
                pieces.append(token);
            }

            @Override
            public void onComplete(Response<String> r) {
                done.complete(r);
            }

            @Override
            public void onError(Throwable error) {
                done.completeExceptionally(error);
            }
        });
        assertEquals(expected.text(), pieces.toString());
        assertEquals(expected.text(), done.join().content());
    }

    @Test
    void toolsAreRefusedAndErrorsReachTheStreamingHandler() {
        BtlmChatModel chat = new BtlmChatModel(model, PARAMS);
        ChatRequest withTools = ChatRequest.builder().messages(UserMessage.from("hi"))
                .toolSpecifications(ToolSpecification.builder().name("clock").description("time").build()).build();
        assertThrows(UnsupportedFeatureException.class, () -> chat.chat(withTools));

        CompletableFuture<Throwable> error = new CompletableFuture<>();
        BtlmLanguageModel lm = new BtlmLanguageModel(model, PARAMS);
        lm.generate("", new StreamingResponseHandler<>() {
            @Override
            public void onNext(String token) {
            }

            @Override
            public void onError(Throwable e) {
                error.complete(e);
            }
        });
        assertTrue(error.join().getMessage().contains("the prompt is empty"), error.join().getMessage());
    }
}
