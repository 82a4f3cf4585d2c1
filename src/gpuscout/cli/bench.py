"""`gpuscout bench ...`: measure this machine. `bench micro` runs the micro-benchmarks.

``bench_app`` is the shared sub-app: other command modules add their own ``bench``
commands (e.g. ``bench workload``) with ``bench_app.command("workload")(fn)`` inside
their ``register``; ``register`` here attaches the sub-app to the root app once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from gpuscout._types import Result
from gpuscout.bench.runner import Progress
from gpuscout.cli._common import DbOpt, JsonOpt, console, err_console, fail_from, print_json
from gpuscout.errors import GpuscoutError

bench_app = typer.Typer(
    help="Measure this machine: micro-benchmark ceilings (matmul, memory, PCIe, launch).",
    no_args_is_help=True,
)


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    """A Rich progress bar on stderr, so stdout stays clean for tables and --json; none
    where stderr is not a terminal (a log file would get blank lines, not a bar)."""
    if not enabled or not err_console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
    )
    with bar:
        task = bar.add_task("starting", total=None)

        def update(label: str, done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total)

        yield update


def _figure(r: Result) -> str:
    if r.figure is None:
        return "—"
    if r.unit in ("TFLOPS", "TOPS"):
        return f"{r.figure:,.3g} {r.unit}" if r.figure < 100 else f"{r.figure:,.0f} {r.unit}"
    if r.unit == "launches/s":
        return f"{r.figure:,.0f} /s"
    if r.unit == "us":
        return f"{r.figure:,.2f} µs"
    return f"{r.figure:,.1f} {r.unit}"


def _notes(r: Result) -> str:
    why = escape(r.error or "")  # error text may hold "[...]", which Rich reads as markup
    if r.status == "skipped":
        return f"[dim]skipped: {why}[/]"
    if r.status != "ok":
        return f"[red]{r.status}[/]: {why}"
    flags = list(r.extra.get("flags", ()))
    return f"[yellow]{', '.join(flags)}[/]" if flags else ""


def render(results: list[Result]) -> None:
    table = Table(title="Micro-benchmarks", title_justify="left")
    table.add_column("Device")
    table.add_column("Benchmark")
    table.add_column("Result", justify="right")
    table.add_column("% of peak", justify="right")
    table.add_column("Notes")
    for r in results:
        pct = f"{100 * r.peak_fraction:.0f}%" if r.peak_fraction is not None else ""
        table.add_row(r.device, r.name, _figure(r), pct, _notes(r))
    console.print(table)
    sources: dict[str, str] = {}
    for r in results:
        src = r.extra.get("ceiling_source")
        if src and r.device not in sources:
            sources[r.device] = str(src)
    for device, src in sources.items():
        console.print(f"[dim]peak for {device}: {escape(src)}[/]")


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

    Every result is checked against a reference before it is timed.
    Exit code: 0 all ran (or were skipped), 1 a wrong result, 2 a usage error.
    """
    from gpuscout.bench import record, runner

    try:
        names = runner.resolve_benchmarks(only)
        devices = runner.resolve_devices(device)
        system = record.probe_for_fingerprint()
        with _progress(not json_out) as progress:
            results = runner.run_micro(devices, names, quick, progress, system=system)
        run_id = None if no_store else record.save_run(results, db=db, system=system)
    except GpuscoutError as exc:
        fail_from(exc)
    code = 1 if any(r.status == "failed" for r in results) else 0
    if json_out:
        print_json({"run_id": run_id, "quick": quick, "results": results})
    else:
        render(results)
        if run_id is not None:
            err_console.print(f"[dim]saved as run {run_id} (gpuscout show {run_id})[/]")
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    from gpuscout.cli.dist import register_dist
    from gpuscout.cli.workload import register_workload

    if "micro" not in {c.name for c in bench_app.registered_commands}:
        bench_app.command("micro")(micro)
    if "workload" not in {c.name for c in bench_app.registered_commands}:
        register_workload(bench_app)
    if "dist" not in {c.name for c in bench_app.registered_commands}:
        register_dist(bench_app)
    app.add_typer(bench_app, name="bench")
