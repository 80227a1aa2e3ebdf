"""The ``dataferry`` command: Typer commands, one module per group."""
