"""Supernet ranking quality: does a weight-sharing supernet rank subnets like stand-alone training does?

``--archs`` subnets (default 20) are picked spread over the mbv3 space: a seeded pool of uniform samples
(distinct functions) is sorted by FLOPs and the subnets at evenly spaced ranks are taken, so small,
medium and large subnets are all represented. Then, with one ``TrainConfig`` (the *same schedule* for
everything: epochs, batch size, learning rate, seed):

* **stand-alone**: every subnet is trained alone, from the supernet's initialisation restricted to it
  (``train_supernet`` with a rule that always returns that subnet), ``--standalone-seeds`` times (the
  seed changes the data order); the ground truth is the mean over seeds;
* **supernets**: one supernet per sampling rule (``uniform``: one uniform subnet per step, SPOS;
  ``sandwich``: largest + smallest + 2 uniform per step, the largest distilling into the others —
  BigNAS' in-place KD), trained with ``train_supernet``;
* **PBT** (``pbt``): Tune's ``PopulationBasedTraining`` of ``--pbt-population`` sandwich supernets, each on
  the same schedule, lr / kd_alpha / num_random explored (``raynas.supernet.pbt.run_pbt``, what
  an evaluator with ``pbt:`` runs); the best member ranks the subnets. Its non-PBT baseline at equal
  compute (``sandwich-equal``) is one sandwich supernet trained for as many subnet forward/backward
  passes as all PBT members together (a longer schedule);
* every subnet is scored on the val split after BN recalibration (``SubnetScorer``: exactly what the
  ``SupernetServer`` replicas run), and the test split is reported too.
Kendall's τ and Spearman's ρ between each supernet's accuracies and the stand-alone ones measure the
ranking; τ of one stand-alone seed against the mean of the others is the noise ceiling. The default
skeleton is narrow (``NARROW``): in the default mbv3 space every subnet reaches 97-98 % on digits, and
ranking differences of a few images is ranking noise.
Trainings run as Ray tasks (one CPU, one torch thread each), in parallel.

Usage::

    .venv/bin/python benchmarks/supernet_ranking.py                  # defaults below, ~13 min on 2 cores
    .venv/bin/python benchmarks/supernet_ranking.py --archs 8 --epochs 2 --standalone-seeds 2   # quick check
    .venv/bin/python benchmarks/supernet_ranking.py --write          # section into docs/BENCHMARKS.md
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

SECTION = "## Supernet ranking (benchmarks/supernet_ranking.py)"
GOAL_TAU = 0.5
RULES = {"uniform": {"num_archs": 1}, "sandwich": {"num_random": 2, "inplace_distill": True}}
PBT, EQUAL = "pbt", "sandwich-equal"  # PBT of sandwich supernets; one sandwich supernet given PBT's compute
EXTRA_RULES = (PBT, EQUAL)
STANDALONE = "standalone"
POOL_SIZE = 2000
# On digits every subnet of the default space reaches 97-98 % (differences of a few images, below seed
# noise), so the default here is a narrow skeleton whose small subnets really are weaker.
NARROW = {"stage_widths": [2, 4, 8], "stage_strides": [1, 2, 2], "depths": [1, 2, 3], "kernel_sizes": [3, 5],
          "expand_ratios": [1, 2, 4], "stem_width": 4, "head_width": 16}
DIGITS_SPLIT = {"val_fraction": 0.3}  # 539 val images: accuracy steps of 0.19 points


# --- work (Ray tasks) ------------------------------------------------------------------------------
def fixed_rule(space: Any, arch: Any):
    """A sampling rule that trains only ``arch`` (stand-alone training through ``train_supernet``)."""
    from raynas.supernet.sampling import SamplingRule, Step

    class FixedArch(SamplingRule):
        def _next_step(self) -> Step:
            return Step((arch,))

    return FixedArch(space)


def score_weights(spec: Any, weights: dict, archs: list[str]) -> dict[str, list[float]]:
    """Val and test accuracy of ``archs`` under ``weights`` (numpy), each after BN recalibration, exactly
    as a ``SupernetServer`` replica scores them: ``{"val": [...], "test": [...]}``."""
    from raynas.serving.scorer import SubnetScorer
    from raynas.serving.spec import EvalData, load_splits

    space = spec.build_space()
    scorer = SubnetScorer(spec, EvalData.build(spec, load_splits(spec)), num_threads=1)
    scorer.load(weights)
    scores = [scorer.score(space.from_str(a)) for a in archs]
    return {"val": [s["valid_acc"] for s in scores], "test": [s["test_acc"] for s in scores]}


def train_and_score(spec: Any, train: dict, rule: str, rule_config: dict, archs: list[str]) -> dict[str, Any]:
    """Train one network (a supernet with ``rule``, or one stand-alone subnet when ``rule`` is
    ``standalone`` and ``archs`` has one arch), then score ``archs``:
    ``{"val": [...], "test": [...], "s": seconds, "passes": subnet forward/backward passes}``."""
    import torch

    from raynas.serving.spec import build_model, load_splits
    from raynas.supernet import build_sampler
    from raynas.supernet.train import TrainConfig, train_supernet
    from raynas.supernet.weights import to_numpy
    from raynas.typed import from_dict

    torch.set_num_threads(1)
    start = time.perf_counter()
    space, model = build_model(spec)
    parsed = [space.from_str(a) for a in archs]
    sampler = fixed_rule(space, parsed[0]) if rule == STANDALONE else build_sampler(rule, space, rule_config)
    history = train_supernet(model, sampler, load_splits(spec), from_dict(TrainConfig, train, "train"), eval_archs={})
    return {**score_weights(spec, to_numpy(model), archs), "s": time.perf_counter() - start,
            "passes": sum(h["subnet_passes"] for h in history)}


def pbt_and_score(spec: Any, spec_fields: dict, train: dict, args: argparse.Namespace, archs: list[str],
                  storage: str) -> dict[str, Any]:
    """Tune PBT of ``args.pbt_population`` sandwich supernets, each on the common schedule (``train``),
    lr / kd_alpha / num_random explored; the best member (by PBT's objective, the mean val accuracy of its
    reference subnets) scores ``archs``. ``passes`` counts every member's compute, exploited or not."""
    from raynas.evaluators.supernet import PBT_EVAL_ARCHS
    from raynas.supernet.pbt import PBTConfig, run_pbt

    start = time.perf_counter()
    trial = {"space": spec.space, "supernet": spec.supernet, "sampling": "sandwich",
             "sampling_config": dict(RULES["sandwich"]), "train": train, "eval_random_archs": PBT_EVAL_ARCHS,
             **spec_fields}
    result = run_pbt(trial, PBTConfig(population=args.pbt_population, perturbation_interval=args.pbt_interval,
                                      seed=args.seed), storage, name="ranking-pbt")
    rows = [r for member in result.histories for r in member]
    return {**score_weights(spec, result.best_weights, archs), "s": time.perf_counter() - start,
            "passes": sum(r["subnet_passes"] for r in rows), "exploits": result.num_exploits,
            "best_config": {"lr": result.best_config["train"]["lr"],
                            "kd_alpha": result.best_config["train"]["kd_alpha"],
                            "num_random": result.best_config["sampling_config"]["num_random"]}}


