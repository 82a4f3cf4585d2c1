"""Data-parallel scaling: throughput on 1, 2, 4 ... N processes, inside one job.

Runs inside every rank of a torch.distributed job. For each process count k (powers
of two up to the world size, and the world size itself), ranks 0..k-1 train together
on a process group of their own while the others wait at a barrier; so one job of N
ranks measures every point, on the same machine, with the same start-up.

Which workloads, at what sizes and how, their records say (``WorkloadSpec.scaling``):

- "ddp": the gpuscout workload itself (tuned implementation, eager, no torch.compile:
  compiling per point would cost more than it measures), wrapped in
  DistributedDataParallel. ``broadcast_buffers=False``: the communication measured is
  the gradient all-reduce, not BatchNorm statistics.
- "fsdp": the workload's Llama-shaped decoder trained with FSDP2 (``fully_shard`` per
  block): each rank holds 1/k of the parameters, gradients and optimizer state.

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
from gpuscout.dist.rank import RankContext
from gpuscout.dist.scaling_points import DdpPoint, FsdpPoint
from gpuscout.errors import UsageError
from gpuscout.workloads import registry
from gpuscout.workloads.spec import Scaling

T = TypeVar("T")


def workloads() -> tuple[str, ...]:
    """The workloads measured across processes (their records have ``scaling``)."""
    return tuple(s.name for s in registry.specs() if s.scaling is not None)


def default_workloads() -> tuple[str, ...]:
    """The ones `bench dist` measures when none is named."""
    return tuple(n for n in workloads() if _scaling(n).default)


def __getattr__(name: str) -> Any:
    """The scaling workloads and their parallelism and units, from their records, as
    module attributes (read when asked: importing this module discovers nothing)."""
    if name == "WORKLOADS":
        return workloads()
    if name == "DEFAULT_WORKLOADS":
        return default_workloads()
    if name == "PARALLEL":
        return {n: _scaling(n).parallel for n in workloads()}
    if name == "UNITS":
        return {n: registry.get(n).unit for n in workloads()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _scaling(workload: str) -> Scaling:
    scaling = registry.get(workload).scaling
    if scaling is None:
        raise UsageError(
            f"{workload} is not measured across processes",
            f"choose from {', '.join(workloads())}",
        )
    return scaling


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
    """Per-rank model, batch, size (image side or sequence length) and timed steps."""
    sizes = _scaling(workload).sizes.pick(gpu=gpu, quick=quick)
    return {
        "model": overrides.get("model") or sizes.model,
        "batch": int(overrides.get("batch_size") or sizes.batch),
        "size": int(overrides.get("size") or sizes.length or 0),
        "steps": int(overrides.get("steps") or sizes.steps or 1),
    }


def _point(
    ctx: RankContext, workload: str, k: int, group: Any, s: dict[str, Any], quick: bool
) -> dict[str, Any]:
    spec = registry.get(workload)
    base: dict[str, Any] = {
        "workload": workload,
        "parallel": _scaling(workload).parallel,
        "processes": k,
        "model": s["model"],
        "per_rank_batch": s["batch"],
        "unit": spec.unit,
        "backend": ctx.backend,
        (spec.length_name or "seq_len"): s["size"],
    }
    point, error = _build_point(ctx, workload, k, group, s, quick)
    if point is None:
        return base | {"status": "oom", "error": error}
    problem = _check_replicas(ctx, point, group)
    if problem is not None:
        return base | {"status": "failed", "error": problem}
    return base | _timed(ctx, point, k, group, s)


def _build_point(
    ctx: RankContext, workload: str, k: int, group: Any, s: dict[str, Any], quick: bool
) -> tuple[Any, str | None]:
    """The point's model ready to step on every rank, or (None, which ranks ran out of
    memory), agreed by all ranks before the first collective."""
    what = f"{s['model']} at batch {s['batch']} per rank"
    if _scaling(workload).parallel == "fsdp":
        return _agreed(
            ctx,
            group,
            f"building and sharding {what}",
            lambda: FsdpPoint(ctx, workload, s, group),
        )
    _, error = _agreed(
        ctx, group, f"a step of {what}", lambda: DdpPoint(ctx, workload, s, quick).trial()
    )
    if error is not None:
        return None, error
    # The trial's model and optimizer state, before building anew: it may sit in
    # reference cycles, and on a GPU the caching allocator keeps what was freed.
    release_memory(ctx.device)
    return DdpPoint(ctx, workload, s, quick).wrap(group), None


def _check_replicas(ctx: RankContext, point: Any, group: Any) -> str | None:
    """Two synchronised steps, then every rank's loss finite and every replica alike;
    None when they are, else what is wrong (the same answer on every rank)."""
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
    if ctx.all_true(not problems, group):
        return None
    found = [p for ps in ctx.gather_json(problems, group) for p in ps]
    return "; ".join(dict.fromkeys(found))


def _timed(ctx: RankContext, point: Any, k: int, group: Any, s: dict[str, Any]) -> dict[str, Any]:
    """The point's step timed with and (from 2 processes on) without gradient sync."""
    loss = float(point.last)
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
    return {
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
    if _scaling(workload).parallel != "fsdp":
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
        points = _points(ctx, workload, counts, groups, s, quick, step_total)
        one = next((p for p in points if p["processes"] == 1 and p["status"] == "ok"), None)
        for p in points:
            if p["status"] == "ok" and one is not None:
                p["efficiency"] = scaling_efficiency(
                    p["throughput"], one["throughput"], p["processes"]
                )
        out.extend(points)
    return out if ctx.rank == 0 else []


def _points(
    ctx: RankContext,
    workload: str,
    counts: Sequence[int],
    groups: Mapping[int, Any],
    s: dict[str, Any],
    quick: bool,
    step_total: int | None,
) -> list[dict[str, Any]]:
    """One workload at every process count (this rank's view of each)."""
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
                    "parallel": _scaling(workload).parallel,
                }
            )
            continue
        if ctx.rank < k:
            points.append(_point(ctx, workload, k, groups[k], s, quick))
        release_memory(ctx.device)  # the point's model may sit in cycles (DDP's hooks)
        ctx.barrier()
    return points
