package org.btlm4j.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.btlm4j.hub.HubCache;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "list", mixinStandardHelpOptions = true,
        description = "Show the models in the local Hugging Face cache: id, revision, commit, size and weight formats.",
        footer = {"%nExamples:", "  btlm list", "  btlm list --json"})
final class ListCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--cache-dir", paramLabel = "DIR",
            description = "The Hub cache (default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub).")
    Path cacheDir;

    @Option(names = "--json", description = "One JSON object with a list of models.")
    boolean json;

    @Option(names = "--verbose", description = "Stack traces on errors.")
    boolean verbose;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        HubCache cache = cacheDir != null ? new HubCache(cacheDir) : HubCache.fromEnvironment();
        List<HubCache.Entry> entries = cache.list();
        if (json) {
            List<Map<String, Object>> models = new ArrayList<>();
            for (HubCache.Entry e : entries) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("id", e.repo());
                m.put("revision", e.revision());
                m.put("commit", e.commit());
                m.put("bytes", e.bytes());
                m.put("formats", e.formats());
                m.put("path", e.snapshot().toString());
                models.add(m);
            }
            out.println(Json.write(Map.of("cache", cache.root().toString(), "models", models)));
            return 0;
        }
        if (entries.isEmpty()) {
            out.println("no models in the Hugging Face cache at " + cache.root() + " (download one with btlm pull ORG/NAME)");
            return 0;
        }
        int width = Math.max(5, entries.stream().mapToInt(e -> e.repo().length()).max().orElse(0));
        int revWidth = Math.max(8, entries.stream().mapToInt(e -> e.revision().length()).max().orElse(0));
        String row = "%-" + width + "s  %-" + revWidth + "s  %-10s  %10s  %s%n";
        out.printf(row, "MODEL", "REVISION", "COMMIT", "SIZE", "FORMATS");
        for (HubCache.Entry e : entries) {
            out.printf(row, e.repo(), e.revision(), e.commit().substring(0, Math.min(10, e.commit().length())),
                    InfoCommand.human(e.bytes()), e.formats().isEmpty() ? "-" : String.join(",", e.formats()));
        }
        out.println("(cache: " + cache.root() + ")");
        return 0;
    }
}
