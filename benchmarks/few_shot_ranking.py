"""Few-shot ranking at equal compute: one-shot uniform, PA&DA, exhaustive few-shot and GM split on the
ranking testbed (NB201 cells on ``shapes``, ``benchmarks/ranking_testbed.py``'s stored stand-alone table).

Every method spends the same training compute, counted as subnet forward/backward passes (what
``train_epoch`` reports as ``subnet_passes``; GM's gradient-matching batches are counted on top): one
supernet trains ``--budget`` epochs; the exhaustive split trains the root ``--root-epochs`` and each of
its 5 children ``(budget - root) / 5``; the GM split (2 levels, 4 leaves) trains the root ``--gm-root``
epochs, its 2 children ``--gm-mid`` each and the 4 leaves the rest. Split trees run as raynas' few-shot
Tune experiments (``run_split``: every node a Tune trial, 2 at a time), one-shot supernets as Ray tasks.
Each arch is scored (BN recalibrated, val and test) by the supernet — for a tree, by the leaf whose
sub-space holds it — and compared with the mean stand-alone accuracy: Kendall τ and Spearman ρ (the
supernet's val score against stand-alone test accuracy, and val against val), top-5 overlap and the
true (stand-alone test) accuracy of each method's top-1 arch, over ``--seeds`` supernet seeds. A search
result: REA (``--rea`` candidates) through the one-shot and the GM-split supernets of seed 0, the arch
found trained stand-alone (its true accuracy).

Usage::

    .venv/bin/python benchmarks/few_shot_ranking.py            # 4 methods x 3 seeds + REA, ~25 min on 2 cores
    .venv/bin/python benchmarks/few_shot_ranking.py --seeds 1 --budget 7 --root-epochs 2 --gm-root 1 --gm-mid 1 --rea 10
    .venv/bin/python benchmarks/few_shot_ranking.py --write    # + the section of docs/BENCHMARKS.md
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.ranking_testbed import TABLE, noise_ceiling  # noqa: E402

RESULTS = ROOT / "benchmarks" / "data" / "few-shot-ranking.json"
SECTION = "## Few-shot ranking at equal compute (benchmarks/few_shot_ranking.py)"
UNIFORM, PADA, EXHAUSTIVE, GM = "uniform", "pada", "exhaustive", "gm"
METHODS = (UNIFORM, PADA, EXHAUSTIVE, GM)
NB201_OPS, TOP_K = 5, 5
OFFICIAL = "official Few-Shot NAS predictions on NB201/CIFAR-10, all 15,625 archs: one-shot τ 0.485, few-shot 0.551"


def spec_of(table: dict[str, Any], seed: int):
    from raynas.serving.spec import ModelSpec

    return ModelSpec.for_training(train_seed=seed, train_batch_size=table["train"]["batch_size"], space="nb201",
                                  supernet="nb201", supernet_config={**table["supernet_config"], "seed": seed},
                                  dataset="shapes", dataset_config=table["dataset_config"])


def train_of(table: dict[str, Any], seed: int, epochs: int) -> dict[str, Any]:
    return {**table["train"], "epochs": epochs, "seed": seed, "num_threads": 1}


def split_plans(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Each tree's SplitConfig (as a dict) spending ``args.budget`` epochs of compute in all."""
    leaf = (args.budget - args.root_epochs) / NB201_OPS
    gm_leaf = (args.budget - args.gm_root - 2 * args.gm_mid) / 4
    if leaf != int(leaf) or leaf < 1 or gm_leaf != int(gm_leaf) or gm_leaf < 1:
        raise SystemExit(f"--budget {args.budget} does not divide into the trees' epochs (root {args.root_epochs}, "
                         f"gm {args.gm_root}+2x{args.gm_mid})")
    common = {"max_concurrent": 2, "cpus_per_trial": 1, "max_failures": 1}
    return {EXHAUSTIVE: {**common, "method": EXHAUSTIVE, "epochs": args.root_epochs + int(leaf),
                         "split_epochs": [args.root_epochs], "edges": [0]},
            GM: {**common, "method": GM, "epochs": args.gm_root + args.gm_mid + int(gm_leaf),
                 "split_epochs": [args.gm_root, args.gm_root + args.gm_mid], "gm_batches": args.gm_batches}}