# --- the experiment --------------------------------------------------------------------------------
def spread_archs(space: Any, n: int, seed: int) -> list[Any]:
    """``n`` subnets with distinct functions at evenly spaced FLOPs ranks of a seeded uniform pool."""
    rng = np.random.default_rng(seed)
    pool: dict[str, Any] = {}
    while len(pool) < POOL_SIZE:
        arch = space.sample(rng)
        pool.setdefault(space.canonical(arch), arch)
    ranked = sorted(pool.values(), key=space.flops)
    picks = np.linspace(0, len(ranked) - 1, n).round().astype(int)
    return [ranked[i] for i in picks]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """PBT first (it needs every CPU, in the driver), then all other trainings as parallel Ray tasks."""
    import tempfile

    import ray

    from raynas.serving.spec import ModelSpec

    train = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
             "num_threads": 1}
    spec_fields = {"space_config": json.loads(args.space_config), "dataset_config": json.loads(args.dataset_config)}
    spec = ModelSpec.for_training(train_seed=args.seed, train_batch_size=args.batch_size, **spec_fields)
    space = spec.build_space()
    archs = [space.to_str(a) for a in spread_archs(space, args.archs, args.seed)]
    ray.init(address="local", num_cpus=args.workers, include_dashboard=False, logging_level="WARNING")
    start = time.perf_counter()
    seeds = [args.seed + i for i in range(args.supernet_seeds)]
    trains = {seed: {**train, "seed": seed} for seed in seeds}
    pbt: dict[int, Any] = {}
    if PBT in args.rules or EQUAL in args.rules:
        for seed in seeds:
            with tempfile.TemporaryDirectory() as storage:
                pbt[seed] = pbt_and_score(spec, spec_fields, trains[seed], args, archs, storage)
    task = ray.remote(num_cpus=1, max_retries=0)(train_and_score)
    jobs: dict[Any, Any] = {}
    for seed in seeds:
        jobs.update({(rule, seed): task.remote(spec, trains[seed], rule, RULES[rule], archs)
                     for rule in args.rules if rule in RULES})
        if EQUAL in args.rules:
            longer = {**trains[seed], "epochs": equal_epochs(pbt[seed]["passes"], spec, train)}
            jobs[(EQUAL, seed)] = task.remote(spec, longer, "sandwich", RULES["sandwich"], archs)
    for seed in range(args.standalone_seeds):
        seeded = {**train, "seed": args.seed + seed}
        jobs.update({(STANDALONE, seed, a): task.remote(spec, seeded, STANDALONE, {}, [a]) for a in archs})
    done = dict(zip(jobs, ray.get(list(jobs.values()))))
    wall = time.perf_counter() - start
    ray.shutdown()
    supernets = {rule: [pbt[seed] if rule == PBT else done.pop((rule, seed)) for seed in seeds] for rule in args.rules}
    return {"archs": archs, "flops": [space.flops(space.from_str(a)) for a in archs], "train": train,
            "spec": spec_fields, "wall_s": wall, "results": done, "supernets": supernets, "space": space}


