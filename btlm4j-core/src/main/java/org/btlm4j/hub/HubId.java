package org.btlm4j.hub;

import java.util.regex.Pattern;
import org.btlm4j.BtlmException;

/**
 * A model repository on the Hugging Face Hub: {@code org/name}, optionally pinned to a revision
 * (a branch, a tag or a commit) with {@code org/name@revision}.
 *
 * @param repo     {@code org/name}
 * @param revision the branch, tag or commit; {@code main} when none was given
 */
public record HubId(String repo, String revision) {
    /** The default branch of a Hub repository. */
    public static final String MAIN = "main";

    private static final Pattern PART = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");
    private static final Pattern REVISION = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._/-]*");

    public HubId {
        String[] parts = repo == null ? new String[0] : repo.split("/", -1);
        if (parts.length != 2 || !PART.matcher(parts[0]).matches() || !PART.matcher(parts[1]).matches()
                || repo.contains("..")) {
            throw new BtlmException("\"" + repo + "\" is not a Hub model id (expected ORG/NAME, e.g. "
                    + "cerebras/btlm-3b-8k-base)");
        }
        if (revision == null || !REVISION.matcher(revision).matches() || revision.contains("..")) {
            throw new BtlmException("\"" + revision + "\" is not a valid revision of " + repo
                    + " (a branch, tag or commit)");
        }
    }

    /** Parses {@code org/name} or {@code org/name@revision}. */
    public static HubId parse(String text) {
        int at = text.indexOf('@');
        return at < 0 ? new HubId(text, MAIN) : new HubId(text.substring(0, at), text.substring(at + 1));
    }

    /** Whether {@code text} has the shape of a Hub id (it may still also name a local path). */
    public static boolean looksLike(String text) {
        try {
            parse(text);
            return true;
        } catch (BtlmException e) {
            return false;
        }
    }

    /** The organisation (or user) part. */
    public String org() {
        return repo.substring(0, repo.indexOf('/'));
    }

    /** The model name part. */
    public String name() {
        return repo.substring(repo.indexOf('/') + 1);
    }

    /** Whether the revision is a full commit hash (40 hex digits) rather than a branch or tag. */
    public boolean isCommit() {
        return revision.matches("[0-9a-f]{40}");
    }

    @Override
    public String toString() {
        return MAIN.equals(revision) ? repo : repo + "@" + revision;
    }
}
