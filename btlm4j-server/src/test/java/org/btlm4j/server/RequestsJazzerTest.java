package org.btlm4j.server;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing (Jazzer) of the server's request parsing: every parser either returns a
 * request or throws an {@link ApiException} with a 4xx status and a message, whatever the body
 * ({@link RequestsFuzzTest#check}). A plain {@code mvn test} runs the saved inputs in
 * {@code src/test/resources/org/btlm4j/server/RequestsJazzerTestInputs/body/};
 * {@code JAZZER_FUZZ=1} fuzzes for {@code maxDuration}.
 */
class RequestsJazzerTest {
    @FuzzTest(maxDuration = "60s")
    void body(byte[] body) {
        RequestsFuzzTest.check(body);
    }
}
