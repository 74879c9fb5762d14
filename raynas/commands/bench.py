"""``raynas bench latency``: build an op-wise latency lookup table (LUT) for the mbv3 space on this machine.

The space is the default ``mbv3`` config, the one given by ``--space-config`` (inline JSON or a JSON
file) or a recipe's ``space`` section (``--recipe``). The LUT goes to ``--out`` (default
``.raynas/latency/mbv3-<device>.json``); point a recipe's ``evaluator.lut_path`` (with
``evaluator.latency_device``) at it to get ``latency_ms`` from the ``cost`` evaluator.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from raynas.commands.registry import command
from raynas.errors import RaynasError, RecipeError

LATENCY = "latency"
LUT_DIR = Path(".raynas") / "latency"
SPACE_CONFIG_FLAG = "--space-config"


def _latency_args(p: argparse.ArgumentParser) -> None:
    from raynas.devices import DEVICES
    from raynas.evaluators.latency_lut import DEFAULT_REPEATS

    source = p.add_mutually_exclusive_group()
    source.add_argument(SPACE_CONFIG_FLAG, metavar="JSON",
                        help="mbv3 space config as inline JSON or a JSON file (default: the default config)")
    source.add_argument("--recipe", help="take the space config from this recipe's `space` section")
    p.add_argument("--device", choices=DEVICES, default=DEVICES[0], help="where to time (auto: CUDA if available)")
    p.add_argument("--batch-size", type=int, default=1, help="images per forward pass (default 1)")
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help="timed calls per op (median kept)")
    p.add_argument("--threads", type=int, default=1, help="torch threads while timing (default 1)")
    p.add_argument("--out", help="LUT file to write (default: .raynas/latency/mbv3-<device>.json)")


def _args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="bench", required=True)
    _latency_args(sub.add_parser(LATENCY, help="build a latency lookup table for the mbv3 space",
                                 description="time every op of the mbv3 space and write a latency LUT"))


def space_from_args(args: argparse.Namespace):
    """The ``MBV3Space`` that ``--space-config``/``--recipe`` describe (``RecipeError`` naming the field)."""
    from raynas.space.mbv3 import MBV3Space
    from raynas.typed import from_dict

    if args.recipe:
        from raynas.recipes import load_recipe

        spec = load_recipe(args.recipe).space
        if spec.name != "mbv3":
            raise RecipeError("space.name", f"latency LUTs are built for the mbv3 space, not {spec.name!r}")
        return spec.impl(spec.config)
    if args.space_config is None:
        return MBV3Space()
    text = args.space_config
    if Path(text).is_file():
        text = Path(text).read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise RaynasError(f"{SPACE_CONFIG_FLAG}: not valid JSON ({err})") from None
    return MBV3Space(from_dict(MBV3Space.Config, data, "space_config"))


@command("bench", "measure this machine (bench latency: build a latency LUT for the mbv3 space)", _args)
def cmd_bench(args: argparse.Namespace) -> int:
    from raynas.devices import resolve_device
    from raynas.evaluators.latency_lut import LatencyLUT

    space = space_from_args(args)
    try:
        device = resolve_device(args.device)
        start = time.perf_counter()
        lut = LatencyLUT.build(space, device, batch_size=args.batch_size, repeats=args.repeats,
                               num_threads=args.threads)
    except ValueError as err:
        raise RaynasError(str(err)) from None
    seconds = time.perf_counter() - start
    out = lut.save(args.out or LUT_DIR / f"mbv3-{device}.json").resolve()
    print(out)
    print(f"{len(lut.entries)} entries on {device} ({lut.meta['device_name']}), batch {args.batch_size}, "
          f"{args.threads} thread(s), built in {seconds:.1f} s")
    for name, arch in (("largest", space.largest()), ("smallest", space.smallest())):
        print(f"predicted latency of the {name} subnet: {lut.predict(space, arch):.3f} ms")
    return 0