# --- training --------------------------------------------------------------------------------------
def one_shot(spec: Any, train: dict, rule: str, archs: list[str]) -> dict[str, Any]:
    """A Ray task: one supernet with ``rule``, scored on ``archs``."""
    from benchmarks.supernet_ranking import train_and_score

    return train_and_score(spec, train, rule, {"num_archs": 1}, archs)


def score_leaf(spec: Any, weights_path: str, archs: list[str]) -> dict[str, list[float]]:
    """A Ray task: ``archs`` scored with one leaf's weights."""
    import torch

    from benchmarks.supernet_ranking import score_weights
    from raynas.supernet.weights import load_npz

    torch.set_num_threads(1)
    return score_weights(spec, load_npz(weights_path), archs)


def split_tree(table: dict[str, Any], seed: int, plan: dict[str, Any], archs: list[str], storage: str) -> dict:
    """Train a split tree (a Tune experiment), score each arch by its leaf; ``passes`` counts every node's
    training passes and GM's gradient batches."""
    import ray

    from raynas.serving.sources import weights_file
    from raynas.space.nb201 import NB201Space
    from raynas.supernet.fewshot import NODE_DIR, SplitConfig, run_split
    from raynas.typed import from_dict

    start, space = time.perf_counter(), NB201Space()
    trial = {"space": "nb201", "supernet": "nb201", "supernet_config": {**table["supernet_config"], "seed": seed},
             "sampling": UNIFORM, "dataset": "shapes", "dataset_config": table["dataset_config"],
             "train": train_of(table, seed, plan["epochs"])}
    config = from_dict(SplitConfig, plan, "plan")
    result = run_split(trial, config, storage, name=f"{plan['method']}-{seed}")
    if result.failed:
        raise RuntimeError(f"split nodes failed: {result.failed}")
    by_leaf: dict[str, list[int]] = {}
    for i, a in enumerate(archs):
        by_leaf.setdefault(result.tree.route(space.from_str(a)), []).append(i)
    task = ray.remote(num_cpus=1, max_retries=0)(score_leaf)
    refs = {leaf: task.remote(spec_of(table, seed), str(weights_file(Path(result.results[leaf][NODE_DIR]))),
                              [archs[i] for i in idx]) for leaf, idx in by_leaf.items()}
    scores = {"val": [0.0] * len(archs), "test": [0.0] * len(archs)}
    for leaf, got in zip(refs, ray.get(list(refs.values()))):
        for split in scores:
            for i, v in zip(by_leaf[leaf], got[split]):
                scores[split][i] = v
    passes = sum(e["subnet_passes"] for curve in result.curves.values() for e in curve)
    gm = sum(len(m["ops"]) for s in result.splits.values() for m in s.get("distances", {}).values())
    leaves = {leaf.id: str(weights_file(Path(result.results[leaf.id][NODE_DIR]))) for leaf in result.tree.leaves()}
    return {**scores, "s": time.perf_counter() - start, "passes": passes + gm * config.gm_batches,
            "leaves": leaves, "record": result.record(config)}


# --- REA through a supernet ------------------------------------------------------------------------
def rea(spec: Any, weights: dict[str, str], route: Any, n: int, seed: int) -> dict[str, Any]:
    """REA (``n`` candidates, population 20, sample 5) whose candidates are scored in-process by the
    supernet holding them (``route(arch) -> key of weights``); returns the best arch by val score."""
    from raynas.serving.scorer import SubnetScorer
    from raynas.serving.spec import EvalData, load_splits
    from raynas.strategies import STRATEGIES, build_strategy
    from raynas.supernet.weights import load_npz
    from raynas.typed import from_dict

    data, space = EvalData.build(spec, load_splits(spec)), spec.build_space()
    scorers = {}
    for key, path in weights.items():
        scorers[key] = SubnetScorer(spec, data, num_threads=2)
        scorers[key].load(load_npz(path))
    config = from_dict(STRATEGIES.get("rea").Config, {"population_size": 20, "sample_size": 5}, "rea")
    strategy = build_strategy("rea", space, config, seed=seed)
    best, start = (None, -1.0), time.perf_counter()
    for i in range(n):
        arch = strategy.suggest(f"t{i}")["arch"]
        score = scorers[route(space.from_str(arch))].score(space.from_str(arch))["valid_acc"]
        strategy.on_trial_complete(f"t{i}", {"valid_acc": score})
        best = max(best, (arch, score), key=lambda b: b[1])
    return {"arch": best[0], "supernet_val": best[1], "search_s": time.perf_counter() - start}


