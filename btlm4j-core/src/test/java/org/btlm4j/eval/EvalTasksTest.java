package org.btlm4j.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.btlm4j.BtlmException;
import org.btlm4j.BtlmModel;
import org.btlm4j.Fixtures;
import org.btlm4j.GenerationParams;
import org.btlm4j.tokenizer.Gpt2Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Every task on small hand-made files: the prompts are the ones written out here by hand from
 * lm-eval's task definitions, and acc / acc_norm / perplexity are recomputed from full
 * context + continuation strings scored from scratch with {@link BtlmModel#score}.
 */
class EvalTasksTest {
    private static BtlmModel model;

    /** A document as lm-eval renders it: contexts (one, or one per choice), continuations, gold, choice texts. */
    record Doc(List<String> contexts, List<String> continuations, int gold, List<String> choiceTexts) {
        static Doc mc(String context, List<String> choices, int gold) {
            return new Doc(List.of(context), choices.stream().map(c -> " " + c).toList(), gold, choices);
        }
    }

    @BeforeAll
    static void load() {
        model = BtlmModel.load(Fixtures.demo(), new BtlmModel.Options(2, 0));
    }

    @AfterAll
    static void close() {
        model.close();
    }

    private static Path data(String name) {
        return Fixtures.resource("eval/" + name);
    }

    @Test
    void hellaswagPreprocessesLikeLmEval() {
        check("hellaswag", "hellaswag.jsonl", null, 0, List.of(
                Doc.mc("Removing ice from car: Then, the man writes over the snow covering the window of a car, and a "
                        + "woman wearing winter clothes smiles. Then", List.of(
                        ", the man adds wax to the windshield and cuts it.",
                        ", a person board a ski lift, while two men supporting the head of the person wearing winter "
                                + "clothes snow as the we girls sled.",
                        ", the man puts on a christmas coat, knitted with netting.",
                        ", the man continues removing the snow on his car."), 3),
                Doc.mc("Home and Garden: How to grow roses. Choose a sunny spot. Make sure the soil drains well.", List.of(
                        " Water the roses every morning.", "Plant them in the shade of a tree.",
                        "Add compost to the soil before planting.", "Paint the roses blue."), 2),
                Doc.mc("Baking: A woman mixes flour and eggs in a bowl. She", List.of("pours the batter into a pan.",
                        "throws the bowl out of the window.", "sings to the eggs."), 0)));
    }

    @Test
    void arcEasy() {
        check("arc_easy", "arc_easy.jsonl", null, 0, List.of(
                Doc.mc("Question: Which of these is a source of light?\nAnswer:",
                        List.of("the sun", "a rock", "the moon at noon"), 0),
                Doc.mc("Question: What do plants need to make food?\nAnswer:",
                        List.of("sunlight", "darkness", "salt", "sand"), 0),
                Doc.mc("Question: In the beginning God created what?\nAnswer:",
                        List.of("the heaven and the earth", "a car", "the internet", "nothing"), 0)));
    }

    @Test
    void arcChallengeHasTheSameFormat() {
        Task easy = Tasks.byName("arc_easy");
        Task challenge = Tasks.byName("arc_challenge");
        EvalDoc d = TaskData.read(data("arc_easy.jsonl")).get(1);
        assertEquals(easy.instance(d, "").requests(), challenge.instance(d, "").requests());
        assertEquals("arc_challenge", challenge.name());
    }

    @Test
    void piqa() {
        check("piqa", "piqa.jsonl", null, 0, List.of(
                Doc.mc("Question: To open a jar that is stuck,\nAnswer:", List.of("run the lid under hot water and twist.",
                        "put the jar in the freezer for a week."), 0),
                Doc.mc("Question: How do I keep bread fresh?\nAnswer:", List.of("Leave it in the rain.",
                        "Store it in a sealed bag."), 1)));
    }

    @Test
    void winograndeScoresTheSharedSuffixUnderEachOption() {
        check("winogrande", "winogrande.jsonl", null, 0, List.of(
                new Doc(List.of("The trophy does not fit into the suitcase because the trophy",
                        "The trophy does not fit into the suitcase because the suitcase"), List.of(" is too large."), 0,
                        null),
                new Doc(List.of("Sarah gave Maria the book because Sarah", "Sarah gave Maria the book because Maria"),
                        List.of(" had finished reading it."), 0, null),
                new Doc(List.of("The king spoke to the people and the king", "The king spoke to the people and they"),
                        List.of(" listened to his words."), 1, null)));
    }

    @Test
    void openbookqa() {
        check("openbookqa", "openbookqa.jsonl", null, 0, List.of(
                Doc.mc("The sun is responsible for", List.of("puppies learning new tricks",
                        "children growing up and getting old", "flowers wilting in a vase",
                        "plants sprouting, blooming and wilting"), 3),
                Doc.mc("Water freezes at", List.of("zero degrees Celsius", "one hundred degrees Celsius"), 0)));
    }

    @Test
    void boolqTakesLabelOrAnswer() {
        check("boolq", "boolq.jsonl", null, 0, List.of(
                Doc.mc("The Sun is the star at the center of the Solar System.\nQuestion: is the sun a star?\nAnswer:",
                        List.of("no", "yes"), 1),
                Doc.mc("Noah built an ark of gopher wood, as the Lord commanded him.\nQuestion: did noah build a car?"
                        + "\nAnswer:", List.of("no", "yes"), 0),
                Doc.mc("Water is a liquid at room temperature.\nQuestion: is water wet?\nAnswer:",
                        List.of("no", "yes"), 1)));
    }

    @Test
    void lambadaLastWordAccuracyAndPerplexity() {
        List<String[]> docs = List.of(
                new String[] {"In the beginning God created the heaven and the earth. And the earth was without form, "
                        + "and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the "
                        + "face of the", " waters"},
                new String[] {"And God said, Let there be light: and there was light. And God saw the light, that it "
                        + "was good: and God divided the light from the", " darkness"},
                new String[] {"He that loveth not knoweth not God; for God is", " love"});
        Evaluator.TaskResult r = evaluate("lambada_openai", "lambada_openai.jsonl", null, -1);
        double[] acc = new double[docs.size()];
        double sumLl = 0;
        Gpt2Tokenizer tok = model.tokenizer();
        for (int d = 0; d < docs.size(); d++) {
            int[] ctx = tok.encode(docs.get(d)[0]);
            int[] cont = continuation(ctx, tok.encode(docs.get(d)[0] + docs.get(d)[1]));
            sumLl += logLikelihood(ctx, cont);
            // greedy: generating as many tokens as the word has gives exactly the word
            int[] greedy = model.generate(ctx, GenerationParams.defaults().withMaxNewTokens(cont.length)
                    .withIgnoreEos(true)).tokenIds();
            acc[d] = Arrays.equals(greedy, cont) ? 1 : 0;
        }
        assertEquals(mean(acc), r.metrics().get(Task.Metric.ACC).value(), 0);
        assertEquals(stderr(acc), r.metrics().get(Task.Metric.ACC).stderr(), 1e-12);
        assertEquals(Math.exp(-sumLl / docs.size()), r.metrics().get(Task.Metric.PERPLEXITY).value(),
                1e-3 * Math.exp(-sumLl / docs.size())); // float32 forward, reused vs fresh prefixes
        assertTrue(r.metrics().get(Task.Metric.PERPLEXITY).value() > 1);
    }

    @Test
    void mmluUsesTheSubjectLineAndTheFirstDevExamplesOfTheSubject() {
        String math = "The following are multiple choice questions (with answers) about elementary mathematics.\n\n"
                + "What is 1 + 1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer: B\n\n"
                + "What is 3 x 3?\nA. 6\nB. 9\nC. 12\nD. 33\nAnswer: B\n\n";
        List<String> letters = List.of("A", "B", "C", "D");
        check("mmlu", "mmlu.jsonl", "mmlu_dev.jsonl", 2, List.of(
                Doc.mc(math + "What is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer:", letters, 1),
                Doc.mc("The following are multiple choice questions (with answers) about world religions.\n\n"
                        + "Who led Israel out of Egypt?\nA. Moses\nB. David\nC. Paul\nD. Peter\nAnswer: A\n\n"
                        + "How many days of creation?\nA. 3\nB. 5\nC. 6\nD. 40\nAnswer: C\n\n"
                        + "Which book begins with 'In the beginning'?\nA. Genesis\nB. Exodus\nC. Psalms\nD. Revelation"
                        + "\nAnswer:", letters, 0),
                Doc.mc(math + "Which number is prime?\nA. 4\nB. 6\nC. 7\nD. 9\nAnswer:", letters, 2)));
    }

    @Test
    void mmluDefaultsToFiveShotsAndSaysWhenTheDevSplitIsShort() {
        assertEquals(5, Tasks.byName("mmlu").defaultShots());
        BtlmException e = assertThrows(BtlmException.class,
                () -> evaluate("mmlu", "mmlu.jsonl", "mmlu_dev.jsonl", -1));
        assertTrue(e.getMessage().contains("5 few-shot examples of subject elementary_mathematics"), e.getMessage());
        BtlmException none = assertThrows(BtlmException.class, () -> evaluate("mmlu", "mmlu.jsonl", null, -1));
        assertTrue(none.getMessage().contains("--fewshot-data"), none.getMessage());
    }

    @Test
    void fewshotDrawsAreSeededDistinctAndSolved() {
        Task arc = Tasks.byName("arc_easy");
        List<EvalDoc> pool = TaskData.read(data("arc_train.jsonl"));
        EvalDoc doc = TaskData.read(data("arc_easy.jsonl")).get(0);
        List<EvalDoc> a = arc.fewshotExamples(doc, 0, pool, 2, 7);
        assertEquals(a, arc.fewshotExamples(doc, 0, pool, 2, 7));
        assertNotEquals(a.get(0), a.get(1));
        boolean differs = false;
        for (long seed = 1; seed < 20 && !differs; seed++) {
            differs = !arc.fewshotExamples(doc, 0, pool, 2, seed).equals(a);
        }
        assertTrue(differs, "another seed draws other examples");
        for (long seed = 0; seed < 20; seed++) {
            assertTrue(!arc.fewshotExamples(pool.get(0), 0, pool, 2, seed).contains(pool.get(0)),
                    "a document of the pool is never its own example");
        }
        String prefix = arc.fewshotPrefix(doc, List.of(pool.get(1), pool.get(0)));
        assertEquals("Question: What is ice made of?\nAnswer: water\n\nQuestion: Who built the ark?\nAnswer: Noah\n\n",
                prefix);
        // and a few-shot run scores what its prefixed prompts give
        Evaluator.Options o = new Evaluator.Options(2, 0, 4, 7);
        List<EvalDoc> docs = TaskData.read(data("arc_easy.jsonl"));
        Evaluator.TaskResult r = Evaluator.run(model, Evaluator.plan(model, arc, docs, pool, o), o, null);
        List<Doc> expected = new ArrayList<>();
        for (int d = 0; d < docs.size(); d++) {
            String p = arc.fewshotPrefix(docs.get(d), arc.fewshotExamples(docs.get(d), d, pool, 2, 7));
            Task.Instance inst = arc.instance(docs.get(d), "");
            List<String> choices = inst.requests().stream().map(q -> q.continuation().substring(1)).toList();
            expected.add(Doc.mc(p + inst.requests().get(0).context(), choices, inst.gold()));
        }
        compare(arc, expected, r);
    }

    @Test
    void prefixReuseChangesNothingButTheWork() {
        Task task = Tasks.byName("hellaswag");
        List<EvalDoc> docs = TaskData.read(data("hellaswag.jsonl"));
        Evaluator.Options o = new Evaluator.Options(0, 0, 8, 1);
        Evaluator.Plan plan = Evaluator.plan(model, task, docs, List.of(), o);
        long before = model.forwardedTokens();
        Evaluator.TaskResult reused = Evaluator.run(model, plan, o, null);
        long withReuse = model.forwardedTokens() - before;
        model.setPromptReuse(false);
        try {
            before = model.forwardedTokens();
            Evaluator.TaskResult fresh = Evaluator.run(model, plan, o, null);
            long without = model.forwardedTokens() - before;
            assertEquals(fresh, reused);
            assertTrue(withReuse < without * 0.6, withReuse + " tokens run with reuse, " + without + " without");
        } finally {
            model.setPromptReuse(true);
        }
    }

    @Test
    void badRecordsAreNamed() {
        Task piqa = Tasks.byName("piqa");
        EvalDoc doc = new EvalDoc(new com.fasterxml.jackson.databind.ObjectMapper().createObjectNode()
                .put("goal", "g").put("sol1", "a").put("label", 0), "piqa.jsonl line 7");
        BtlmException e = assertThrows(BtlmException.class, () -> piqa.instance(doc, ""));
        assertEquals("piqa.jsonl line 7: missing field \"sol2\"", e.getMessage());
        BtlmException u = assertThrows(BtlmException.class, () -> Tasks.byName("squad"));
        assertTrue(u.getMessage().contains("available: hellaswag"), u.getMessage());
    }

    // --- the independent computation

    private static Evaluator.TaskResult evaluate(String task, String file, String fewshot, int shots) {
        Evaluator.Options o = new Evaluator.Options(shots, 0, 2, 1234);
        Task t = Tasks.byName(task);
        List<EvalDoc> pool = fewshot == null ? List.of() : TaskData.read(data(fewshot));
        return Evaluator.run(model, Evaluator.plan(model, t, TaskData.read(data(file)), pool, o), o, null);
    }

    private void check(String task, String file, String fewshot, int shots, List<Doc> expected) {
        Task t = Tasks.byName(task);
        // the prompts themselves, as written out above
        List<EvalDoc> docs = TaskData.read(data(file));
        List<EvalDoc> pool = fewshot == null ? List.of() : TaskData.read(data(fewshot));
        for (int d = 0; d < docs.size(); d++) {
            Doc e = expected.get(d);
            Task.Instance inst = t.instance(docs.get(d),
                    t.fewshotPrefix(docs.get(d), t.fewshotExamples(docs.get(d), d, pool, shots, 1234)));
            List<Task.Request> want = new ArrayList<>();
            for (String c : e.contexts()) {
                for (String k : e.continuations()) {
                    want.add(new Task.Request(c, k));
                }
            }
            assertEquals(want, inst.requests(), task + " document " + d);
            assertEquals(e.gold(), inst.gold());
        }
        compare(t, expected, evaluate(task, file, fewshot, shots));
    }

    private static void compare(Task t, List<Doc> expected, Evaluator.TaskResult r) {
        int n = expected.size();
        double[] acc = new double[n];
        double[] accNorm = new double[n];
        for (int d = 0; d < n; d++) {
            Doc e = expected.get(d);
            List<Double> ll = new ArrayList<>();
            for (String c : e.contexts()) {
                for (String k : e.continuations()) {
                    int[] ctx = model.tokenizer().encode(c);
                    ll.add(logLikelihood(ctx, continuation(ctx, model.tokenizer().encode(c + k))));
                }
            }
            int best = 0;
            int bestNorm = 0;
            for (int i = 1; i < ll.size(); i++) {
                if (ll.get(i) > ll.get(best)) {
                    best = i;
                }
                if (e.choiceTexts() != null && ll.get(i) / bytes(e.choiceTexts().get(i))
                        > ll.get(bestNorm) / bytes(e.choiceTexts().get(bestNorm))) {
                    bestNorm = i;
                }
            }
            acc[d] = best == e.gold() ? 1 : 0;
            accNorm[d] = bestNorm == e.gold() ? 1 : 0;
        }
        assertEquals(n, r.docs());
        assertEquals(mean(acc), r.metrics().get(Task.Metric.ACC).value(), 0, t.name() + " acc");
        assertEquals(stderr(acc), r.metrics().get(Task.Metric.ACC).stderr(), 1e-12, t.name() + " acc stderr");
        if (t.metrics().contains(Task.Metric.ACC_NORM)) {
            assertEquals(mean(accNorm), r.metrics().get(Task.Metric.ACC_NORM).value(), 0, t.name() + " acc_norm");
            assertEquals(stderr(accNorm), r.metrics().get(Task.Metric.ACC_NORM).stderr(), 1e-12);
        } else {
            assertTrue(!r.metrics().containsKey(Task.Metric.ACC_NORM), t.name() + " reports no acc_norm in lm-eval");
        }
    }

    /** The continuation's tokens: those of context + continuation after the context's own tokens. */
    private static int[] continuation(int[] ctx, int[] whole) {
        return Arrays.copyOfRange(whole, ctx.length, whole.length);
    }

    /** log p(cont | ctx) from one fresh scoring of the whole sequence. */
    private static double logLikelihood(int[] ctx, int[] cont) {
        int[] all = Arrays.copyOf(ctx, ctx.length + cont.length);
        System.arraycopy(cont, 0, all, ctx.length, cont.length);
        double[] lp = model.score(all).tokenLogprobs();
        double sum = 0;
        for (int t = ctx.length; t < all.length; t++) {
            sum += lp[t];
        }
        return sum;
    }

    private static int bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8).length;
    }

    private static double mean(double[] v) {
        return Arrays.stream(v).sum() / v.length;
    }

    /** Sample standard deviation over √n, written out. */
    private static double stderr(double[] v) {
        double m = mean(v);
        double ss = 0;
        for (double x : v) {
            ss += (x - m) * (x - m);
        }
        return Math.sqrt(ss / (v.length - 1) / v.length);
    }
}
