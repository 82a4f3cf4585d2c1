"""The measuring jobs: micro-benchmark ceilings, the real workloads, and the
multi-process collectives and scaling; each checks its options before anything heavy
starts, measures, and stores one run. Ceilings and workloads store each result as it
finishes: Ctrl-C or SIGTERM keeps those (``storing.keeping``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gpuscout._types import Result
from gpuscout.bench import record, runner
from gpuscout.dist import job as dist_job
from gpuscout.jobs.listening import Progress
from gpuscout.jobs.storing import (
    FAILED,
    StoreLike,
    db_location,
    keeping,
    run_fingerprint,
    save,
)
from gpuscout.report.verdict import verdict
from gpuscout.store import fingerprint
from gpuscout.workloads import plan, resolve_devices, run_workloads

OK = ("ok", "skipped")


@dataclass(frozen=True)
class WorkloadSizes:
    """Each workload's size where it is not its own (None): fewer epochs, samples, steps,
    a smaller batch or a shorter sequence. ``TINY`` makes every stage a few seconds."""

    epochs: int | None = None
    limit_samples: int | None = None
    steps: int | None = None
    batch_size: int | None = None
    seq_len: int | None = None

    def fields(self) -> dict[str, Any]:
        return asdict(self)


# Every workload at its own size.
OWN_SIZES = WorkloadSizes()
# One epoch of 256 samples, one timed step: the workloads' code paths, not their speed.
TINY = WorkloadSizes(epochs=1, limit_samples=256, steps=1)


def _exit_code(results: tuple[Result, ...] | list[Result], good: tuple[str, ...]) -> int:
    return 1 if any(r.status not in good for r in results) else 0


# -- bench micro -------------------------------------------------------------------------


@dataclass(frozen=True)
class MicroOptions:
    """``devices``: cpu, cuda, cuda:N or all (comma lists); ``only``: some benchmarks
    (matmul, memory, transfer, launch); ``quick``: fewer sizes, shorter timing."""

    devices: str = "all"
    only: str | None = None
    quick: bool = False
    store: bool = True


@dataclass(frozen=True)
class MicroOutcome:
    results: tuple[Result, ...]
    quick: bool
    exit_code: int  # 1 when a benchmark gave a wrong result
    run_id: int | None


def bench_micro(
    where: StoreLike = None, options: MicroOptions | None = None, progress: Progress | None = None
) -> MicroOutcome:
    """Each device's ceilings (matmul per precision, memory and PCIe bandwidth, launch
    overhead), every result checked against a reference before it is timed; stored as one
    run of kind "bench-micro", each result as it finishes. Ctrl-C or SIGTERM ends the job
    with ``Stopped`` once the run is marked "interrupted" with what finished."""
    opts = options or MicroOptions()
    names = runner.resolve_benchmarks(opts.only)
    devices = runner.resolve_devices(opts.devices)
    with keeping(where, "bench-micro", enabled=opts.store) as keeper:
        system = record.probe_for_fingerprint()
        if opts.store:
            keeper.begin(
                fingerprint(system if system is not None else record.probe_for_fingerprint())
            )
        results = runner.run_micro(
            devices, names, opts.quick, progress, system=system, on_result=keeper.keep
        )
        failed = any(r.status in FAILED for r in results)
        summary = record.summarise_results(results)
        run_id = keeper.finish(results, summary, failed)
    code = 1 if any(r.status == "failed" for r in results) else 0
    return MicroOutcome(tuple(results), opts.quick, code, run_id)


# -- bench workload ----------------------------------------------------------------------


@dataclass(frozen=True)
class WorkloadOptions:
    """``names``: workloads (comma list, or all); ``impl``: reference (tutorial-style),
    tuned or both; ``model`` for a workload that has several; ``data_dir`` holds the
    datasets' files; ``quick``: the small set `gpuscout run` uses; ``compare``: also the
    third-party programs where installed; ``timeout_s`` per run."""

    names: str = "all"
    devices: str = "all"
    impl: str = "both"
    model: str | None = None
    data_dir: Path | None = None
    sizes: WorkloadSizes = OWN_SIZES
    quick: bool = False
    compare: bool = False
    timeout_s: float | None = None
    store: bool = True


@dataclass(frozen=True)
class WorkloadOutcome:
    results: tuple[Result, ...]
    verdict: str  # in plain words: which device is faster, and what tuning gives
    synthetic_data: bool  # a dataset's files were missing: stand-in data was used
    exit_code: int  # 1 when a run failed (crash, out of memory, timeout)
    run_id: int | None


def bench_workload(
    where: StoreLike = None,
    options: WorkloadOptions | None = None,
    progress: Progress | None = None,
) -> WorkloadOutcome:
    """Train and run real models, tutorial-style and tuned, each in its own worker
    process; stored as one run of kind "workload", each result as its run ends. Ctrl-C
    or SIGTERM stops the worker and ends the job with ``Stopped`` once the run is marked
    "interrupted" with what finished."""
    opts = options or WorkloadOptions()
    # Names, devices and model checked before the run is opened: a typo stores nothing.
    plan(opts.names, resolve_devices(opts.devices), opts.impl, model=opts.model)
    with keeping(where, "workload", enabled=opts.store) as keeper:
        if opts.store:
            keeper.begin(run_fingerprint())
        results = run_workloads(
            opts.names,
            opts.devices,
            opts.impl,
            model=opts.model,
            data_dir=opts.data_dir,
            quick=opts.quick,
            compare=opts.compare,
            timeout_s=opts.timeout_s,
            db=db_location(where),
            progress=progress,
            on_result=keeper.keep,
            **opts.sizes.fields(),
        )
        said = verdict(results)
        synthetic = any(bool(r.extra.get("synthetic_data")) for r in results)
        summary = {"verdict": said, "synthetic_data": synthetic}
        run_id = keeper.finish(results, summary, _exit_code(results, OK) == 1)
    return WorkloadOutcome(tuple(results), said, synthetic, _exit_code(results, OK), run_id)


# -- bench dist --------------------------------------------------------------------------


@dataclass(frozen=True)
class DistOptions:
    """The job's shape (ranks per node, nodes, rendezvous, backend, tensors' device), what
    it measures (``only`` collectives or scaling, ``workloads``, ``ops``, ``max_size``),
    ``quick``, ``timeout_s`` before a hung job is stopped; ``fault`` is for tests."""

    nproc_per_node: int | None = None
    nnodes: int | None = None
    rdzv_endpoint: str | None = None
    backend: str | None = None
    device: str | None = None
    only: str | None = None
    workloads: str | None = None
    ops: str | None = None
    max_size: str | None = None
    quick: bool = False
    timeout_s: float | None = None
    fault: str | None = None
    store: bool = True


@dataclass(frozen=True)
class DistOutcome:
    results: tuple[Result, ...]  # empty on a node without rank 0
    summary: Mapping[str, Any]  # the job's shape, its ranks and its duration
    has_rank0: bool
    local_ranks: tuple[int, ...]  # the ranks this node ran
    exit_code: int  # 1 when a check failed
    run_id: int | None  # None on a node without rank 0, or when not stored


def bench_dist(
    where: StoreLike = None, options: DistOptions | None = None, progress: Progress | None = None
) -> DistOutcome:
    """Collective bandwidth and DDP/FSDP scaling on N ranks; every option is checked
    before a rank starts. A failed job (a rank died or hung) raises ``DistJobError`` and
    stores nothing; a finished one is stored (on rank 0's node) as one run."""
    opts = options or DistOptions()
    plan = dist_job.plan(
        nproc_per_node=opts.nproc_per_node,
        nnodes=opts.nnodes,
        rdzv_endpoint=opts.rdzv_endpoint,
        backend=opts.backend,
        device=opts.device,
        only=opts.only,
        workloads=opts.workloads,
        ops=opts.ops,
        max_size=opts.max_size,
        quick=opts.quick,
        timeout_s=opts.timeout_s,
        fault=opts.fault,
    )
    run = dist_job.run_dist(plan, progress=progress)
    run_id = None
    if opts.store and run.has_rank0:
        env = fingerprint(record.probe_for_fingerprint())
        summary = record.summarise_results(run.results) | run.summary
        failed = any(r.status in FAILED for r in run.results)
        run_id = save(where, dist_job.KIND, env, run.results, summary=summary, failed=failed)
    code = _exit_code(run.results, OK)
    return DistOutcome(
        tuple(run.results), run.summary, run.has_rank0, run.local_ranks, code, run_id
    )
