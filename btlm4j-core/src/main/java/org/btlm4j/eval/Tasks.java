package org.btlm4j.eval;

import java.util.List;
import org.btlm4j.BtlmException;

/** The tasks {@code btlm eval} knows, by name. */
public final class Tasks {
    private Tasks() {
    }

    public static final List<String> NAMES = List.of("hellaswag", "arc_easy", "arc_challenge", "piqa", "winogrande",
            "openbookqa", "boolq", "lambada_openai", "mmlu");

    public static Task byName(String name) {
        return switch (name) {
            case "hellaswag" -> new Hellaswag();
            case "arc_easy", "arc_challenge" -> new Arc(name);
            case "piqa" -> new Piqa();
            case "winogrande" -> new Winogrande();
            case "openbookqa" -> new OpenBookQa();
            case "boolq" -> new BoolQ();
            case "lambada_openai", "lambada" -> new Lambada();
            case "mmlu" -> new Mmlu();
            default -> throw new BtlmException("unknown task \"" + name + "\" (available: " + String.join(", ", NAMES)
                    + ")");
        };
    }
}
