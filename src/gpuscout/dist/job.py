"""``gpuscout bench dist``: collective bandwidth and data-parallel scaling, on N ranks.

``plan(...)`` checks the options (one-line usage errors) and decides the launcher;
``run_dist(plan)`` launches the job with ``dist.torchrun`` and turns rank 0's dict into
``Result`` records; ``save(run)`` stores them as ONE run of kind "bench-dist".

Failure policy ("nothing half-written"): a job that fails (a rank died, hung or raised)
stores nothing. The results only exist on rank 0 after the job's final barrier, and
``run_dist`` raises ``DistJobError`` (exit code 1, one line naming the rank, the job
directory kept for its logs) before anything reaches the store. A job that finished
but whose check failed (a collective returned a wrong sum) is a complete run: it is
stored with that result marked failed, like a wrong matmul in ``bench micro``; so is one
whose collective size or scaling point did not fit in memory (marked "oom").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpuscout._types import Result, Stats
from gpuscout.dist import collectives, scaling
from gpuscout.errors import GpuscoutError, UnknownNameError, UsageError
from gpuscout.dist.rank import RankContext, parse_fault
from gpuscout.dist.torchrun import LaunchSpec, Progress, plan_launch, run_job

PARTS = ("collectives", "scaling")
KIND = "bench-dist"
RANK_TARGET = "gpuscout.dist.job:rank_suite"
DEFAULT_TIMEOUT_S = {True: 600.0, False: 1800.0}  # quick: 10 min; full: 30 min
MAX_PG_TIMEOUT_S = 300.0


class DistJobError(GpuscoutError):
    """The job did not finish: a rank died, hung or raised. Exit code 1."""


@dataclass(frozen=True)
class DistPlan:
    spec: LaunchSpec
    backend: str
    device: str  # "cpu" or "cuda": the tensors' device on every rank
    parts: tuple[str, ...] = PARTS
    ops: tuple[str, ...] = collectives.OPS
    sizes: tuple[int, ...] = ()
    workloads: tuple[str, ...] = scaling.DEFAULT_WORKLOADS
    quick: bool = False
    pg_timeout_s: float = MAX_PG_TIMEOUT_S
    fault: str | None = None
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        s = self.spec
        return {
            "launcher": s.launcher,
            "world_size": s.world_size,
            "nnodes": s.nnodes,
            "nproc_per_node": s.nproc_per_node,
            "backend": self.backend,
            "device": self.device,
            "parts": list(self.parts),
            "workloads": list(self.workloads) if "scaling" in self.parts else [],
            "quick": self.quick,
            "slurm_job_id": s.slurm.job_id if s.slurm is not None else None,
        }


def check_names(
    text: str | Sequence[str] | None, known: Sequence[str], kind: str
) -> tuple[str, ...]:
    """Comma-separated (or listed) names, each one of ``known``, deduplicated in order;
    None: all of ``known``. "All-Reduce" reads as "all_reduce"."""
    import difflib

    if text is None:
        return tuple(known)
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for raw in items:
        name = raw.strip().lower().replace("-", "_")
        if not name:
            continue
        if name not in known:
            raise UnknownNameError(
                kind, raw.strip(), difflib.get_close_matches(name, known, 3, 0.5)
            )
        if name not in out:
            out.append(name)
    if not out:
        raise UsageError(f"no {kind} given", f"use one or more of {', '.join(known)}")
    return tuple(out)


def _cuda() -> tuple[bool, int, bool]:
    """(CUDA usable, GPU count, NCCL built): asked of torch in this process."""
    try:
        import torch
        import torch.distributed as dist
    except ImportError:
        raise UsageError(
            "gpuscout bench dist needs PyTorch", "pip install torch (see `gpuscout doctor`)"
        ) from None
    if not dist.is_available():
        raise UsageError(f"this torch {torch.__version__} was built without torch.distributed")
    cuda = torch.cuda.is_available()
    return cuda, torch.cuda.device_count() if cuda else 0, dist.is_nccl_available()


def plan(
    *,
    nproc_per_node: int | None = None,
    nnodes: int | None = None,
    rdzv_endpoint: str | None = None,
    backend: str | None = None,
    device: str | None = None,
    only: str | Sequence[str] | None = None,
    workloads: str | Sequence[str] | None = None,
    ops: str | Sequence[str] | None = None,
    max_size: str | int | None = None,
    quick: bool = False,
    timeout_s: float | None = None,
    fault: str | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> DistPlan:
    """Every option checked before a process starts; UsageError (exit 2) for bad input."""
    parts = check_names(only, PARTS, "part")
    wl = check_names(
        workloads if workloads is not None else scaling.DEFAULT_WORKLOADS,
        scaling.WORKLOADS,
        "scaling workload",
    )
    op_names = check_names(ops, collectives.OPS, "collective")
    parse_fault(fault)
    cuda, gpus, nccl = _cuda()
    backend, device = _backend_and_device(backend, device, cuda=cuda, nccl=nccl)
    timeout = float(timeout_s) if timeout_s is not None else DEFAULT_TIMEOUT_S[quick]
    spec = plan_launch(
        nproc_per_node,
        nnodes,
        rdzv_endpoint,
        timeout_s=timeout,
        default_nproc=gpus if device == "cuda" else 2,
        environ=environ,
    )
    if backend == "nccl" and spec.nproc_per_node > gpus and not spec.slurm_tasks:
        raise UsageError(
            f"{spec.nproc_per_node} ranks per node but {gpus} GPU(s): NCCL will not put two "
            "ranks on one GPU",
            "use --nproc-per-node <= the GPU count, or --backend gloo --device cuda to share",
        )
    sizes = collectives.default_sizes(
        gpu=device == "cuda", quick=quick, max_size=_max_bytes(max_size)
    )
    return DistPlan(
        spec=spec,
        backend=backend,
        device=device,
        parts=parts,
        ops=op_names,
        sizes=tuple(sizes),
        workloads=wl,
        quick=quick,
        pg_timeout_s=min(timeout, MAX_PG_TIMEOUT_S),
        fault=fault,
        overrides=dict(overrides or {}),
    )


def _backend_and_device(
    backend: str | None, device: str | None, *, cuda: bool, nccl: bool
) -> tuple[str, str]:
    """The backend and the tensors' device asked for, or the best this machine has."""
    if backend is not None and backend not in ("nccl", "gloo"):
        raise UsageError(f"unknown backend {backend!r}", "use nccl (GPUs) or gloo (CPUs)")
    backend = backend or ("nccl" if cuda and nccl else "gloo")
    if device is not None and device not in ("cpu", "cuda"):
        raise UsageError(f"unknown device {device!r}", "use cpu or cuda")
    device = device or ("cuda" if backend == "nccl" else "cpu")
    _check_combination(backend, device, cuda=cuda, nccl=nccl)
    return backend, device


