"""The ``raynas`` command line (thin: all work lives in the packages; commands in ``raynas/commands/``).

Errors caused by input (recipe, flags, paths) print one line ``raynas: error: …`` and exit 2.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from raynas.errors import RaynasError


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
        return COMMANDS[args.command][2](args)
    except RaynasError as err:
        print(f"raynas: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
