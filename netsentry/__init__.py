"""The ``netsentry`` command: one entry point whose subcommands come from the parts (serve, lab)."""
