"""CLI subcommands; importing this package registers them (one module per command)."""
from raynas.commands import (  # noqa: F401,I001
    bench,  # noqa: F401
    compare,
    export,
    resume,
    resume_tracking,
    run,  # noqa: F401  (registration order = the order of `raynas --help`)
    ui,
)
from raynas.commands.registry import COMMANDS, command

__all__ = ["COMMANDS", "command"]
