package org.btlm4j.hub;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.btlm4j.BtlmException;

/**
 * The Hugging Face cache on disk, in the layout the Python tools use, so that models downloaded
 * by either are shared:
 *
 * <pre>
 * ROOT/models--ORG--NAME/refs/REVISION        the commit a branch or tag points at
 * ROOT/models--ORG--NAME/blobs/ETAG           each file's content, named by its Hub etag
 * ROOT/models--ORG--NAME/snapshots/COMMIT/F   links to the blobs, one tree per commit
 * </pre>
 *
 * ROOT is {@code $HF_HUB_CACHE}, else {@code $HF_HOME/hub}, else {@code ~/.cache/huggingface/hub}.
 */
public final class HubCache {
    private final Path root;

    /** A cache at {@code root} (the directory holding the {@code models--*} folders). */
    public HubCache(Path root) {
        this.root = root;
    }

    /** The cache the environment names ({@code HF_HUB_CACHE}, {@code HF_HOME}) or the default one. */
    public static HubCache fromEnvironment() {
        return fromEnvironment(System.getenv(), Path.of(System.getProperty("user.home")));
    }

    /** The cache {@code env} names, with {@code home} for the default. */
    public static HubCache fromEnvironment(Map<String, String> env, Path home) {
        String hubCache = env.get("HF_HUB_CACHE");
        if (hubCache != null && !hubCache.isBlank()) {
            return new HubCache(Path.of(hubCache));
        }
        String hfHome = env.get("HF_HOME");
        if (hfHome != null && !hfHome.isBlank()) {
            return new HubCache(Path.of(hfHome, "hub"));
        }
        return new HubCache(home.resolve(".cache").resolve("huggingface").resolve("hub"));
    }

    /** The directory holding the {@code models--*} folders. */
    public Path root() {
        return root;
    }

    /** {@code ROOT/models--ORG--NAME}. */
    public Path repoDir(HubId id) {
        return root.resolve("models--" + id.org() + "--" + id.name());
    }

    /**
     * The snapshot directory of {@code id} at its revision: the commit that {@code refs/REVISION}
     * names, or the revision itself when it is a commit with a snapshot.
     *
     * @throws BtlmException naming the paths looked at when the model or revision is not cached
     */
    public Path snapshot(HubId id) {
        Path repo = repoDir(id);
        if (!Files.isDirectory(repo)) {
            throw new BtlmException(id.repo() + " is not in the Hugging Face cache (looked for " + repo
                    + "); download it with: btlm pull " + id);
        }
        Path ref = repo.resolve("refs").resolve(id.revision());
        String commit;
        if (Files.isRegularFile(ref)) {
            commit = readRef(ref);
        } else if (Files.isDirectory(repo.resolve("snapshots").resolve(id.revision()))) {
            commit = id.revision();
        } else {
            throw new BtlmException(id.repo() + ": revision " + id.revision() + " is not in the Hugging Face cache "
                    + "(looked for " + ref + " and " + repo.resolve("snapshots").resolve(id.revision())
                    + "); download it with: btlm pull " + id);
        }
        Path snapshot = repo.resolve("snapshots").resolve(commit);
        if (!Files.isDirectory(snapshot)) {
            throw new BtlmException(id + ": " + ref + " names commit " + commit + " but " + snapshot
                    + " does not exist; download it again with: btlm pull " + id);
        }
        return snapshot;
    }

    private static String readRef(Path ref) {
        try {
            return Files.readString(ref, StandardCharsets.UTF_8).strip();
        } catch (IOException e) {
            throw new BtlmException(ref + ": cannot read (" + e.getMessage() + ")");
        }
    }

    /**
     * Where the model {@code nameOrPath} is: an existing directory or file as it is, else a Hub id
     * {@code org/name[@revision]} looked up in this cache.
     *
     * @throws BtlmException naming what was looked for when it is neither
     */
    public Path resolve(String nameOrPath) {
        Path path;
        try {
            path = Path.of(nameOrPath);
        } catch (java.nio.file.InvalidPathException e) {
            path = null;
        }
        if (path != null && Files.exists(path)) {
            return path;
        }
        if (HubId.looksLike(nameOrPath)) {
            try {
                return snapshot(HubId.parse(nameOrPath));
            } catch (BtlmException e) {
                throw new BtlmException(nameOrPath + ": no such file or directory, and " + e.getMessage());
            }
        }
        throw new BtlmException(nameOrPath + ": no such file or directory (and not a Hub model id ORG/NAME[@REVISION])");
    }

    /**
     * One cached revision of a model, as {@code btlm list} shows it.
     *
     * @param repo     {@code org/name}
     * @param revision the refs (branches, tags) naming this commit, comma-separated, or {@code -}
     * @param commit   the snapshot's commit
     * @param snapshot the snapshot directory
     * @param bytes    the size of the files in the snapshot
     * @param formats  the weight formats found: {@code safetensors}, {@code pytorch}, {@code gguf}
     */
    public record Entry(String repo, String revision, String commit, Path snapshot, long bytes, List<String> formats) {
    }

    /**
     * Every cached snapshot, with the branches and tags that point at it ({@code -} for a commit
     * no ref names). Sizes count the files a snapshot links to, following links.
     */
    public List<Entry> list() {
        List<Entry> out = new ArrayList<>();
        if (!Files.isDirectory(root)) {
            return out;
        }
        try (Stream<Path> repos = Files.list(root)) {
            for (Path repo : repos.sorted().toList()) {
                String dir = repo.getFileName().toString();
                if (!dir.startsWith("models--") || !Files.isDirectory(repo.resolve("snapshots"))) {
                    continue;
                }
                String id = dir.substring("models--".length()).replaceFirst("--", "/");
                Map<String, List<String>> refs = refsByCommit(repo.resolve("refs"));
                try (Stream<Path> snaps = Files.list(repo.resolve("snapshots"))) {
                    for (Path snap : snaps.sorted().toList()) {
                        String commit = snap.getFileName().toString();
                        List<String> names = refs.getOrDefault(commit, List.of("-"));
                        out.add(new Entry(id, String.join(",", names), commit, snap, size(snap), formats(snap)));
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(root + ": cannot list the Hugging Face cache", e);
        }
        return out;
    }

    private static Map<String, List<String>> refsByCommit(Path refs) throws IOException {
        Map<String, List<String>> out = new java.util.TreeMap<>();
        if (!Files.isDirectory(refs)) {
            return out;
        }
        try (Stream<Path> files = Files.walk(refs)) {
            for (Path f : files.filter(Files::isRegularFile).sorted().toList()) {
                String name = refs.relativize(f).toString().replace('\\', '/');
                out.computeIfAbsent(readRef(f), k -> new ArrayList<>()).add(name);
            }
        }
        return out;
    }

    private static long size(Path snapshot) throws IOException {
        try (Stream<Path> files = Files.walk(snapshot)) {
            long sum = 0;
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                sum += Files.size(f); // follows the link to the blob
            }
            return sum;
        }
    }

    private static List<String> formats(Path snapshot) throws IOException {
        TreeSet<String> out = new TreeSet<>();
        try (Stream<Path> files = Files.walk(snapshot)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                String name = f.getFileName().toString();
                if (name.endsWith(".safetensors")) {
                    out.add("safetensors");
                } else if (name.endsWith(".bin") && name.startsWith("pytorch_model")) {
                    out.add("pytorch");
                } else if (name.endsWith(".gguf")) {
                    out.add("gguf");
                }
            }
        }
        return List.copyOf(out);
    }
}
