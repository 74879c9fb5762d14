"""Driver throughput as workers are added, on a local two-node Ray cluster.

``ray.cluster_utils.Cluster`` starts a head and one worker node on this machine, each with half of
``--cpus`` logical CPUs (default 16 in all: workers only sleep, so 2 real cores suffice). Each row runs
``build_search(recipe).run()`` with the ``tune`` backend, ``backend.workers = W`` (1, 2, 4, 8, 16) and
the default ``candidates_per_trial: auto``: every candidate is a tabular NAS-Bench-201 evaluation that
sleeps ``--delay`` seconds (``wall_delay_s``) inside a Tune trial actor placed on either node, so a
row measures what the driver (Tune's loop, raynas's Searcher, the listeners) keeps up with.

* ``--per-worker`` candidates per worker (default 60): the row has ``W x per-worker`` candidates and
  ideal = per-worker x delay seconds whatever ``W``.
* **efficiency = ideal / wall** (wall: the whole ``Search.run``, actor start-up included); *steady*
  efficiency leaves out the start-up (ideal / (wall - time to the first result + the first trial's
  evaluation)). Goal: efficiency >= 0.9 at 16 workers with 1-s evaluations.
* Saturation (``--saturation N``, default 20,000): the same search with 0-s evaluations on the most
  workers, once with ``auto`` and once with one candidate per trial (at most 2,000 of them): the
  candidates/s at which the driver itself is the limit.

Usage::

    .venv/bin/python benchmarks/scaling.py                       # 1..16 workers, 1-s evaluations (~8 min)
    .venv/bin/python benchmarks/scaling.py --workers 1,2 --per-worker 5 --saturation 200   # quick
    .venv/bin/python benchmarks/scaling.py --write               # also the section in docs/BENCHMARKS.md
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a source checkout
    sys.path.insert(0, str(ROOT))

from benchmarks.overhead import make_recipe, run_tune  # noqa: E402
from raynas.recipes.schema import AUTO  # noqa: E402

SECTION = "## Scaling the driver (benchmarks/scaling.py)"
GOAL = 0.9
ONE_PER_TRIAL_MAX = 2_000  # candidates of the one-per-trial saturation run (~30 trials/s: a minute)


@dataclass
class Row:
    workers: int
    batch: int | str
    candidates: int
    delay: float
    trials: int
    wall_s: float
    startup_s: float

    @property
    def ideal_s(self) -> float:
        return self.candidates * self.delay / self.workers

    @property
    def efficiency(self) -> float:
        return self.ideal_s / self.wall_s

    @property
    def steady(self) -> float:
        return self.ideal_s / max(1e-9, self.wall_s - self.startup_s)

    @property
    def per_s(self) -> float:
        return self.candidates / self.wall_s


def measure(address: str, workers: int, candidates: int, delay: float, batch: int | str, storage: str,
            cpus: int) -> Row:
    recipe = make_recipe(candidates=candidates, delay=delay, workers=workers, batch=batch, storage=storage,
                         seed=0, name=f"scaling_w{workers}_b{batch}_d{delay:g}", num_cpus=cpus)
    recipe.ray.address = address
    run = run_tune(recipe)
    return Row(workers, batch, run.candidates, delay, run.trials, run.wall_s, run.startup_s)


def router_calls(calls: int, archs: int) -> dict[str, float]:
    """Milliseconds per ``ServerPool.evaluate`` call of one arch, through the pool's one router actor:
    ``hit`` (the router answers from its cache: the router's own cost) and ``miss`` (a new arch, one
    1-CPU replica scoring it: mbv3 on digits, BN recalibration + val + test)."""
    import numpy as np

    from raynas.serving import PoolConfig, ServerPool
    from raynas.serving.spec import ModelSpec, build_model
    from raynas.supernet.weights import to_numpy

    spec = ModelSpec()
    _, model = build_model(spec)
    pool = ServerPool.create(spec, PoolConfig(replicas=1, num_cpus=1, archs_per_call=1, prepare_num_cpus=1),
                             weights=to_numpy(model))
    try:
        space, rng = spec.build_space(), np.random.default_rng(0)
        items = [(space.to_str(a), space.canonical(a)) for a in (space.sample(rng) for _ in range(archs))]
        pool.evaluate(items[:1])  # start-up
        start = time.perf_counter()
        for item in items[1:]:
            pool.evaluate([item])
        miss = (time.perf_counter() - start) / max(1, len(items) - 1)
        start = time.perf_counter()
        for i in range(calls):
            pool.evaluate([items[i % len(items)]])
        hit = (time.perf_counter() - start) / calls
    finally:
        pool.shutdown()
    return {"hit_ms": hit * 1e3, "miss_ms": miss * 1e3}


def table(rows: list[Row]) -> list[str]:
    out = ["| workers | delay (s) | candidates / trial | candidates | trials | ideal (s) | wall (s) | start-up (s) "
           "| efficiency | steady efficiency | candidates/s |",
           "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        batch = f"{r.batch} (mean {r.candidates / r.trials:.1f})" if r.batch == AUTO else str(r.batch)
        out.append(f"| {r.workers} | {r.delay:g} | {batch} | {r.candidates:,} | {r.trials:,} | {r.ideal_s:.1f} | "
                   f"{r.wall_s:.1f} | {r.startup_s:.1f} | **{r.efficiency:.3f}** | {r.steady:.3f} | "
                   f"{r.per_s:,.1f} |")
    return out


def section(rows: list[Row], saturation: list[Row], router: dict[str, float] | None,
            args: argparse.Namespace) -> str:
    import ray

    most = [r for r in rows if r.workers == max(args.workers)]
    verdict = ""
    if most:
        r = most[0]
        verdict = (f"At {r.workers} workers with {r.delay:g}-s evaluations the efficiency is **{r.efficiency:.3f}** "
                   f"({'meets' if r.efficiency >= GOAL else 'does **not** meet'} the goal >= {GOAL}); "
                   f"{r.startup_s:.1f} s of it is start-up (steady efficiency {r.steady:.3f}).")
    sat = "; ".join(f"`{r.batch}`: **{r.per_s:,.0f} candidates/s** ({r.candidates:,} candidates, {r.trials:,} trials, "
                    f"{r.trials / r.wall_s:,.1f} trials/s)" for r in saturation)
    cmd = " ".join(["benchmarks/scaling.py", *sys.argv[1:]])
    return "\n".join([
        SECTION, "",
        f"A local two-node cluster (`ray.cluster_utils.Cluster`, {args.cpus // 2} logical CPUs per node); the "
        "`tune` backend with the default `candidates_per_trial: auto`; each candidate a tabular evaluation "
        f"that sleeps the row's delay in a trial actor on either node; {args.per_worker} candidates per worker, "
        "so ideal = per-worker x delay in every row. efficiency = ideal / wall (start-up included); steady "
        "efficiency leaves out the time to the first result.", "",
        *table(rows), "",
        verdict, "",
        f"**Saturation** (0-s evaluations, {max(args.workers)} workers): {sat}. "
        "That is the most the driver delivers to the strategy and the listeners: Tune's loop handles "
        "trials one event at a time in one thread, so one-candidate trials cap the search at Tune's trials/s, "
        "and batching multiplies it by the batch size.", "",
        *([] if router is None else [
            f"**Router** (one `ServerPool`, one 1-CPU replica; {args.router_calls} calls of one arch each): a cache "
            f"hit, answered by the router actor alone, takes **{router['hit_ms']:.2f} ms** per call (driver -> "
            f"router -> driver); a miss, scored by the replica (mbv3 on digits), {router['miss_ms']:.0f} ms.", ""]),
        f"Measured {datetime.date.today().isoformat()} with `{cmd}` on {platform.machine()} ({os.cpu_count()} "
        f"CPUs), Python {platform.python_version()}, Ray {ray.__version__}.",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", default="1,2,4,8,16", help="comma-separated worker counts (1,2,4,8,16)")
    p.add_argument("--delay", type=float, default=1.0, help="evaluation wall seconds (1)")
    p.add_argument("--per-worker", type=int, default=60, help="candidates per worker (60)")
    p.add_argument("--saturation", type=int, default=20_000, help="candidates of the 0-s runs (20,000; 0: none)")
    p.add_argument("--router-calls", type=int, default=500, help="router round trips to time (500; 0: none)")
    p.add_argument("--cpus", type=int, default=16, help="logical CPUs of the cluster, half per node (16)")
    p.add_argument("--write", action="store_true", help=f"write '{SECTION[3:]}' in docs/BENCHMARKS.md")
    args = p.parse_args(argv)
    args.workers = [int(w) for w in args.workers.split(",")]
    if max(args.workers) > args.cpus or min(args.workers) < 1 or args.per_worker < 1 or args.cpus < 2:
        p.error("--workers must be between 1 and --cpus, --per-worker >= 1, --cpus >= 2")
    import ray
    from ray.cluster_utils import Cluster

    from benchmarks.docs import publish

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    storage = tempfile.mkdtemp(prefix="raynas-scaling-")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": args.cpus // 2})
    rows: list[Row] = []
    saturation: list[Row] = []
    router = None
    try:
        cluster.add_node(num_cpus=args.cpus - args.cpus // 2)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, include_dashboard=False)
        for w in args.workers:
            rows.append(measure(cluster.address, w, w * args.per_worker, args.delay, AUTO, storage, args.cpus))
            print(table(rows)[-1], flush=True)
        for batch in ([AUTO, 1] if args.saturation else []):
            n = args.saturation if batch == AUTO else min(args.saturation, ONE_PER_TRIAL_MAX)
            saturation.append(measure(cluster.address, max(args.workers), n, 0.0, batch, storage, args.cpus))
            print(table(saturation)[-1], flush=True)
        if args.router_calls:
            router = router_calls(args.router_calls, archs=8)
            print(f"router: {router}", flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(storage, ignore_errors=True)
    print()
    publish(SECTION, section(rows, saturation, router, args), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
