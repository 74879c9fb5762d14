"""CLI subcommands; importing this package registers them (one module per command)."""
from raynas.commands import run  # noqa: F401  (run, validate)
from raynas.commands.registry import COMMANDS, command

__all__ = ["COMMANDS", "command"]
