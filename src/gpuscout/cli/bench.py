"""`gpuscout bench ...`: measure this machine. `bench micro` runs the micro-benchmarks.

``bench_app`` is the shared sub-app: other command modules add their own ``bench``
commands (e.g. ``bench workload``) with ``bench_app.command("workload")(fn)`` inside
their ``register``; ``register`` here attaches the sub-app to the root app once.
"""

from __future__ import annotations

from pathlib import Path

import typer

from gpuscout import jobs
from gpuscout.cli._common import (
    DbOpt,
    JsonOpt,
    fail_from,
    print_json,
    progress_bar,
    say_saved,
)
from gpuscout.cli._tables import render_micro
from gpuscout.cli.dist import register_dist
from gpuscout.cli.workload import register_workload
from gpuscout.errors import GpuscoutError

bench_app = typer.Typer(
    help="Measure this machine: micro-benchmark ceilings (matmul, memory, PCIe, launch).",
    no_args_is_help=True,
)


def micro(
    device: str = typer.Option(
        "all", "--device", "-d", help="cpu, cuda, cuda:N or all (comma-separated for several)."
    ),
    only: str | None = typer.Option(
        None, "--only", help="Comma-separated benchmarks: matmul, memory, transfer, launch."
    ),
    quick: bool = typer.Option(False, "--quick", help="Fewer sizes, shorter timing (~1 min)."),
    json_out: bool = JsonOpt,
    db: Path | None = DbOpt,
    no_store: bool = typer.Option(False, "--no-store", help="Do not save this run."),
) -> None:
    """Measure matmul TFLOPS per precision, memory and PCIe bandwidth, and launch overhead.

    Every result is checked against a reference before it is timed, and saved as it
    ends: Ctrl-C keeps those (exit 130; SIGTERM 143).
    Exit code: 0 all ran (or were skipped), 1 a wrong result, 2 a usage error.
    """
    options = jobs.MicroOptions(devices=device, only=only, quick=quick, store=not no_store)
    try:
        with progress_bar(not json_out) as progress:
            out = jobs.bench_micro(db, options, progress)
    except GpuscoutError as exc:
        fail_from(exc)
    if json_out:
        print_json({"run_id": out.run_id, "quick": out.quick, "results": out.results})
    else:
        render_micro(out.results)
        say_saved(out.run_id)
    raise typer.Exit(out.exit_code)


def register(app: typer.Typer) -> None:
    if "micro" not in {c.name for c in bench_app.registered_commands}:
        bench_app.command("micro")(micro)
    if "workload" not in {c.name for c in bench_app.registered_commands}:
        register_workload(bench_app)
    if "dist" not in {c.name for c in bench_app.registered_commands}:
        register_dist(bench_app)
    app.add_typer(bench_app, name="bench")
