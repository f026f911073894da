package org.btlm4j.langchain4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.StringWriter;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.btlm4j.BtlmModel;
import org.btlm4j.GenerationParams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Java block of README.md's "LangChain4j" section compiles as written and, run on the demo
 * model in place of the model it names, prints the engine's own greedy answer to the transcript.
 */
class ReadmeLangChain4jSnippetTest {
    private static final String MODEL_IN_README = "cerebras/btlm-3b-8k-base";

    @Test
    void readmeLangChain4jSnippetCompilesAndRuns(@TempDir Path tmp) throws Exception {
        Path readme = Files.exists(Path.of("..", "README.md")) ? Path.of("..", "README.md") : Path.of("README.md");
        String md = Files.readString(readme);
        int start = md.indexOf("\n## LangChain4j\n");
        assertTrue(start >= 0, "README.md has no LangChain4j section");
        int end = md.indexOf("\n## ", start + 5);
        Matcher m = Pattern.compile("```java\n(.*?)```", Pattern.DOTALL).matcher(md.substring(start, end));
        assertTrue(m.find(), "the LangChain4j section has no java block");
        String block = m.group(1);
        assertTrue(block.contains(MODEL_IN_README));
        Path demo = Path.of("..", "models", "btlm-demo").toAbsolutePath().normalize();
        // The block is the body of a method: Java allows its interface there as a local interface.
        String source = """
                import dev.langchain4j.model.chat.ChatModel;
                import dev.langchain4j.service.AiServices;
                import org.btlm4j.*;
                import org.btlm4j.langchain4j.*;

                public class ReadmeLangChain4j {
                    public static void run() {
                """ + block.replace(MODEL_IN_README, demo.toString().replace("\\", "\\\\")) + "}\n}\n";
        Path file = tmp.resolve("ReadmeLangChain4j.java");
        Files.writeString(file, source);
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        StringWriter diagnostics = new StringWriter();
        boolean ok = javac.getTask(diagnostics, null, null, List.of("-d", tmp.toString(), "-classpath",
                System.getProperty("java.class.path"), "-proc:none"), null,
                javac.getStandardFileManager(null, null, StandardCharsets.UTF_8).getJavaFileObjects(file)).call();
        assertTrue(ok, "the README snippet does not compile:\n" + diagnostics + "\n" + source);

        PrintStream saved = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (URLClassLoader loader = new URLClassLoader(new URL[] {tmp.toUri().toURL()}, getClass().getClassLoader())) {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            loader.loadClass("ReadmeLangChain4j").getMethod("run").invoke(null);
        } finally {
            System.setOut(saved);
        }
        try (BtlmModel model = BtlmModel.load(demo)) {
            String expected = model.generate("User: Who wrote Hamlet?\nAssistant:", GenerationParams.defaults()
                    .withMaxNewTokens(64).withStop(List.of("\nUser:", "\nSystem:", "\nAssistant:"))).text().strip();
            assertEquals(expected + System.lineSeparator(), out.toString(StandardCharsets.UTF_8));
        }
    }
}
