"""Loader for the NAS-Bench-201 table (``nb201.csv.gz``: 15,625 rows, one per arch).

The package ships this loader, not the data. The path is resolved, in order, from the argument, the
``RAYNAS_NB201_PATH`` environment variable, then ``shared/data/nb201`` in the working directory or any
parent of it, then beside the installed package's parents (a source checkout next to ``shared/``).
``NB201TableMissing`` says where it looked.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from raynas.errors import RaynasError, RecipeError
from raynas.space.nb201 import EDGES, OPS, NB201Space

TABLE_FILE = "nb201.csv.gz"
ENV_PATH = "RAYNAS_NB201_PATH"
SHARED_SUBDIR = Path("shared") / "data" / "nb201"
NUM_ARCHS = len(OPS) ** len(EDGES)
LATENCY_PREFIX = "lat_"


class NB201TableMissing(RaynasError):
    pass


def resolve_path(path: str | os.PathLike | None = None) -> Path:
    """Return the table file for ``path`` (a file or its folder), or raise ``NB201TableMissing``."""
    tried: list[Path] = []
    candidates: list[Path] = []
    if path is not None:
        candidates.append(Path(path))
    elif os.environ.get(ENV_PATH):
        candidates.append(Path(os.environ[ENV_PATH]))
    else:
        roots = dict.fromkeys([*_with_parents(Path.cwd()), *_with_parents(Path(__file__).parent)])
        candidates += [root / SHARED_SUBDIR for root in roots]
    for cand in candidates:
        file = cand if cand.suffix == ".gz" else cand / TABLE_FILE
        tried.append(file)
        if file.is_file():
            return file
    where = str(tried[0]) if len(tried) == 1 else f"{tried[0]} (and {len(tried) - 1} other folders)"
    raise NB201TableMissing(f"NAS-Bench-201 table not found at {where}; set the path to the folder "
                            f"holding {TABLE_FILE} or ${ENV_PATH}")


def _with_parents(p: Path) -> list[Path]:
    p = p.resolve()
    return [p, *p.parents]


def arch_code(arch: tuple[int, ...]) -> int:
    """Base-5 number of an arch's op indices: a dense key 0..15624 (not the benchmark index)."""
    code = 0
    for op in arch:
        code = code * len(OPS) + op
    return code


class NB201Table:
    """Columns of the table as numpy arrays, addressable by arch (``row(arch)``) or benchmark index."""

    def __init__(self, file: Path) -> None:
        import pyarrow.csv as pacsv

        table = pacsv.read_csv(file)
        if table.num_rows != NUM_ARCHS:
            raise NB201TableMissing(f"{file}: expected {NUM_ARCHS} rows, got {table.num_rows}")
        self.file = file
        self.columns: dict[str, np.ndarray] = {
            name: table.column(name).to_numpy() for name in table.column_names if name != "arch"
        }
        self.arch_strs: list[str] = table.column("arch").to_pylist()
        space = NB201Space()
        self._code_to_row = np.empty(NUM_ARCHS, dtype=np.int64)
        for row, s in enumerate(self.arch_strs):
            self._code_to_row[arch_code(space.from_str(s))] = row
        self.index = self.columns["index"].astype(np.int64)

    def row(self, arch: tuple[int, ...]) -> int:
        return int(self._code_to_row[arch_code(arch)])

    def index_of(self, arch: tuple[int, ...]) -> int:
        """The benchmark's own index (0..15624) of ``arch``."""
        return int(self.index[self.row(arch)])

    def arch_at(self, index: int) -> str:
        rows = np.flatnonzero(self.index == index)
        if len(rows) != 1:
            raise IndexError(f"no NB201 arch with index {index}")
        return self.arch_strs[int(rows[0])]

    def devices(self) -> list[str]:
        """The devices with a latency column (``lat_<device>``)."""
        return sorted(c[len(LATENCY_PREFIX):] for c in self.columns if c.startswith(LATENCY_PREFIX))

    def latency(self, device: str, field: str = "latency_device") -> np.ndarray:
        """Latency (ms) per row on ``device``; an unknown device is a ``RecipeError`` at ``field``."""
        name = LATENCY_PREFIX + device
        if name not in self.columns:
            raise RecipeError(field, f"unknown device {device!r}; known: {', '.join(self.devices())}")
        return self.columns[name]

    def column(self, name: str) -> np.ndarray:
        if name not in self.columns:
            raise KeyError(f"{self.file}: no column {name!r}")
        return self.columns[name]


@functools.lru_cache(maxsize=4)
def load_table(path: str | None = None) -> NB201Table:
    """Load (and cache per process) the table found by ``resolve_path(path)``."""
    return NB201Table(resolve_path(path))