def standalone_test(table: dict[str, Any], arch: str, seeds: int) -> list[float]:
    """The true accuracy of ``arch``: stand-alone trainings with the testbed's settings (Ray tasks)."""
    import ray

    from benchmarks.supernet_ranking import STANDALONE, train_and_score

    task = ray.remote(num_cpus=1, max_retries=0)(train_and_score)
    refs = [task.remote(spec_of(table, s), train_of(table, s, table["train"]["epochs"]), STANDALONE, {}, [arch])
            for s in range(seeds)]
    return [r["test"][0] for r in ray.get(refs)]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    table = json.loads(TABLE.read_text())
    table["dataset_config"] = {**table["dataset_config"], **json.loads(args.dataset_config)}
    archs, plans = table["archs"][:args.archs], split_plans(args)
    from raynas.ray_env import ensure_ray

    ensure_ray(num_cpus=2)  # a private local Ray, its workers' chatty Tune logs off
    start = time.perf_counter()
    task = ray.remote(num_cpus=1, max_retries=0)(one_shot)
    jobs = {(rule, s): task.remote(spec_of(table, s), train_of(table, s, args.budget), rule, archs)
            for s in range(args.seeds) for rule in (UNIFORM, PADA) if rule in args.methods}
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    for (rule, _), got in zip(jobs, ray.get(list(jobs.values()))):
        runs[rule].append(got)
    with tempfile.TemporaryDirectory() as storage:
        for method in [m for m in (EXHAUSTIVE, GM) if m in args.methods]:
            for s in range(args.seeds):
                runs[method].append(split_tree(table, s, plans[method], archs, storage))
                print(f"{method} seed {s}: {runs[method][-1]['s']:.0f} s", file=sys.stderr)
        if args.out:  # the rankings are kept even if the search part fails
            Path(args.out).write_text(json.dumps({"runs": runs}, default=float))
        search = search_result(args, table, runs, storage) if args.rea and GM in args.methods else {}
    wall = time.perf_counter() - start
    ray.shutdown()
    for method in (EXHAUSTIVE, GM):
        for r in runs[method]:
            r.pop("leaves")
    runs = {m: r for m, r in runs.items() if r}
    return {"archs": archs, "budget": args.budget, "plans": plans, "seeds": args.seeds, "runs": runs,
            "search": search, "wall_s": wall}


def search_result(args: argparse.Namespace, table: dict[str, Any], runs: dict, storage: str) -> dict[str, Any]:
    """REA through the seed-0 one-shot (weights retrained here: the ranking task kept only scores) and GM
    trees; each found arch trained stand-alone."""
    import ray

    from raynas.supernet.fewshot import tree_from_record

    out = {}
    one_shot_weights = ray.get(ray.remote(num_cpus=2, max_retries=0)(train_weights).remote(
        spec_of(table, 0), train_of(table, 0, args.budget), storage))
    found = {UNIFORM: rea(spec_of(table, 0), {"all": one_shot_weights}, lambda a: "all", args.rea, 0)}
    gm = runs[GM][0]
    tree = tree_from_record(gm["record"])
    found[GM] = rea(spec_of(table, 0), gm["leaves"], tree.route, args.rea, 0)
    for method, hit in found.items():
        out[method] = {**hit, "true_test": standalone_test(table, hit["arch"], args.true_seeds)}
    return out


