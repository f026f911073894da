package org.btlm4j.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.errors.UnauthorizedException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.btlm4j.BtlmModel;
import org.btlm4j.GenerationParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The server as real clients see it: the official OpenAI Java SDK and LangChain4j's OpenAI module. */
class ClientsTest {
    static final String KEY = "test-key-123";
    static ServerFixture server;
    static BtlmModel model;
    static OpenAIClient openai;

    @BeforeAll
    static void start() {
        server = new ServerFixture(ServerOptions.defaults().withParallel(4, 16).withApiKey(KEY));
        model = BtlmModel.load(ServerFixture.demo(), new BtlmModel.Options(1, 0));
        openai = OpenAIOkHttpClient.builder().baseUrl(server.base + "/v1").apiKey(KEY).maxRetries(0).build();
    }

    @AfterAll
    static void stop() {
        openai.close();
        server.close();
        model.close();
    }

    /** What the engine alone generates greedily for a chat of one user message, the transcript written by hand. */
    static String expectedChat(String user, int maxTokens) {
        String prompt = "User: " + user + "\nAssistant:";
        return model.generate(prompt, GenerationParams.defaults().withMaxNewTokens(maxTokens)
                .withStop(List.of("\nUser:", "\nSystem:", "\nAssistant:"))).text();
    }

    @Test
    void openAiSdkCompletionsPlainAndStreamed() {
        String expected = model.generate("And God said", GenerationParams.defaults().withMaxNewTokens(16)).text();
        CompletionCreateParams p = CompletionCreateParams.builder().model("btlm").prompt("And God said").maxTokens(16)
                .temperature(0.0).build();
        Completion c = openai.completions().create(p);
        assertEquals(expected, c.choices().get(0).text());
        assertEquals(16, c.usage().orElseThrow().completionTokens());
        StringBuilder streamed = new StringBuilder();
        try (StreamResponse<Completion> s = openai.completions().createStreaming(p)) {
            s.stream().forEach(chunk -> chunk.choices().forEach(ch -> streamed.append(ch.text())));
        }
        assertEquals(expected, streamed.toString());
    }

    @Test
    void openAiSdkChatPlainAndStreamed() {
        String expected = expectedChat("Who made the light?", 12);
        ChatCompletionCreateParams p = ChatCompletionCreateParams.builder().model("btlm")
                .addUserMessage("Who made the light?").maxCompletionTokens(12).temperature(0.0).build();
        ChatCompletion c = openai.chat().completions().create(p);
        assertEquals(expected, c.choices().get(0).message().content().orElse(""));
        StringBuilder streamed = new StringBuilder();
        try (StreamResponse<ChatCompletionChunk> s = openai.chat().completions().createStreaming(p)) {
            s.stream().forEach(chunk -> chunk.choices().forEach(ch -> ch.delta().content().ifPresent(streamed::append)));
        }
        assertEquals(expected, streamed.toString());
    }

    @Test
    void openAiSdkSeesErrorsAsTheirTypes() {
        OpenAIClient noKey = OpenAIOkHttpClient.builder().baseUrl(server.base + "/v1").apiKey("wrong").maxRetries(0)
                .build();
        try {
            CompletionCreateParams p = CompletionCreateParams.builder().model("btlm").prompt("x").maxTokens(1).build();
            Exception e = org.junit.jupiter.api.Assertions.assertThrows(Exception.class, () -> noKey.completions().create(p));
            assertInstanceOf(UnauthorizedException.class, e);
        } finally {
            noKey.close();
        }
        CompletionCreateParams tooMany = CompletionCreateParams.builder().model("btlm").prompt("x").maxTokens(100000)
                .build();
        BadRequestException e = org.junit.jupiter.api.Assertions.assertThrows(BadRequestException.class,
                () -> openai.completions().create(tooMany));
        assertTrue(e.getMessage().contains("max_tokens"), e.getMessage());
    }

    @Test
    void langChain4jChatModelAndStreamingChatModel() throws Exception {
        String expected = expectedChat("Tell me a fortune", 10);
        OpenAiChatModel chat = OpenAiChatModel.builder().baseUrl(server.base + "/v1").apiKey(KEY).modelName("btlm")
                .temperature(0.0).maxTokens(10).maxRetries(0).build();
        assertEquals(expected, chat.chat("Tell me a fortune"));

        OpenAiStreamingChatModel streaming = OpenAiStreamingChatModel.builder().baseUrl(server.base + "/v1").apiKey(KEY)
                .modelName("btlm").temperature(0.0).maxTokens(10).build();
        StringBuilder parts = new StringBuilder();
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        streaming.chat("Tell me a fortune", new StreamingChatResponseHandler() {
            @Override
            public void onPartialResponse(String partial) {
                parts.append(partial);
            }

            @Override
            public void onCompleteResponse(ChatResponse response) {
                done.complete(response);
            }

            @Override
            public void onError(Throwable error) {
                done.completeExceptionally(error);
            }
        });
        ChatResponse r = done.get(60, TimeUnit.SECONDS);
        assertEquals(expected, parts.toString());
        assertEquals(expected, r.aiMessage().text());
    }
}
