"""A recipe fuzzer (issue 11): every leaf of every shipped recipe mutated — wrong type, negative, zero,
huge, unknown choice, deleted, an unknown key beside it — plus non-UTF-8 bytes and an empty file, each
run through ``raynas validate`` in this process under a time limit. Never a traceback, never a hang;
every rejection is one ``raynas: error:`` line naming a recipe field path (or the file). The counts
are printed (``pytest -s``)."""
from __future__ import annotations

import contextlib
import copy
import io
import re
import signal
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from raynas.cli import main

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
TIME_LIMIT_S = 20
UNKNOWN_KEY, UNKNOWN_CHOICE = "no_such_field", "no-such-choice"
HUGE_INT, HUGE_FLOAT = 10 ** 12, 1e300
ERROR = re.compile(r"^raynas: error: (?P<path>[^:]+): \S")
PATH = re.compile(r"^(recipe( \S+)?|[A-Za-z_]\w*(\[\d+\])?(\.\w+(\[\d+\])?)*)$")  # field path, or the file


def leaves(node: Any, path: tuple = ()) -> Iterator[tuple]:
    """Paths (tuples of keys and list indexes) of every scalar and empty container."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list) and node:
        for i, value in enumerate(node):
            yield from leaves(value, (*path, i))
    else:
        yield path


def values_for(value: Any) -> list[tuple[str, Any]]:
    """The mutations of one leaf value: ``(kind, new value)``."""
    wrong = {bool: "maybe", int: "abc", float: "abc", str: [1, 2], type(None): {"a": [1]}}
    out = [("wrong type", wrong.get(type(value), 7))]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        huge = HUGE_FLOAT if isinstance(value, float) else HUGE_INT
        out += [("negative", -abs(value) - 1), ("zero", 0), ("huge", huge)]
    else:
        out += [("zero", 0), ("huge", HUGE_INT)]
    if isinstance(value, str):
        out.append(("unknown choice", UNKNOWN_CHOICE))
    return out


def set_at(data: Any, path: tuple, value: Any = None, delete: bool = False, sibling: bool = False) -> Any:
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    last = path[-1]
    if sibling:
        node[UNKNOWN_KEY] = 1
    elif delete:
        del node[last]
    else:
        node[last] = value
    return data


def mutations(text: str) -> Iterator[tuple[str, bytes]]:
    """``(label, file bytes)`` of every mutation of one recipe."""
    data = yaml.safe_load(text)
    yield "empty file", b""
    yield "non-UTF-8 bytes", text.encode()[:40] + b"\xff\xfe" + text.encode()[40:]
    for path in leaves(data):
        if not path:
            continue
        where = ".".join(str(p) for p in path)
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        for kind, value in values_for(parent[path[-1]]):
            yield f"{where}: {kind}", yaml.safe_dump(set_at(data, path, value)).encode()
        yield f"{where}: deleted", yaml.safe_dump(set_at(data, path, delete=True)).encode()
        if isinstance(parent, dict):
            yield f"{where}: unknown key beside it", yaml.safe_dump(set_at(data, path, sibling=True)).encode()


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def validate(path: Path) -> tuple[int | None, str, str]:
    """``(exit code, stderr, problem)``: problem is "" or what went wrong (a traceback, a hang)."""
    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT_S)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["validate", str(path)])
        return code, err.getvalue(), ""
    except Hang:
        return None, err.getvalue(), f"no answer within {TIME_LIMIT_S} s"
    except SystemExit as exc:  # argparse
        return exc.code, err.getvalue(), ""
    except BaseException as exc:  # noqa: BLE001 - what the fuzzer looks for
        return None, err.getvalue(), f"traceback: {type(exc).__name__}: {exc}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def problem_with_rejection(stderr: str) -> str:
    errors = [ln for ln in stderr.splitlines() if ln.startswith("raynas: error:")]
    if len(errors) != 1:
        return f"expected one error line, got: {stderr[-300:]!r}"
    match = ERROR.match(errors[0])
    if not match or not PATH.match(match["path"]):
        return f"the error names no field path: {errors[0]!r}"
    return ""


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_mutation_is_accepted_or_rejected_naming_a_field(recipe, tmp_path, nb201_path, monkeypatch):
    monkeypatch.setenv("RAYNAS_NB201_PATH", nb201_path)
    monkeypatch.chdir(tmp_path)
    tried = rejected = 0
    problems = []
    for label, content in mutations(recipe.read_text(encoding="utf-8")):
        path = tmp_path / recipe.name
        path.write_bytes(content)
        code, stderr, problem = validate(path)
        tried += 1
        if not problem and code not in (0, 2):
            problem = f"exit {code}"
        if not problem and code == 2:
            rejected += 1
            problem = problem_with_rejection(stderr)
        if problem:
            problems.append(f"{label}: {problem}")
    print(f"\n{recipe.name}: {tried} mutations, {rejected} rejected ({rejected / tried:.0%})")
    assert not problems, "\n".join(problems[:30])
    assert rejected > tried // 3  # most mutations are wrong; a fuzzer accepting nearly all finds nothing