def train_weights(spec: Any, train: dict, storage: str) -> str:
    """A Ray task: a uniform one-shot supernet's weights, saved under ``storage``; returns the path."""
    import torch

    from raynas.serving.spec import build_model, load_splits
    from raynas.supernet import build_sampler
    from raynas.supernet.train import TrainConfig, train_supernet
    from raynas.supernet.weights import save_npz, to_numpy
    from raynas.typed import from_dict

    torch.set_num_threads(1)
    space, model = build_model(spec)
    train_supernet(model, build_sampler(UNIFORM, space, {"num_archs": 1}), load_splits(spec),
                   from_dict(TrainConfig, train, "train"), eval_archs={})
    path = Path(storage) / "one-shot.npz"
    save_npz(path, to_numpy(model))
    return str(path)


# --- reporting -------------------------------------------------------------------------------------
def truth(split: str) -> np.ndarray:
    return np.mean(json.loads(TABLE.read_text())["acc"][split], axis=0)


def row(method: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    from scipy.stats import kendalltau, spearmanr

    n = len(runs[0]["val"])
    test, val = truth("test")[:n], truth("val")[:n]
    per = []
    for r in runs:
        pred = np.array(r["val"])
        top = set(np.argsort(-pred)[:TOP_K]) & set(np.argsort(-test)[:TOP_K])
        per.append({"tau": kendalltau(pred, test).statistic, "rho": spearmanr(pred, test).statistic,
                    "tau_val": kendalltau(pred, val).statistic, "top5": len(top) / TOP_K,
                    "top1_true": float(test[int(np.argmax(pred))]), "s": r["s"], "passes": r["passes"]})
    return {"method": method, **{k: [p[k] for p in per] for k in per[0]}}


def ms(values: list[float], digits: int = 2) -> str:
    return f"{np.mean(values):.{digits}f}" + (f" ± {np.std(values):.{digits}f}" if len(values) > 1 else "")


NAMES = {UNIFORM: "one-shot, uniform (SPOS)", PADA: "one-shot, PA&DA", EXHAUSTIVE: "exhaustive few-shot (edge 0, 5 leaves)",
         GM: "GM split (2 levels, 4 leaves)"}


def section(out: dict[str, Any]) -> str:
    stored = json.loads(TABLE.read_text())
    ceiling = noise_ceiling(stored["acc"]["test"])
    rows = [row(m, out["runs"][m]) for m in METHODS if m in out["runs"]]
    best_true = float(truth("test")[:len(out["archs"])].max())
    lines = [SECTION, "",
             f"{datetime.date.today().isoformat()}, {platform.machine()}, {out['wall_s'] / 60:.1f} min wall, 2 CPUs. "
             f"{len(out['archs'])} testbed archs, {out['seeds']} supernet seeds per method (mean ± std), every method "
             f"{out['budget']} epochs of training compute; trees: exhaustive {out['plans'][EXHAUSTIVE]['split_epochs']} of "
             f"{out['plans'][EXHAUSTIVE]['epochs']}, GM {out['plans'][GM]['split_epochs']} of {out['plans'][GM]['epochs']} "
             "epochs per lineage. τ/ρ: the supernet's val score against the mean stand-alone test accuracy.", "",
             "| method | Kendall τ | Spearman ρ | τ (val vs val) | top-5 overlap | true test acc of its top-1 | "
             "supernet val acc | subnet passes | train + score s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {NAMES[r['method']]} | {ms(r['tau'])} | {ms(r['rho'])} | {ms(r['tau_val'])} | {ms(r['top5'])} | "
                     f"{ms(r['top1_true'], 1)} | {acc_range(out['runs'][r['method']])} | {np.mean(r['passes']):,.0f} | "
                     f"{np.mean(r['s']):.0f} |")
    lines += [f"| noise ceiling (one more stand-alone training) | {ceiling:.2f} | | | | | | | |", "",
              f"Best true test accuracy among the {len(out['archs'])} archs: {best_true:.1f}. For scale, the {OFFICIAL}.",
              "", verdict(rows), "", caveats(out, rows)]
    if out.get("search"):
        lines += ["", "Search (seed 0): REA through the supernet, the arch found trained stand-alone "
                  f"({len(next(iter(out['search'].values()))['true_test'])} seeds):", "",
                  "| served by | arch found | supernet val | true test acc |", "|---|---|---|---|"]
        for method, hit in out["search"].items():
            arch = hit["arch"].replace("|", "\\|")  # a bare | ends a Markdown table cell
            lines.append(f"| {NAMES[method]} | `{arch}` | {hit['supernet_val']:.1f} | {ms(hit['true_test'], 1)} |")
    return "\n".join(lines)


def acc_range(runs: list[dict[str, Any]]) -> str:
    """The range of the supernet's val scores over the archs (seed 0): how trained the weights are."""
    return f"{min(runs[0]['val']):.0f}–{max(runs[0]['val']):.0f}"


def caveats(out: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """What limits the comparison, from the figures themselves."""
    scores = [v for runs in out["runs"].values() for r in runs for v in r["val"]]
    test = truth("test")[:len(out["archs"])]
    passes = {r["method"]: np.mean(r["passes"]) for r in rows}
    gm_extra = passes.get(GM, np.nan) / passes.get(UNIFORM, np.nan) - 1
    return (f"At this budget every supernet is far from trained: its val scores span {min(scores):.0f}–{max(scores):.0f} % "
            f"where the stand-alone networks reach {test.min():.0f}–{test.max():.0f} % (their own training: "
            f"{json.loads(TABLE.read_text())['train']['epochs']} epochs of one arch). Splitting leaves each "
            "sub-supernet fewer steps of its own, and at this compute that costs more than the reduced weight "
            "sharing gains; PA&DA's gain most likely comes from spending the steps on the parametrised ops (parameter-free "
            "ops keep only the uniform share), separating the pooling/none-heavy cells from the rest (not isolated here). "
            f"GM's gradient-matching batches are counted: {gm_extra:+.0%} passes over the others. Larger budgets "
            "(where the official results were measured, hundreds of epochs) were not run here: one run of this "
            "benchmark is ~25 min on 2 cores at 15 epochs.")


def verdict(rows: list[dict[str, Any]]) -> str:
    base = next((r for r in rows if r["method"] == UNIFORM), None)
    if base is None:
        return "No uniform one-shot baseline in this run."
    parts = []
    for r in rows:
        if r is base:
            continue
        gain = np.mean(r["tau"]) - np.mean(base["tau"])
        noise = float(np.hypot(np.std(r["tau"]), np.std(base["tau"])))
        word = "gains" if gain > noise else "loses" if gain < -noise else "is level with uniform (within seed spread)"
        parts.append(f"{NAMES[r['method']]} {word}: Δτ {gain:+.2f} (seed spread {noise:.2f})")
    return "Against uniform one-shot at the same compute: " + "; ".join(parts) + "."


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--archs", type=int, default=30, help="the first N archs of the testbed table")
    p.add_argument("--methods", type=lambda v: v.split(","), default=list(METHODS), help="comma-separated subset")
    p.add_argument("--dataset-config", default="{}", help="JSON overriding the testbed's shapes config (smoke runs)")
    p.add_argument("--budget", type=int, default=15, help="epochs of training compute per method")
    p.add_argument("--root-epochs", type=int, default=5, help="exhaustive: the root's epochs before the split")
    p.add_argument("--gm-root", type=int, default=3)
    p.add_argument("--gm-mid", type=int, default=2)
    p.add_argument("--gm-batches", type=int, default=4)
    p.add_argument("--rea", type=int, default=60, help="REA candidates of the search result (0: skip it)")
    p.add_argument("--true-seeds", type=int, default=2, help="stand-alone trainings of each arch found")
    p.add_argument("--write", action="store_true")
    p.add_argument("--out", default=str(RESULTS), help=f"save the raw results as JSON here ({RESULTS.name})")
    p.add_argument("--from-json", action="store_true", help="only re-render the section from --out")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.docs import publish

    args = parse_args(argv)
    if args.from_json:
        publish(SECTION, section(json.loads(Path(args.out).read_text())), args.write)
        return 0
    out = run(args)
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    publish(SECTION, section(out), args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
