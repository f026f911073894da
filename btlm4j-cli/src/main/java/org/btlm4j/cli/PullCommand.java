package org.btlm4j.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.btlm4j.hub.HubCache;
import org.btlm4j.hub.HubClient;
import org.btlm4j.hub.HubId;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "pull", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Download a model from the Hugging Face Hub into the local Hub cache (the layout the Python "
                + "tools share), fetching only config, tokenizer and weights files; an interrupted download resumes, "
                + "every file is checked against the Hub's SHA-256.",
            "Environment: HF_ENDPOINT (the Hub's URL), HF_TOKEN (for gated or private models), HF_HUB_CACHE or "
                + "HF_HOME (where the cache is)."},
        footer = {"%nExamples:",
            "  btlm pull cerebras/btlm-3b-8k-base",
            "  btlm pull cerebras/btlm-3b-8k-base@main && btlm generate -m cerebras/btlm-3b-8k-base -p \"Hello\""})
final class PullCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(paramLabel = "ORG/NAME[@REVISION]", description = "The model's Hub id; the revision (branch, tag or "
            + "commit) defaults to main.")
    String id;

    @Option(names = "--endpoint", paramLabel = "URL",
            description = "The Hub to download from (default: $HF_ENDPOINT, else " + HubClient.DEFAULT_ENDPOINT + ").")
    String endpoint;

    @Option(names = "--token", paramLabel = "TOKEN", description = "Hub access token (default: $HF_TOKEN).")
    String token;

    @Option(names = "--cache-dir", paramLabel = "DIR",
            description = "The Hub cache (default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub).")
    Path cacheDir;

    @Option(names = "--verbose", description = "Stack traces on errors.")
    boolean verbose;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        HubId hubId = HubId.parse(id);
        HubCache cache = cacheDir != null ? new HubCache(cacheDir) : HubCache.fromEnvironment();
        HubClient env = HubClient.fromEnvironment(cache);
        HubClient client = new HubClient(endpoint != null ? endpoint : env.endpoint().toString(),
                token != null ? token : System.getenv("HF_TOKEN"), cache);
        long start = System.nanoTime();
        HubClient.Pulled pulled;
        try (Bar bar = new Bar(err, "pulling " + hubId.repo())) {
            pulled = client.pull(hubId, bar);
        }
        out.printf("%s: commit %s, %d files (%s downloaded in %.1f s)%n  %s%n", hubId, pulled.commit(),
                pulled.files().size(), InfoCommand.human(pulled.downloadedBytes()), (System.nanoTime() - start) / 1e9,
                pulled.snapshot());
        return 0;
    }

    /** The pull's progress on a {@link ProgressBar}, created once the total is known. */
    private static final class Bar implements HubClient.Listener, AutoCloseable {
        private final PrintWriter err;
        private final String label;
        private ProgressBar bar;
        private long done;

        Bar(PrintWriter err, String label) {
            this.err = err;
            this.label = label;
        }

        @Override
        public void started(long totalBytes, long alreadyPresent) {
            if (totalBytes > 0) {
                bar = new ProgressBar(err, label, totalBytes, ProgressBar.Unit.BYTES);
                done = alreadyPresent;
                bar.update(done);
            }
        }

        @Override
        public void transferred(long bytes) {
            done += bytes;
            if (bar != null) {
                bar.update(done);
            }
        }

        @Override
        public void retrying(String message) {
            if (ProgressBar.isTerminal()) {
                err.println();
            }
            err.println("btlm: " + message);
        }

        @Override
        public void close() {
            if (bar != null) {
                bar.close();
            }
        }
    }
}