def _check_combination(backend: str, device: str, *, cuda: bool, nccl: bool) -> None:
    """UsageError for a backend and device this machine cannot run together."""
    on_nccl = backend == "nccl"
    # (impossible, message, hint), in the order a user should hear about them
    for impossible, message, hint in (
        (
            on_nccl and not cuda,
            "--backend nccl needs a CUDA GPU, and PyTorch sees none",
            "use --backend gloo on a CPU machine",
        ),
        (on_nccl and not nccl, "this PyTorch build has no NCCL", "use --backend gloo"),
        (
            on_nccl and device != "cuda",
            "NCCL moves only CUDA tensors",
            "use --device cuda, or --backend gloo",
        ),
        (
            device == "cuda" and not cuda,
            "--device cuda but PyTorch sees no CUDA GPU",
            "use --device cpu",
        ),
    ):
        if impossible:
            raise UsageError(message, hint)


def _max_bytes(max_size: str | int | None) -> int | None:
    """--max-size in bytes ("64M" or a number); None: the default sizes."""
    if isinstance(max_size, str):
        max_bytes: int | None = collectives.parse_size(max_size)
    else:
        max_bytes = max_size
        if max_bytes is not None and max_bytes < collectives.MIN_SIZE:
            raise UsageError(f"--max-size {max_bytes} is below the smallest size, 1 KiB")
    if max_bytes is not None and max_bytes > collectives.MAX_SIZE:
        raise UsageError("--max-size is at most 1G")
    return max_bytes


# -- inside each rank ------------------------------------------------------------------


