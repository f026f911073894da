package org.btlm4j.cli;

import picocli.CommandLine.ArgGroup;

/** Mixes the input options (-p, -f, --token-ids) into a command. */
final class InputMixin {
    @ArgGroup(exclusive = false, heading = "Input (exactly one):%n")
    InputOptions options = new InputOptions();
}
