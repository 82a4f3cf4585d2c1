"""`gpuscout bench dist`: collective bandwidth and data-parallel scaling on N processes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from gpuscout import jobs
from gpuscout._types import Result
from gpuscout.cli._common import (
    DbOpt,
    JsonOpt,
    console,
    fail_from,
    print_json,
    progress_bar,
    say_saved,
)
from gpuscout.errors import GpuscoutError
from gpuscout.report import fmt


def _collectives(results: Sequence[Result]) -> Table:
    t = Table(title="Collectives (nccl-tests' algbw and busbw, GB/s)", title_justify="left")
    for col in ("collective", "size", "time", "algbw", "busbw", "check"):
        t.add_column(col, justify="left" if col in ("collective", "check") else "right")
    for r in results:
        e = r.extra
        size = r.name.rsplit("/", 1)[-1]
        if r.status != "ok":
            why = f"[red]{r.status}[/]: " + escape(r.error or "")
            t.add_row(str(e.get("op")), size, "", "", "", why)
            continue
        t.add_row(
            str(e.get("op")),
            size,
            fmt.seconds(e.get("time_s")),
            fmt.num(e.get("algbw_gbs")),
            fmt.num(r.figure),
            "verified",
        )
    return t


SCALING_COLUMNS = (
    "workload",
    "procs",
    "throughput",
    "efficiency",
    "comm share",
    "step",
    "model, batch/rank",
)


def _scaling(results: Sequence[Result]) -> Table:
    t = Table(
        title="Data-parallel scaling (weak: every rank keeps its batch)",
        title_justify="left",
        caption="comm share: 1 - step time without gradient sync / with it (DDP's hooks "
        "included); n/a on 1 process, where nothing is exchanged",
        caption_justify="left",
    )
    for col in SCALING_COLUMNS:
        t.add_column(col, justify="left" if col.startswith(("workload", "model")) else "right")
    for r in results:
        e = r.extra
        what = f"{e.get('scaled_workload')} ({e.get('parallel')})"
        if r.status != "ok":
            state = f"[dim]{r.status}[/]" if r.status == "skipped" else f"[red]{r.status}[/]"
            t.add_row(what, str(e.get("processes")), state, "", "", "", escape(r.error or ""))
            continue
        t.add_row(
            what,
            str(e.get("processes")),
            fmt.num(r.figure, r.unit),
            fmt.pct(e.get("efficiency")),
            fmt.pct(e.get("comm_share")),
            fmt.seconds(e.get("step_time_s")),
            f"{e.get('model')} / {e.get('per_rank_batch')}",
        )
    return t


def render(results: Sequence[Result], summary: Mapping[str, Any]) -> None:
    """The job's shape, then a table of collectives and one of scaling points."""
    coll = [r for r in results if not r.name.startswith("dist/scaling/")]
    scal = [r for r in results if r.name.startswith("dist/scaling/")]
    head = (
        f"{summary.get('world_size')} ranks ({summary.get('nnodes')} node(s) x "
        f"{summary.get('nproc_per_node')}), {summary.get('backend')} on "
        f"{summary.get('device')}, launched by {summary.get('launcher')}"
    )
    console.print(head)
    if coll:
        console.print(_collectives(coll))
    if scal:
        console.print(_scaling(scal))


def dist(
    nproc_per_node: int | None = typer.Option(
        None, "--nproc-per-node", help="Ranks on this node (default: the GPU count, or 2 on CPU)."
    ),
    nnodes: int | None = typer.Option(None, "--nnodes", help="Nodes (run this on each one)."),
    rdzv_endpoint: str | None = typer.Option(
        None, "--rdzv-endpoint", help="HOST:PORT of the c10d rendezvous (needed with --nnodes)."
    ),
    backend: str | None = typer.Option(
        None, "--backend", help="nccl or gloo (default: nccl with CUDA GPUs, else gloo)."
    ),
    device: str | None = typer.Option(
        None, "--device", help="cpu or cuda tensors (default: cuda with nccl, cpu with gloo)."
    ),
    only: str | None = typer.Option(
        None, "--only", help="Comma-separated parts: collectives, scaling (default: both)."
    ),
    workload: str | None = typer.Option(
        None, "--workload", help="Scaling workloads: cnn, encoder (DDP), llm (FSDP)."
    ),
    ops: str | None = typer.Option(
        None, "--ops", help="Collectives: all_reduce, all_gather, broadcast (default: all)."
    ),
    max_size: str | None = typer.Option(
        None, "--max-size", help="Largest collective size, e.g. 64M or 1G (default by device)."
    ),
    quick: bool = typer.Option(False, "--quick", help="Fewer sizes, smaller models."),
    timeout: float | None = typer.Option(
        None, "--timeout", min=1, help="Seconds before a hung job is stopped (600 quick/1800)."
    ),
    fault: str | None = typer.Option(
        None, "--fault", hidden=True, envvar="GPUSCOUT_DIST_FAULT", help="Testing: exit:1 ..."
    ),
    json_out: bool = JsonOpt,
    db: Path | None = DbOpt,
    no_store: bool = typer.Option(False, "--no-store", help="Do not save this run."),
) -> None:
    """Collective bandwidth (all-reduce, all-gather, broadcast) and DDP/FSDP scaling.

    Starts N ranks with torchrun (or uses Slurm's tasks inside srun); every collective
    is verified before it is timed. A rank that dies or hangs stops the whole job
    within --timeout with one line naming it, and nothing is stored.
    Exit code: 0 ok, 1 a failed job or check, 2 a usage error.
    """
    options = jobs.DistOptions(
        nproc_per_node=nproc_per_node,
        nnodes=nnodes,
        rdzv_endpoint=rdzv_endpoint,
        backend=backend,
        device=device,
        only=only,
        workloads=workload,
        ops=ops,
        max_size=max_size,
        quick=quick,
        timeout_s=timeout,
        fault=fault,
        store=not no_store,
    )
    try:
        with progress_bar(not json_out, "starting the ranks") as progress:
            out = jobs.bench_dist(db, options, progress)
    except GpuscoutError as exc:
        fail_from(exc)
    if json_out:
        print_json(
            {
                "run_id": out.run_id,
                "exit_code": out.exit_code,
                "has_rank0": out.has_rank0,
                "summary": out.summary,
                "results": out.results,
            }
        )
    elif not out.has_rank0:
        ranks = ", ".join(map(str, out.local_ranks))
        console.print(f"done: this node ran rank(s) {ranks}; the node with rank 0 stores the run")
    else:
        render(out.results, out.summary)
        say_saved(out.run_id)
    raise typer.Exit(out.exit_code)


def register_dist(bench_app: typer.Typer) -> None:
    """Add `dist` to the `bench` sub-app (cli/bench.py owns that app)."""
    bench_app.command("dist")(dist)