def rank_suite(
    ctx: RankContext,
    *,
    parts: Sequence[str],
    ops: Sequence[str],
    sizes: Sequence[int],
    workloads: Sequence[str],
    quick: bool,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run on every rank (``dist.rank_main``); rank 0's dict holds everything."""
    import torch

    if not ctx.device.startswith("cuda"):
        from gpuscout.workloads.base import physical_cores

        # The node's cores shared out: adding ranks adds cores, as adding GPUs adds GPUs.
        torch.set_num_threads(max(1, physical_cores() // max(1, ctx.local_world_size)))
    n_counts = len(scaling.process_counts(ctx.world_size))
    total = ctx.step + 1  # the phases so far, then one per collective and scaling point
    total += len(ops) * len(sizes) if "collectives" in parts else 0
    total += len(workloads) * n_counts if "scaling" in parts else 0
    total += 1  # "finishing"
    out: dict[str, Any] = {"collectives": [], "scaling": []}
    if "collectives" in parts:
        out["collectives"] = collectives.run_collectives(
            ctx, ops=ops, sizes=sizes, quick=quick, step_total=total
        )
    if "scaling" in parts:
        out["scaling"] = scaling.run_scaling(
            ctx, workloads=workloads, quick=quick, overrides=overrides, step_total=total
        )
    ranks = ctx.gather_json(
        {
            "rank": ctx.rank,
            "host": ctx.hostname,
            "device": ctx.device,
            "device_name": _device_name(ctx.device),
        }
    )
    out["ranks"] = ranks
    out["torch"] = torch.__version__
    return out if ctx.rank == 0 else {}


def _device_name(device: str) -> str:
    import platform

    if device.startswith("cuda"):
        import torch

        return str(torch.cuda.get_device_name(torch.device(device)))
    return platform.processor() or platform.machine()


# -- in the launching gpuscout ----------------------------------------------------------


@dataclass(frozen=True)
class DistRun:
    """What this node got. ``results`` is empty on a node that did not run rank 0."""

    plan: DistPlan
    results: list[Result]
    summary: dict[str, Any]
    has_rank0: bool
    local_ranks: tuple[int, ...]
    duration_s: float


def _stats(value: Any) -> Stats | None:
    from gpuscout.store.codec import stats_from_mapping  # the ranks never need the store

    return stats_from_mapping(value) if isinstance(value, Mapping) else None


def _device_label(value: Mapping[str, Any], p: DistPlan) -> str:
    """Rank 0's device ("cpu", "cuda:0"), as every other result in the store names one;
    the rank count is in each result's ``extra["ranks"]`` and the run's summary."""
    ranks = value.get("ranks") or []
    return str(ranks[0].get("device")) if ranks else p.device


def to_results(value: Mapping[str, Any], p: DistPlan) -> list[Result]:
    """Rank 0's dict as Result records: one per (collective, size) and scaling point."""
    out: list[Result] = []
    device = _device_label(value, p)
    for c in value.get("collectives", []):
        extra = {k: v for k, v in c.items() if k not in ("stats", "status", "error")}
        name = f"dist/{c['op']}/{collectives.format_size(int(c['size_bytes'])).replace(' ', '')}"
        out.append(
            Result(
                name=name,
                device=device,
                figure=c.get("busbw_gbs"),
                unit="GB/s",
                status=c["status"],
                stats=_stats(c.get("stats")),
                error=c.get("error"),
                extra=extra,
            )
        )
    for s in value.get("scaling", []):
        extra = {k: v for k, v in s.items() if k not in ("stats", "status", "error", "workload")}
        # Not "workload": that key marks a single-device workload result, which predict
        # and the report project and chart; a scaling point is a different measurement.
        extra["scaled_workload"] = s["workload"]
        out.append(
            Result(
                name=f"dist/scaling/{s['workload']}/{s['processes']}",
                device=device,
                figure=s.get("throughput"),
                unit=scaling.UNITS[s["workload"]],
                status=s["status"],
                stats=_stats(s.get("stats")),
                error=s.get("error"),
                extra=extra,
            )
        )
    return out


def run_dist(
    p: DistPlan,
    *,
    progress: Progress | None = None,
    work_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> DistRun:
    """Launch the job and wait; ``DistJobError`` (naming the rank) when it fails."""
    kwargs = {
        "parts": list(p.parts),
        "ops": list(p.ops),
        "sizes": list(p.sizes),
        "workloads": list(p.workloads),
        "quick": p.quick,
        "overrides": {k: dict(v) for k, v in p.overrides.items()},
    }
    outcome = run_job(
        RANK_TARGET,
        kwargs,
        p.spec,
        backend=p.backend,
        device=p.device,
        pg_timeout_s=p.pg_timeout_s,
        fault=p.fault,
        progress=progress,
        work_dir=work_dir,
        environ=environ,
    )
    if not outcome.ok:
        raise DistJobError(
            f"the {p.spec.world_size}-rank job failed: {outcome.message}",
            f"nothing was stored; rank logs and files in {outcome.job_dir}",
        )
    value = outcome.value or {}
    summary = p.summary() | {
        "ranks": value.get("ranks", []),
        "torch": value.get("torch"),
        "duration_s": round(outcome.duration_s, 2),
    }
    results = to_results(value, p) if outcome.value is not None else []
    return DistRun(
        p, results, summary, outcome.value is not None, outcome.local_ranks, outcome.duration_s
    )


def save(run: DistRun, *, db: Path | str | None = None) -> int | None:
    """Store the run (one run, kind "bench-dist"); None on a node without rank 0."""
    if not run.has_rank0:
        return None
    from gpuscout.bench.record import save_run

    return save_run(run.results, db=db, kind=KIND, summary=run.summary)
