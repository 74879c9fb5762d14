"""Op-wise latency lookup table (LUT) for the ``mbv3`` space, measured on the current machine.

Contract:
  * ``LatencyLUT.build(space, device, batch_size, repeats, num_threads)`` times, on ``device`` (``cpu``,
    ``cuda``, or ``auto`` = CUDA when available), every op a subnet of ``space`` can run, each as a
    stand-alone module fed tensors of the shapes it sees in ``MBV3Supernet`` (NHWC after the stem, as
    the supernet runs by default), in eval mode without autograd:
      - ``stem``: the stem conv-BN-hswish (and the switch to channels-last);
      - ``head``: head conv-BN-hswish, global pool and classifier;
      - one entry per distinct block configuration ``(cin, cout, stride, input resolution, effective
        kernel, expand)`` — keys from ``block_key``, so slots and kernels that compute alike
        (``space.slot_geometry``, ``space.effective_kernel``) share one entry. A block is the
        supernet's own ``ElasticMBConv`` (largest kernel/expand of the space) run at that kernel and
        expand, so it costs what it costs inside the supernet.
    Each entry is the median of ``repeats`` timed calls after ``warmup`` untimed ones, in ms
    (``torch.cuda.synchronize()`` around every timed call on CUDA); ``num_threads`` torch threads.
  * ``predict(space, arch)`` = stem + the entries of the arch's active blocks + head (ms).
  * ``save(path)``/``load(path, space=None)``: JSON with ``meta`` (device type and name, torch version,
    batch size, threads, repeats, date, the space config) and ``entries``. A LUT used with (``predict``)
    or loaded for (``load(..., space)``) a space whose config differs from ``meta["space_config"]``
    raises ``ValueError`` naming the differing fields.
Torch is imported when timing, not with this module: loading a LUT and ``predict`` need none, and
neither does ``raynas --help``.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import platform
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from raynas.devices import AUTO, CUDA, resolve_device
from raynas.space.mbv3 import MBV3Arch, MBV3Space, as_arch

STEM, HEAD, BLOCK_PREFIX = "stem", "head", "block"
FORMAT_VERSION = 1
DEFAULT_REPEATS, DEFAULT_WARMUP = 50, 10
INPUT_SEED = 0
SPACE_NAME = "mbv3"

if TYPE_CHECKING:
    import torch
    from torch import nn


# ----- device and timing ---------------------------------------------------------------------------
def device_name(device: str) -> str:
    """A human-readable name of the processor behind ``device`` (GPU model or CPU model)."""
    if device == CUDA:
        import torch

        return torch.cuda.get_device_name()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def time_call(fn: Callable[[], Any], device: str, repeats: int = DEFAULT_REPEATS,
              warmup: int = DEFAULT_WARMUP) -> float:
    """Median wall time of ``fn()`` in ms over ``repeats`` timed calls after ``warmup`` untimed ones
    (synchronizing CUDA before and after each timed call)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    import torch

    sync = torch.cuda.synchronize if device == CUDA else (lambda: None)
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        samples = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


class _torch_threads:
    """Context manager: ``torch.set_num_threads(n)`` inside, the previous value restored on exit."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"num_threads must be >= 1, got {n}")
        import torch

        self.torch = torch
        self.n, self.before = n, torch.get_num_threads()

    def __enter__(self) -> None:
        self.torch.set_num_threads(self.n)

    def __exit__(self, *exc) -> None:
        self.torch.set_num_threads(self.before)


# ----- entries ---------------------------------------------------------------------------------------
def block_key(space: MBV3Space, slot: int, kernel: int, expand: int) -> str:
    """LUT key of the block in ``slot`` run at ``kernel``/``expand``: equal for equal computations."""
    cin, cout, stride, res = space.slot_geometry(slot)
    k = space.effective_kernel(slot, kernel)
    return f"{BLOCK_PREFIX}:cin{cin}-cout{cout}-s{stride}-r{res}-k{k}-e{expand}"


def block_configs(space: MBV3Space) -> dict[str, tuple[int, int]]:
    """Every block key the space can use -> ``(slot, kernel, expand)`` of one slot that uses it."""
    out: dict[str, tuple[int, int]] = {}
    for slot in range(space.num_slots):
        for kernel in space.kernel_choices:
            for expand in space.expand_choices:
                out.setdefault(block_key(space, slot, kernel, expand), (slot, kernel, expand))
    return out


def space_config(space: MBV3Space) -> dict[str, Any]:
    """The space's config as plain JSON values (what a LUT is tied to)."""
    return json.loads(json.dumps(dataclasses.asdict(space.config)))


