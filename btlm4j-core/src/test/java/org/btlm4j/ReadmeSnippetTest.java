package org.btlm4j;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The Java snippet of README.md, verbatim apart from the model path, compiles and runs. */
class ReadmeSnippetTest {
    @Test
    void readmeLibrarySnippetWorks() {
        Path dir = Fixtures.demo();
        StringBuilder printed = new StringBuilder();
        // --- README snippet (System.out.println replaced by printed.append) ---
        try (BtlmModel model = BtlmModel.load(dir)) {
            GenerationResult r = model.generate("And God said", GenerationParams.defaults().withMaxNewTokens(24));
            printed.append(r.text());
            ScoreResult s = model.score("In the beginning God created the heaven and the earth.");
            printed.append(s.perplexity());
        }
        // --- end of snippet ---
        assertTrue(printed.toString().startsWith(" unto him, Behold"), printed.toString());
    }
}
