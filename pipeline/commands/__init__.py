"""One module per group of subcommands; each handler takes the parsed arguments and returns an exit code."""
