package org.btlm4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.StringWriter;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Java code blocks of README.md's "Java library" section, as written there, compile against
 * the test classpath and run on the bundled demo model; what they print is what the engine
 * computes for the same calls.
 */
class ReadmeSnippetTest {
    private static final String DEMO_IN_README = "models/btlm-demo";

    @Test
    void readmeJavaLibrarySnippetsCompileAndRun(@TempDir Path tmp) throws Exception {
        List<String> blocks = javaBlocks(section(readme(), "## Java library"));
        assertTrue(blocks.size() >= 2, "expected the Java library section to have code blocks, found " + blocks.size());
        String demo = Fixtures.demo().toAbsolutePath().normalize().toString().replace("\\", "\\\\");
        StringBuilder source = new StringBuilder("""
                import java.nio.file.Path;
                import java.util.List;
                import org.btlm4j.*;

                public class ReadmeSnippets {
                """);
        for (int i = 0; i < blocks.size(); i++) {
            assertTrue(blocks.get(i).contains(DEMO_IN_README), "snippet " + i + " should load " + DEMO_IN_README);
            source.append("public static void snippet").append(i).append("() throws Exception {\n")
                    .append(blocks.get(i).replace(DEMO_IN_README, demo)).append("\n}\n");
        }
        source.append("}\n");
        Path file = tmp.resolve("ReadmeSnippets.java");
        Files.writeString(file, source);

        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        StringWriter diagnostics = new StringWriter();
        boolean ok = javac.getTask(diagnostics, null, null, List.of("-d", tmp.toString(), "-classpath",
                System.getProperty("java.class.path"), "-proc:none"), null,
                javac.getStandardFileManager(null, null, StandardCharsets.UTF_8).getJavaFileObjects(file)).call();
        assertTrue(ok, "the README snippets do not compile:\n" + diagnostics + "\n" + source);

        try (URLClassLoader loader = new URLClassLoader(new URL[] {tmp.toUri().toURL()}, getClass().getClassLoader())) {
            Class<?> snippets = loader.loadClass("ReadmeSnippets");
            String first = run(snippets.getMethod("snippet0"));
            String second = run(snippets.getMethod("snippet1"));
            try (BtlmModel model = BtlmModel.load(Fixtures.demo())) {
                GenerationResult r = model.generate("And God said", GenerationParams.defaults().withMaxNewTokens(24));
                double ppl = model.score("In the beginning God created the heaven and the earth.").perplexity();
                assertEquals(r.text() + "\n" + ppl + "\n", first);

                GenerationParams params = GenerationParams.defaults().withMaxNewTokens(16).withStop(List.of("\n"));
                GenerationResult a = model.generate("The LORD is my shepherd", params);
                GenerationResult b = model.generate("Blessed are the", params);
                int[] ids = model.tokenizer().encode("And God said");
                assertEquals(a.text() + "\n" + b.text() + " [" + b.finishReason() + "]\n" + ids.length
                        + " tokens, last: " + model.tokenizer().decode(new int[] {ids[ids.length - 1]}) + "\n", second);
            }
        }
    }

    /** Runs a snippet and returns what it printed. */
    private static String run(Method snippet) throws Exception {
        PrintStream saved = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        try {
            snippet.invoke(null);
        } finally {
            System.setOut(saved);
        }
        return out.toString(StandardCharsets.UTF_8).replace(System.lineSeparator(), "\n");
    }

    static String readme() throws IOException {
        Path p = Path.of("..", "README.md");
        return Files.readString(Files.exists(p) ? p : Path.of("README.md"));
    }

    /** The text from a heading to the next heading of the same level. */
    static String section(String markdown, String heading) {
        int start = markdown.indexOf("\n" + heading + "\n");
        assertTrue(start >= 0, "README.md has no section " + heading);
        int end = markdown.indexOf("\n## ", start + heading.length() + 1);
        return markdown.substring(start, end < 0 ? markdown.length() : end);
    }

    /** The contents of the ```java fenced blocks. */
    static List<String> javaBlocks(String markdown) {
        List<String> out = new ArrayList<>();
        Matcher m = Pattern.compile("```java\n(.*?)```", Pattern.DOTALL).matcher(markdown);
        while (m.find()) {
            out.add(m.group(1));
        }
        return out;
    }
}
