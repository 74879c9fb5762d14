"""The ``raynas`` command line (thin: all work lives in the packages; commands in ``raynas/commands/``).

Errors caused by input (recipe, flags, paths, plugins that cannot be loaded) print one line
``raynas: error: …`` and exit 2; a deprecated recipe path prints one line ``raynas: warning: …`` and the
command goes on.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from typing import Sequence

from raynas.errors import RaynasError, RecipeDeprecationWarning
from raynas.registry import PluginError


def make_parser() -> argparse.ArgumentParser:
    from raynas.commands import COMMANDS

    parser = argparse.ArgumentParser(prog="raynas", description="Ray-based neural architecture search")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_args, _) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from raynas.commands import COMMANDS

    args = make_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", RecipeDeprecationWarning)
            warnings.showwarning = _one_line_warning
            return COMMANDS[args.command][2](args)
    except (RaynasError, PluginError) as err:
        print(f"raynas: error: {err}", file=sys.stderr)
        return err.exit_code


_show_warning = warnings.showwarning


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Recipe deprecations as one line naming the old and new path; other warnings as Python shows them."""
    if issubclass(category, RecipeDeprecationWarning):
        print(f"raynas: warning: {message}", file=sys.stderr)
    else:
        _show_warning(message, category, filename, lineno, file, line)


if __name__ == "__main__":
    sys.exit(main())
