"""The ranking testbed's ground truth: stand-alone accuracies of NB201-cell subnets on ``shapes``.

A supernet ranks subnets well only if the ranking it is compared with means something. This script
trains ``--archs`` NB201-cell subnets (a seeded uniform sample of distinct functions whose cell output
is connected to its input: a disconnected cell is a constant network, at chance) stand-alone, each
``--seeds`` times (the seed changes the initialisation and the data order), on the procedural
``shapes`` dataset (``raynas.data.shapes``), with one ``TrainConfig`` for all — through the same
``train_supernet`` and BN-recalibrated scoring as ``benchmarks/supernet_ranking.py``. It writes the
table (archs, settings, per-seed val/test accuracy, seconds) to ``benchmarks/data/`` so that ranking
benchmarks compare against it without retraining, and reports the **noise ceiling**: Kendall τ of one
seed's accuracies against the mean of the other seeds', averaged over which seed — how well one more
real training would rank the subnets. Trainings run as Ray tasks (one CPU, one torch thread each).

Usage::

    .venv/bin/python benchmarks/ranking_testbed.py              # 30 archs x 3 seeds, ~10 min on 2 cores
    .venv/bin/python benchmarks/ranking_testbed.py --archs 6 --seeds 2 --epochs 1   # quick check
    .venv/bin/python benchmarks/ranking_testbed.py --write      # table + section of docs/BENCHMARKS.md
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

SECTION = "## Ranking testbed: NB201 cells on shapes (benchmarks/ranking_testbed.py)"
TABLE = ROOT / "benchmarks" / "data" / "shapes-nb201-standalone.json"
GOAL_CEILING, GOAL_ARCHS = 0.8, 30
SUPERNET = {"cells_per_stage": 1, "in_channels": 1, "num_classes": 10}


def testbed_archs(n: int, seed: int) -> list[str]:
    """``n`` NB201 archs with distinct, connected cell functions, drawn uniformly with ``seed``."""
    from raynas.space.nb201 import ZERO_TERM, NB201Space, functional_form

    space, rng, picked = NB201Space(), np.random.default_rng(seed), {}
    while len(picked) < n:
        arch = space.sample(rng)
        if functional_form(arch) != ZERO_TERM:
            picked.setdefault(space.canonical(arch), space.to_str(arch))
    return list(picked.values())


def spec_for(args: argparse.Namespace, seed: int):
    from raynas.serving.spec import ModelSpec

    return ModelSpec.for_training(train_seed=seed, train_batch_size=args.batch_size, space="nb201",
                                  supernet="nb201", supernet_config={**SUPERNET, "channels": args.channels,
                                                                     "reduction": args.reduction, "seed": seed},
                                  dataset="shapes", dataset_config=json.loads(args.dataset_config))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    from benchmarks.supernet_ranking import STANDALONE, train_and_score

    archs = testbed_archs(args.archs, args.arch_seed)
    train = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "weight_decay": 5e-4,
             "num_threads": 1}
    ray.init(address="local", num_cpus=args.workers, include_dashboard=False, logging_level="WARNING")
    task = ray.remote(num_cpus=1, max_retries=0)(train_and_score)
    start = time.perf_counter()
    jobs = {(s, a): task.remote(spec_for(args, s), {**train, "seed": s}, STANDALONE, {}, [a])
            for s in range(args.seeds) for a in archs}
    done = dict(zip(jobs, ray.get(list(jobs.values()))))
    wall = time.perf_counter() - start
    ray.shutdown()
    acc = {split: [[done[(s, a)][split][0] for a in archs] for s in range(args.seeds)] for split in ("val", "test")}
    return {"dataset": "shapes", "dataset_config": json.loads(args.dataset_config), "space": "nb201",
            "supernet": "nb201", "supernet_config": {**SUPERNET, "channels": args.channels, "reduction": args.reduction},
            "train": train,
            "arch_seed": args.arch_seed,
            "archs": archs, "seeds": list(range(args.seeds)), "acc": acc,
            "seconds": [[done[(s, a)]["s"] for a in archs] for s in range(args.seeds)],
            "passes": [[done[(s, a)]["passes"] for a in archs] for s in range(args.seeds)], "wall_s": wall}


def noise_ceiling(acc: list[list[float]]) -> float:
    """Kendall τ of each seed's accuracies against the mean of the other seeds', averaged over seeds."""
    from scipy.stats import kendalltau

    table = np.array(acc)
    return float(np.mean([kendalltau(table[s], np.delete(table, s, 0).mean(0)).statistic
                          for s in range(len(table))]))


def section(out: dict[str, Any]) -> str:
    val, test = np.array(out["acc"]["val"]), np.array(out["acc"]["test"])
    ceil_val, ceil_test = noise_ceiling(val), noise_ceiling(test)
    seed_sd = float(val.std(axis=0, ddof=1).mean())
    cfg = {**{"train_size": 8000, "val_size": 5000, "test_size": 20000, "noise": 0.2, "salt": 0.0, "clutter": 3},
           **out["dataset_config"]}
    met = min(ceil_val, ceil_test) >= GOAL_CEILING and len(out["archs"]) >= GOAL_ARCHS
    verdict = "meets" if met else "does **not** meet"
    t = out["train"]
    return "\n".join([
        SECTION, "",
        f"{datetime.date.today().isoformat()}, {platform.machine()}, {out['wall_s'] / 60:.1f} min wall "
        f"({len(out['archs'])} archs x {len(out['seeds'])} seeds, 2 trainings at a time). Table: "
        f"`{TABLE.relative_to(ROOT)}`.", "",
        f"`shapes` ({cfg['train_size']:,} train / {cfg['val_size']:,} val / {cfg['test_size']:,} test images, "
        f"noise {cfg['noise']}, salt {cfg['salt']}, clutter {cfg['clutter']}); NB201 cells, "
        f"{out['supernet_config']['channels']} channels, {out['supernet_config']['cells_per_stage']} cell per stage; {t['epochs']} epochs, batch {t['batch_size']}, lr {t['lr']} "
        f"(cosine), weight decay {t['weight_decay']}; archs: a seeded uniform sample of distinct connected cell "
        "functions.", "",
        "| | val | test |", "|---|---|---|",
        f"| stand-alone accuracy, range over archs | {val.mean(0).min():.1f}–{val.mean(0).max():.1f} | "
        f"{test.mean(0).min():.1f}–{test.mean(0).max():.1f} |",
        f"| mean seed-to-seed std of one arch | {seed_sd:.2f} | {float(test.std(axis=0, ddof=1).mean()):.2f} |",
        f"| **noise ceiling** (Kendall τ, one seed vs the mean of the others) | **{ceil_val:.2f}** | "
        f"**{ceil_test:.2f}** |", "",
        f"The testbed {verdict} the aim (ceiling ≥ {GOAL_CEILING} on ≥ {GOAL_ARCHS} archs). {crowd(test)} "
        "For comparison, digits with the narrow mbv3 skeleton has a ceiling of 0.55 (val) / 0.42 (test): there, "
        f"subnets differ by little more than seed noise. One stand-alone training takes "
        f"{np.median(out['seconds']):.0f} s (median).",
    ])


def crowd(acc: np.ndarray, within: float = 3.0) -> str:
    """How many archs crowd near the best (what limits the ceiling when seeds reorder them)."""
    mean, sd = acc.mean(0), float(acc.std(axis=0, ddof=1).mean())
    near = int((mean >= mean.max() - within).sum())
    return (f"On test, {near} of the {acc.shape[1]} archs lie within {within:g} points of the best "
            f"({mean.max() - within:.1f}–{mean.max():.1f}), where a seed moves an arch by {sd:.2f} on average.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", type=int, default=30)
    p.add_argument("--seeds", type=int, default=3, help="stand-alone trainings per arch (3)")
    p.add_argument("--arch-seed", type=int, default=0, help="seed of the arch sample")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--channels", type=int, default=8, help="NB201 network width (first stage)")
    p.add_argument("--reduction", default="pool", choices=("pool", "resnet"),
                   help="NB201 skeleton's reduction blocks: pool (lean: the cells carry the capacity) or resnet")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--dataset-config", default="{}", help="JSON: shapes' Config (sizes, noise, salt)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--write", action="store_true", help=f"write {TABLE.name} and the section")
    p.add_argument("--from-table", action="store_true", help=f"only re-render the section from {TABLE.name}")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.docs import publish

    args = parse_args(argv)
    if args.from_table:  # re-render the section from the stored table, without training
        publish(SECTION, section(json.loads(TABLE.read_text())), args.write)
        return 0
    out = run(args)
    if args.write:
        TABLE.parent.mkdir(parents=True, exist_ok=True)
        TABLE.write_text(json.dumps(out, indent=1) + "\n")
    publish(SECTION, section(out), args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