def _supernet_layout() -> bool:
    """Whether the supernet runs NHWC after its stem (its default config)."""
    from raynas.supernet.mbv3 import MBV3Supernet

    return MBV3Supernet.Config().channels_last


def _input(shape: tuple[int, ...], device: str, channels_last: bool) -> torch.Tensor:
    import torch

    x = torch.randn(*shape, generator=torch.Generator().manual_seed(INPUT_SEED)).to(device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _ready(module: nn.Module, device: str) -> nn.Module:
    from raynas.supernet.base import init_weights

    init_weights(module, seed=0)  # no uninitialised (denormal / NaN) weights distorting timings
    return module.to(device).eval()


def _stem_fn(space: MBV3Space, batch: int, device: str, nhwc: bool) -> Callable[[], Any]:
    import torch

    from raynas.supernet.base import private_rng
    from raynas.supernet.ops import ConvBNAct

    cfg = space.config
    with private_rng():
        stem = _ready(ConvBNAct(cfg.in_channels, cfg.stem_width, 3), device)
    x = _input((batch, cfg.in_channels, cfg.resolution, cfg.resolution), device, False)
    layout = torch.channels_last if nhwc else torch.contiguous_format
    return lambda: stem(x).contiguous(memory_format=layout)


def _head_fn(space: MBV3Space, batch: int, device: str, nhwc: bool) -> Callable[[], Any]:
    from torch import nn

    from raynas.supernet.base import private_rng
    from raynas.supernet.ops import ConvBNAct

    cfg, res = space.config, space.stage_resolutions[-1][1]
    with private_rng():
        head = _ready(ConvBNAct(cfg.stage_widths[-1], cfg.head_width, 1), device)
        classifier = _ready(nn.Linear(cfg.head_width, cfg.num_classes), device)
    x = _input((batch, cfg.stage_widths[-1], res, res), device, nhwc)
    return lambda: classifier(head(x).mean(dim=(2, 3)))


def _block_fn(space: MBV3Space, slot: int, kernel: int, expand: int, batch: int, device: str,
              nhwc: bool) -> Callable[[], Any]:
    from raynas.supernet.base import private_rng
    from raynas.supernet.mbv3 import ElasticMBConv

    cin, cout, stride, res = space.slot_geometry(slot)
    with private_rng():
        block = _ready(ElasticMBConv(cin, cout, stride, space.expand_choices[-1], space.kernel_choices[-1]),
                       device)
    x = _input((batch, cin, res, res), device, nhwc)
    k = space.effective_kernel(slot, kernel)
    return lambda: block(x, k, expand)


# ----- the table -------------------------------------------------------------------------------------
class LatencyLUT:
    """Per-op latencies (ms) of one machine for one ``mbv3`` space config; see the module docstring."""

    def __init__(self, entries: dict[str, float], meta: dict[str, Any]) -> None:
        self.entries = dict(entries)
        self.meta = dict(meta)
        self._checked: MBV3Space | None = None  # the last space ``check_space`` accepted

    @classmethod
    def build(cls, space: MBV3Space, device: str = AUTO, batch_size: int = 1,
              repeats: int = DEFAULT_REPEATS, num_threads: int = 1, warmup: int = DEFAULT_WARMUP) -> "LatencyLUT":
        """Time the stem, the head and every distinct block configuration of ``space`` on ``device``."""
        if space.name != SPACE_NAME:
            raise ValueError(f"latency LUTs are for the {SPACE_NAME} space, not {space.name!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        device = resolve_device(device)
        nhwc = _supernet_layout()
        fns = {STEM: _stem_fn(space, batch_size, device, nhwc), HEAD: _head_fn(space, batch_size, device, nhwc)}
        for key, (slot, kernel, expand) in block_configs(space).items():
            fns[key] = _block_fn(space, slot, kernel, expand, batch_size, device, nhwc)
        start = time.perf_counter()
        with _torch_threads(num_threads):
            entries = {key: time_call(fn, device, repeats, warmup) for key, fn in fns.items()}
        import torch

        meta = {
            "format_version": FORMAT_VERSION, "space": SPACE_NAME, "space_config": space_config(space),
            "device": device, "device_name": device_name(device), "torch_version": torch.__version__,
            "batch_size": batch_size, "num_threads": num_threads, "repeats": repeats, "warmup": warmup,
            "channels_last": nhwc, "build_seconds": round(time.perf_counter() - start, 3),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        return cls(entries, meta)

    def check_space(self, space: MBV3Space) -> None:
        """``ValueError`` unless the LUT was built for ``space``'s exact config."""
        if space.name != self.meta.get("space", SPACE_NAME):
            raise ValueError(f"latency LUT was built for space {self.meta.get('space')!r}, not {space.name!r}")
        built, given = self.meta.get("space_config", {}), space_config(space)
        if built != given:
            diff = sorted(k for k in set(built) | set(given) if built.get(k) != given.get(k))
            details = ", ".join(f"{k}: LUT {built.get(k)!r} vs space {given.get(k)!r}" for k in diff)
            raise ValueError(f"latency LUT was built for another mbv3 space config ({details}); "
                             "rebuild it with `raynas bench latency`")

    def predict(self, space: MBV3Space, arch: MBV3Arch | tuple) -> float:
        """Predicted latency (ms) of ``arch``: stem + its active blocks + head."""
        if self._checked is not space:
            self.check_space(space)
            self._checked = space
        arch = as_arch(arch)
        blocks = sum(self.entries[block_key(space, slot, arch.kernels[slot], arch.expands[slot])]
                     for slot in space.active_slots(arch))
        return self.entries[STEM] + blocks + self.entries[HEAD]

    def to_dict(self) -> dict[str, Any]:
        return {"meta": self.meta, "entries": self.entries}

    def save(self, path: str | Path) -> Path:
        """Write the LUT as JSON (parent folders created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, space: MBV3Space | None = None) -> "LatencyLUT":
        """Read a LUT written by ``save``; with ``space``, ``ValueError`` unless it was built for it."""
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict) or not {"meta", "entries"} <= set(data):
            raise ValueError(f"{path}: not a latency LUT (needs 'meta' and 'entries')")
        lut = cls({k: float(v) for k, v in data["entries"].items()}, data["meta"])
        if space is not None:
            lut.check_space(space)
        return lut


def measure_subnet(space: MBV3Space, arch: MBV3Arch | tuple, device: str = AUTO, batch_size: int = 1,
                   repeats: int = DEFAULT_REPEATS, num_threads: int = 1, warmup: int = DEFAULT_WARMUP,
                   supernet: nn.Module | None = None) -> float:
    """Measured latency (ms) of ``arch``'s real forward through an ``MBV3Supernet`` (default config, or
    the one given), timed like the LUT's entries: the ground truth ``predict`` estimates."""
    from raynas.supernet.mbv3 import MBV3Supernet

    device = resolve_device(device)
    net = (supernet or MBV3Supernet(space)).to(device).eval()
    cfg = space.config
    x = _input((batch_size, cfg.in_channels, cfg.resolution, cfg.resolution), device, False)
    arch = as_arch(arch)
    with _torch_threads(num_threads):
        return time_call(lambda: net(x, arch), device, repeats, warmup)
