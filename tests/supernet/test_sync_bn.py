"""``global_batch_statistics``: two gloo processes (torch.multiprocessing, no Ray) normalising their
halves of a batch give the outputs, input gradients, parameter gradients (summed, as DDP's average
times 2) and running statistics of one BatchNorm on the whole batch — for the elastic
``DynamicBatchNorm2d`` on fewer channels than it holds and for a plain ``BatchNorm2d``."""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from raynas.supernet.ops import DynamicBatchNorm2d
from raynas.supernet.sync_bn import global_batch_statistics

ATOL = 1e-5
BATCH, CHANNELS, ACTIVE = 8, 6, 4


def layers() -> list[nn.Module]:
    torch.manual_seed(0)
    out = [DynamicBatchNorm2d(CHANNELS), nn.BatchNorm2d(ACTIVE)]
    for bn in out:
        nn.init.uniform_(bn.weight, 0.5, 1.5), nn.init.uniform_(bn.bias, -0.5, 0.5)
    return out


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(BATCH, ACTIVE, 5, 5, generator=g) * 3 + 2, torch.randn(BATCH, ACTIVE, 5, 5, generator=g)


def run(bn: nn.Module, x: torch.Tensor, upstream: torch.Tensor) -> dict[str, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    y = bn(x)
    (y * upstream).sum().backward()
    out = {"y": y, "dx": x.grad, "dw": bn.weight.grad, "db": bn.bias.grad, "mean": bn.running_mean,
           "var": bn.running_var}
    return {k: v.detach().numpy().copy() for k, v in out.items()}  # numpy: sent by value, not by shared fd


def worker(rank: int, path: str, queue) -> None:
    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=2)
    x, upstream = batch()
    half = slice(rank * BATCH // 2, (rank + 1) * BATCH // 2)
    results = []
    for bn in layers():
        with global_batch_statistics(bn):
            results.append(run(bn.train(), x[half], upstream[half]))
    queue.put((rank, results))
    dist.barrier()
    dist.destroy_process_group()


def test_two_processes_equal_one_batchnorm_over_the_whole_batch(tmp_path):
    x, upstream = batch()
    single = [{k: torch.from_numpy(v) for k, v in run(bn.train(), x, upstream).items()} for bn in layers()]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(rank, str(tmp_path / "rendezvous"), queue)) for rank in range(2)]
    for p in procs:
        p.start()
    parts = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    for i, reference in enumerate(single):
        got = [{k: torch.from_numpy(v) for k, v in parts[rank][i].items()} for rank in range(2)]
        for key in ("y", "dx"):
            torch.testing.assert_close(torch.cat([g[key] for g in got]), reference[key], atol=ATOL, rtol=0)
        for key in ("dw", "db"):  # each rank's local share; DDP sums (averages) them over ranks
            torch.testing.assert_close(got[0][key] + got[1][key], reference[key], atol=ATOL, rtol=0)
        for key in ("mean", "var"):
            for g in got:
                torch.testing.assert_close(g[key], reference[key], atol=ATOL, rtol=0)


def test_outside_a_process_group_or_when_disabled_nothing_changes():
    bn = layers()[0].train()
    x, upstream = batch()
    with global_batch_statistics(bn, enabled=False):
        assert "forward" not in vars(bn)
        inside = run(bn, x, upstream)
    fresh = layers()[0].train()
    torch.testing.assert_close(torch.from_numpy(inside["y"]), torch.from_numpy(run(fresh, x, upstream)["y"]))
