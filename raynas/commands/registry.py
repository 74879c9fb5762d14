"""Subcommand registry: each ``raynas <command>`` lives in its own module under ``raynas/commands/``
and registers itself with ``@command(name, help, add_args)``."""
from __future__ import annotations

import argparse
from typing import Callable

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {}


def command(name: str, help: str, add_args: Callable[[argparse.ArgumentParser], None]):
    def deco(fn: Handler) -> Handler:
        COMMANDS[name] = (help, add_args, fn)
        return fn

    return deco
