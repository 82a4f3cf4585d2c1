"""Data-parallel scaling: throughput on 1, 2, 4 ... N processes, inside one job.

Runs inside every rank of a torch.distributed job. For each process count k (powers
of two up to the world size, and the world size itself), ranks 0..k-1 train together
on a process group of their own while the others wait at a barrier; so one job of N
ranks measures every point, on the same machine, with the same start-up.

- ``cnn`` and ``encoder``: the gpuscout workloads (tuned implementation, eager, no
  torch.compile: compiling per point would cost more than it measures), wrapped in
  DistributedDataParallel. ``broadcast_buffers=False``: the communication measured is
  the gradient all-reduce, not BatchNorm statistics.
- ``llm``: a Llama-shaped decoder trained with FSDP2 (``fully_shard`` per block): each
  rank holds 1/k of the parameters, gradients and optimizer state.

Weak scaling, as Lambda and MLPerf report it: every rank keeps its batch, so k ranks
process k batches a step. Throughput(k) = k x batch / step time (the slowest rank's
median); scaling efficiency(k) = throughput(k) / (k x throughput(1)).

Communication share, from 2 processes on: the same step timed twice, with the gradient
synchronisation (normal DDP) and without it (``DDP.no_sync()``). share = 1 - t_local /
t_sync: the part of a step that synchronising gradients adds, after whatever overlap
with the backward pass DDP achieves; it includes DDP's own bookkeeping (its hooks and
bucket management; gradients are views of the buckets, so nothing is copied into
them), which is why it is not reported for one process:
there nothing is exchanged, and the difference measured (0 to 40% from run to run for
the tiny CPU models) would read as a communication cost that does not exist. For FSDP,
``set_requires_gradient_sync(False)`` drops the gradient reduce-scatter but keeps the
parameter all-gathers, and without reduced gradients the optimizer has nothing to step:
its share is an approximation of the same idea. A CPU rank gets cores / ranks-per-node
threads at every point, so adding ranks adds cores, as adding GPUs adds GPUs.

Before timing, replicas are checked: after two synchronised steps from the same start
every DDP rank must hold bit-identical parameters (the all-reduced gradients are the
same everywhere), and every loss must be finite.

A point that does not fit is a recorded outcome ("oom"), not the end of the job. Every
rank first tries what the point needs on its own, with no collective: for DDP, building
the workload and one local step (activations, gradients, optimizer state), thrown away
afterwards so the timed replicas start alike; for FSDP, building and sharding the model.
The ranks then agree (one all-reduce) before the first collective, so a rank out of
memory never leaves the others waiting in an all-reduce it will not join. What runs out
of memory after that still ends the job (the rank raises; the launcher stops the others):
little is left for a DDP point (its gradients are views of its buckets, so the timed
step holds what the trial held, plus DDP's own small state), but an FSDP step
all-gathers the parameters in its forward pass, with no local step to try first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from gpuscout.bench.context import release_memory
from gpuscout.dist.scaling_points import DdpPoint, FsdpPoint
from gpuscout.dist.rank import RankContext

T = TypeVar("T")

WORKLOADS = ("cnn", "encoder", "llm")
DEFAULT_WORKLOADS = ("cnn", "encoder")
PARALLEL = {"cnn": "ddp", "encoder": "ddp", "llm": "fsdp"}
UNITS = {"cnn": "images/s", "encoder": "sequences/s", "llm": "tokens/s"}

# (model, per-rank batch, image size or sequence length, timed steps)
_SETTINGS: dict[tuple[str, bool, bool], tuple[str, int, int, int]] = {
    # (workload, gpu, quick)
    ("cnn", True, False): ("resnet50", 128, 224, 20),
    ("cnn", True, True): ("resnet18", 64, 224, 10),
    # On a CPU the steps are milliseconds: 10 of them, or the medians are noise (with 3,
    # 2-rank efficiency was seen at 182%).
    ("cnn", False, False): ("resnet18", 16, 64, 10),
    ("cnn", False, True): ("resnet-tiny", 8, 32, 10),
    ("encoder", True, False): ("bert-base", 32, 128, 20),
    ("encoder", True, True): ("bert-base", 16, 128, 10),
    ("encoder", False, False): ("bert-tiny", 8, 128, 10),
    ("encoder", False, True): ("bert-tiny", 4, 64, 10),
    ("llm", True, False): ("llama-1.1b", 4, 512, 10),
    ("llm", True, True): ("llama-125m", 8, 256, 5),
    ("llm", False, False): ("llama-tiny", 4, 128, 10),
    ("llm", False, True): ("llama-tiny", 2, 64, 10),
}


def process_counts(world: int) -> list[int]:
    """1, 2, 4 ... below ``world``, then ``world`` itself (6 ranks: 1, 2, 4, 6)."""
    if world < 1:
        raise ValueError("world size must be at least 1")
    counts, k = [], 1
    while k < world:
        counts.append(k)
        k *= 2
    return [*counts, world]


def scaling_efficiency(throughput_n: float, throughput_1: float, n: int) -> float:
    """throughput(n) / (n x throughput(1)): 1.0 is perfect linear scaling."""
    if throughput_1 <= 0 or n < 1:
        raise ValueError("throughput(1) must be > 0 and n >= 1")
    return throughput_n / (n * throughput_1)


def comm_share(step_sync_s: float, step_local_s: float) -> float:
    """Share of the synchronised step that gradient synchronisation adds (0 when the
    step without it is not faster: noise, or communication fully overlapped)."""
    if step_sync_s <= 0:
        raise ValueError("step time must be > 0")
    return max(0.0, 1.0 - step_local_s / step_sync_s)


def settings(
    workload: str, *, gpu: bool, quick: bool, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    model, batch, size, steps = _SETTINGS[(workload, gpu, quick)]
    return {
        "model": overrides.get("model") or model,
        "batch": int(overrides.get("batch_size") or batch),
        "size": int(overrides.get("size") or size),
        "steps": int(overrides.get("steps") or steps),
    }


def _point(
    ctx: RankContext, workload: str, k: int, group: Any, s: dict[str, Any], quick: bool
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "workload": workload,
        "parallel": PARALLEL[workload],
        "processes": k,
        "model": s["model"],
        "per_rank_batch": s["batch"],
        "unit": UNITS[workload],
        "backend": ctx.backend,
        ("image_size" if workload == "cnn" else "seq_len"): s["size"],
    }
    what = f"{s['model']} at batch {s['batch']} per rank"
    point: Any = None
    if workload == "llm":
        point, error = _agreed(
            ctx, group, f"building and sharding {what}", lambda: FsdpPoint(ctx, s, group)
        )
    else:
        _, error = _agreed(
            ctx, group, f"a step of {what}", lambda: DdpPoint(ctx, workload, s, quick).trial()
        )
        if error is None:
            # The trial's model and optimizer state, before building anew: it may sit in
            # reference cycles, and on a GPU the caching allocator keeps what was freed.
            release_memory(ctx.device)
            point = DdpPoint(ctx, workload, s, quick).wrap(group)
    if point is None:
        return base | {"status": "oom", "error": error}
    for _ in range(2):
        point.step()
    loss = float(point.last)
    fp = point.fingerprint()
    fps = ctx.gather_json(fp, group)
    problems = []
    if not math.isfinite(loss):
        problems.append(f"rank {ctx.rank}: loss is {loss}")
    if fp is not None and len(set(fps)) > 1:
        problems.append(f"replicas differ after two synchronised steps (parameter sums {fps})")
    if not ctx.all_true(not problems, group):
        found = [p for ps in ctx.gather_json(problems, group) for p in ps]
        return base | {"status": "failed", "error": "; ".join(dict.fromkeys(found))}
    sync = ctx.measure(point.step, iters=s["steps"], warmup=1)
    local_s: float | None = None
    if k > 1:  # one process exchanges nothing: no share to measure (module docstring)
        with point.local():
            local_s = ctx.measure(point.step, iters=s["steps"], warmup=1).stats.median_s
    rows = ctx.gather_json(
        {"median_s": sync.stats.median_s, "local_s": local_s, "stats": sync.stats}, group
    )
    slowest = max(rows, key=lambda d: float(d["median_s"]))
    t_sync = float(slowest["median_s"])
    t_local = None if local_s is None else max(float(d["local_s"]) for d in rows)
    return base | {
        "status": "ok",
        "throughput": k * point.samples / t_sync,
        "step_time_s": t_sync,
        "step_time_local_s": t_local,
        "comm_share": None if t_local is None else comm_share(t_sync, t_local),
        "loss": loss,
        "stats": slowest["stats"],
        "clock": sync.clock,
        "verified": True,
    }


def _agreed(
    ctx: RankContext, group: Any, what: str, fn: Callable[[], T]
) -> tuple[T | None, str | None]:
    """``fn()`` on every rank of ``group``, then one all-reduce: (its value, None) when
    it fitted on every rank; (None, which ranks ran out of memory) when it did not, on
    every rank alike. Other errors are bugs and end the job as they should."""
    from gpuscout.isolate.process import is_oom

    value: T | None = None
    error: str | None = None
    try:
        ctx.exhaust_memory()  # only under the "oom" testing fault (launch.rank)
        value = fn()
    except Exception as exc:
        if not is_oom(exc):
            raise
        error = f"rank {ctx.rank} ran out of memory in {what}"
    if ctx.all_true(error is None, group):
        return value, None
    value = None
    release_memory(ctx.device)
    found = [e for e in ctx.gather_json(error, group) if e]
    return None, "; ".join(found)


def _skip_reason(workload: str) -> str | None:
    """Why a workload cannot run here at all (the same answer on every rank)."""
    if workload != "llm":
        return None
    try:
        from torch.distributed.fsdp import fully_shard  # noqa: F401
    except ImportError:
        import torch

        return f"torch {torch.__version__} has no FSDP2 (torch.distributed.fsdp.fully_shard)"
    return None


def run_scaling(
    ctx: RankContext,
    *,
    workloads: Sequence[str],
    quick: bool,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    step_total: int | None = None,
) -> list[dict[str, Any]]:
    """Every (workload, process count); rank 0 returns the points, the others []."""
    import torch.distributed as dist

    world = ctx.world_size
    counts = process_counts(world)
    # Every rank creates every group, in the same order (a collective call).
    groups = {k: (None if k == world else dist.new_group(list(range(k)))) for k in counts}
    gpu = ctx.device.startswith("cuda")
    out: list[dict[str, Any]] = []
    for workload in workloads:
        s = settings(workload, gpu=gpu, quick=quick, overrides=(overrides or {}).get(workload, {}))
        reason = _skip_reason(workload)
        points: list[dict[str, Any]] = []
        for k in counts:
            ctx.progress(f"scaling: {workload} on {k} process{'es' if k > 1 else ''}", step_total)
            if reason is not None:
                points.append(
                    {
                        "workload": workload,
                        "processes": k,
                        "status": "skipped",
                        "error": reason,
                        "parallel": PARALLEL[workload],
                    }
                )
                continue
            if ctx.rank < k:
                points.append(_point(ctx, workload, k, groups[k], s, quick))
            release_memory(ctx.device)  # the point's model may sit in cycles (DDP's hooks)
            ctx.barrier()
        one = next((p for p in points if p["processes"] == 1 and p["status"] == "ok"), None)
        for p in points:
            if p["status"] == "ok" and one is not None:
                p["efficiency"] = scaling_efficiency(
                    p["throughput"], one["throughput"], p["processes"]
                )
        out.extend(points)
    return out if ctx.rank == 0 else []
