"""The lab's commands: thin Typer functions over `evals`, registered by `ui.cli`."""