def equal_epochs(passes: int, spec: Any, train: dict) -> int:
    """Epochs of one sandwich supernet (``RULES["sandwich"]``: largest + smallest + num_random subnets per
    step) that spend ``passes`` subnet forward/backward passes, rounded to the nearest epoch."""
    from raynas.serving.spec import load_splits

    steps = len(load_splits(spec).train) // train["batch_size"]
    per_epoch = steps * (2 + RULES["sandwich"]["num_random"])
    return max(1, round(passes / per_epoch))


def seeds_of(out: dict[str, Any]) -> list[int]:
    return sorted({k[1] for k in out["results"] if isinstance(k, tuple)})


def standalone(out: dict[str, Any], split: str, seeds: list[int] | None = None) -> np.ndarray:
    """Stand-alone accuracy per subnet: the mean over ``seeds`` (default: all)."""
    chosen = seeds_of(out) if seeds is None else seeds
    table = [[out["results"][(STANDALONE, s, a)][split][0] for a in out["archs"]] for s in chosen]
    return np.mean(table, axis=0)


def correlations(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    from scipy.stats import kendalltau, spearmanr

    return float(kendalltau(a, b).statistic), float(spearmanr(a, b).statistic)


# --- reporting -------------------------------------------------------------------------------------
def rows(out: dict[str, Any], rules: list[str]) -> list[dict[str, Any]]:
    """One row per supernet rule: τ and ρ against stand-alone accuracy, on val and test, one value per
    supernet seed (``tau_val`` etc. are lists)."""
    table = []
    for rule in rules:
        runs = out["supernets"][rule]
        row: dict[str, Any] = {"rule": rule, "train_s": float(np.mean([r["s"] for r in runs])),
                               "passes": float(np.mean([r["passes"] for r in runs]))}
        for split in ("val", "test"):
            pairs = [correlations(np.array(r[split]), standalone(out, split)) for r in runs]
            row[f"tau_{split}"], row[f"rho_{split}"] = [p[0] for p in pairs], [p[1] for p in pairs]
        row["acc_range"] = (min(min(r["val"]) for r in runs), max(max(r["val"]) for r in runs))
        table.append(row)
    return table


def ms(values: list[float]) -> str:
    """``mean ± std`` over supernet seeds (just the value for one seed)."""
    return f"{np.mean(values):.2f}" + (f" ± {np.std(values):.2f}" if len(values) > 1 else "")


def ceiling(out: dict[str, Any]) -> dict[str, float] | None:
    """How well one stand-alone training ranks the others: τ between seed i and the mean of the other
    seeds, averaged over i, per split (None with a single seed). A supernet near it is as good a
    ranker as one more real training."""
    seeds = seeds_of(out)
    if len(seeds) < 2:
        return None
    return {split: float(np.mean([correlations(standalone(out, split, [s]),
                                               standalone(out, split, [o for o in seeds if o != s]))[0]
                                  for s in seeds])) for split in ("val", "test")}


def section(out: dict[str, Any], args: argparse.Namespace) -> str:
    table = rows(out, args.rules)
    sa_val, sa_test = standalone(out, "val"), standalone(out, "test")
    sa_s = [v["s"] for k, v in out["results"].items() if isinstance(k, tuple)]
    lines = [SECTION, "",
             f"Command: `python benchmarks/supernet_ranking.py {' '.join(sys.argv[1:])}` — "
             f"{datetime.date.today()}, {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs "
             f"(shared with other work), {args.workers} Ray workers, {out['wall_s']:.0f} s wall.", "",
             f"Settings: space `mbv3` `{json.dumps(out['spec']['space_config'])}` on digits "
             f"`{json.dumps(out['spec']['dataset_config'])}`; "
             f"{len(out['archs'])} subnets spread over FLOPs ({min(out['flops']):,}–{max(out['flops']):,} MACs); "
             f"same schedule for all: {out['train']['epochs']} epochs, batch {out['train']['batch_size']}, "
             f"SGD lr {out['train']['lr']} cosine; every supernet is trained with {args.supernet_seeds} seed(s) "
             f"(τ, ρ: mean ± std over them); stand-alone accuracy = mean of "
             f"{args.standalone_seeds} seed(s); accuracies after BN recalibration on 8 training batches. Rules: "
             f"`uniform` = one uniform subnet per step (SPOS); `sandwich` = largest + smallest + 2 uniform per "
             f"step, the largest distilling into the others (BigNAS in-place KD).", "",
             "| supernet rule | Kendall τ (val) | Spearman ρ (val) | Kendall τ (test) | Spearman ρ (test) "
             "| supernet val acc range | subnet passes (compute) | training (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in table:
        lines.append(f"| {r['rule']} | **{ms(r['tau_val'])}** | {ms(r['rho_val'])} | {ms(r['tau_test'])} | "
                     f"{ms(r['rho_test'])} | {r['acc_range'][0]:.1f}–{r['acc_range'][1]:.1f} | {r['passes']:,.0f} | "
                     f"{r['train_s']:.0f} |")
    ceil = ceiling(out)
    lines += ["", f"Stand-alone val accuracy: {sa_val.min():.1f}–{sa_val.max():.1f} (test {sa_test.min():.1f}–"
              f"{sa_test.max():.1f}); one stand-alone training takes {np.median(sa_s):.0f} s (median)."
              + (f" **Noise ceiling** — τ of one stand-alone training against the mean of the other "
                 f"{len(seeds_of(out)) - 1} (averaged over which one): {ceil['val']:.2f} (val), "
                 f"{ceil['test']:.2f} (test)."
                 if ceil else "")]
    best = max(table, key=lambda r: np.mean(r["tau_val"]))
    best_tau = float(np.mean(best["tau_val"]))
    verdict = "meets" if best_tau >= GOAL_TAU else "does **not** meet"
    close = best_tau >= ceil["val"] - 0.1 if ceil else False
    versus = (f" For scale, one more stand-alone training ranks them with τ = {ceil['val']:.2f}: the supernet "
              f"ranks {'about as well as' if close else 'worse than'} a real training, and neither ranks well, "
              f"because on digits these subnets differ by little more than seed noise." if ceil else "")
    lines += pbt_lines(out, table, args)
    lines += ["", f"**Result.** The best rule, `{best['rule']}`, reaches τ = {best_tau:.2f} on the val "
              f"split and {verdict} the aim τ ≥ {GOAL_TAU}.{versus}", "", NOTES]
    return "\n".join(lines) + "\n"


def pbt_lines(out: dict[str, Any], table: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    """What the PBT rows mean, and PBT's τ against the non-PBT baseline at equal compute, seed by seed."""
    if PBT not in out["supernets"]:
        return []
    pbt, by = out["supernets"][PBT], {r["rule"]: r for r in table}
    finals = "; ".join(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in r["best_config"].items()})
                       for r in pbt)
    lines = ["", f"`{PBT}` = Tune's PopulationBasedTraining of {args.pbt_population} `sandwich` supernets, each on "
             f"the schedule above, exploit/explore every {args.pbt_interval} epochs (lr log-uniform 0.01–0.3, "
             f"kd_alpha, num_random; {', '.join(str(r['exploits']) for r in pbt)} exploits per seed); the best member "
             f"by PBT's objective (mean val accuracy of largest, smallest and 2 random subnets) ranks the subnets. "
             f"Final hyperparameters of the best member per seed: {finals}. Its compute counts every member."]
    if EQUAL in by:
        equal = out["supernets"][EQUAL]
        ratio = np.mean([e["passes"] / p["passes"] for e, p in zip(equal, pbt)])
        lines.append(f"`{EQUAL}` = one `sandwich` supernet (no PBT) trained for the same compute (subnet "
                     f"forward/backward passes, {ratio:.2f}× PBT's on average), i.e. a longer cosine schedule.")
        def per_seed(split):
            return ", ".join(f"{p:+.2f}" for p in np.subtract(by[PBT][f"tau_{split}"],
                                                                                    by[EQUAL][f"tau_{split}"]))
        lines += ["", f"**PBT vs the non-PBT baseline at equal compute** — Kendall τ (val) {ms(by[PBT]['tau_val'])} "
                  f"vs {ms(by[EQUAL]['tau_val'])} (per seed, PBT minus baseline: {per_seed('val')}); test "
                  f"{ms(by[PBT]['tau_test'])} vs {ms(by[EQUAL]['tau_test'])} ({per_seed('test')}). "
                  f"{pbt_verdict(by)} PBT's wall time: {by[PBT]['train_s']:.0f} s vs {by[EQUAL]['train_s']:.0f} s "
                  f"for the same compute (a Tune trial restart at every perturbation, a checkpoint and the "
                  f"reference subnets' evaluation every epoch)."]
    return lines


def pbt_verdict(by: dict[str, dict[str, Any]]) -> str:
    """One sentence: does PBT rank better or worse than its equal-compute baseline on every seed?"""
    gaps = {split: np.subtract(by[PBT][f"tau_{split}"], by[EQUAL][f"tau_{split}"]) for split in ("val", "test")}
    mixed = [split for split, g in gaps.items() if g.min() < 0 < g.max()]
    if mixed:
        return (f"No consistent difference: the per-seed differences change sign on the {' and '.join(mixed)} "
                f"split{'s' if len(mixed) > 1 else ''}.")
    better = np.mean(np.concatenate(list(gaps.values()))) > 0
    return f"PBT ranks {'better' if better else 'worse'} than the baseline on every seed and both splits."


NOTES = """\
Why this skeleton. In the default mbv3 space every subnet reaches 97-98 % on digits after 10 epochs,
i.e. subnets differ by a few of the 270 val images; a run there (`--space-config '{}' --epochs 10
--standalone-seeds 1 --archs 20`, 11 min) gave τ = 0.13 (uniform) and -0.07 (sandwich). The narrow
skeleton (widths 2/4/8) spreads stand-alone accuracy over several points; with 10 epochs instead of 20
(20 subnets, 3 seeds) supernet accuracies were far lower (uniform 31-39 %, sandwich 52-67 %) and
τ = 0.08 / 0.13. Training is deterministic (seeded data order and init, one thread), so a rerun
gives the same τ.
"""


def per_arch(out: dict[str, Any], rules: list[str]) -> str:
    """Val accuracy per subnet: stand-alone (mean) and each supernet (first seed)."""
    head = f"{'MACs':>9}  {'alone':>6}  " + "  ".join(f"{r:>8}" for r in rules) + "  arch"
    lines = [head]
    order = np.argsort(out["flops"])
    sa = standalone(out, "val")
    for i in order:
        accs = "  ".join(f"{out['supernets'][r][0]['val'][i]:8.1f}" for r in rules)
        lines.append(f"{out['flops'][i]:>9,}  {sa[i]:6.1f}  {accs}  {out['archs'][i]}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", type=int, default=30, help="subnets to rank (30)")
    p.add_argument("--epochs", type=int, default=20, help="epochs of every training (20)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--standalone-seeds", type=int, default=5, help="stand-alone trainings per subnet (5)")
    p.add_argument("--rules", default=",".join([*RULES, *EXTRA_RULES]),
                   help=f"supernets to rank: sampling rules {', '.join(RULES)}; '{PBT}' (PBT of sandwich supernets); "
                   f"'{EQUAL}' (one sandwich supernet with PBT's compute). Default: all")
    p.add_argument("--supernet-seeds", type=int, default=3, help="trainings (seeds) of every supernet (3)")
    p.add_argument("--pbt-population", type=int, default=4, help="PBT members (4)")
    p.add_argument("--pbt-interval", type=int, default=2, help="PBT perturbation interval in epochs (2)")
    p.add_argument("--space-config", default=json.dumps(NARROW), help="MBV3Space.Config as JSON ('{}': the "
                   "default space; default: a narrow space whose subnets differ in capacity on digits)")
    p.add_argument("--dataset-config", default=json.dumps(DIGITS_SPLIT), help="digits Config as JSON")
    p.add_argument("--workers", type=int, default=2, help="parallel trainings (Ray CPUs), 2")
    p.add_argument("--write", action="store_true", help=f"write the section '{SECTION[3:]}' of docs/BENCHMARKS.md")
    args = p.parse_args(argv)
    args.rules = [r for r in args.rules.split(",") if r]
    unknown = set(args.rules) - {*RULES, *EXTRA_RULES}
    if unknown:
        p.error(f"unknown rules {sorted(unknown)}; known: {', '.join([*RULES, *EXTRA_RULES])}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = run(args)
    print(per_arch(out, args.rules))
    text = section(out, args)
    from benchmarks.docs import publish

    print()
    publish(SECTION, text, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
