"""CLI subcommands; importing this package registers them (one module per command)."""
from raynas.commands import run  # noqa: F401  (registration order = the order of `raynas --help`)
from raynas.commands import compare, export, resume_tracking, ui  # noqa: F401,I001
from raynas.commands import bench  # noqa: F401
from raynas.commands.registry import COMMANDS, command

__all__ = ["COMMANDS", "command"]
