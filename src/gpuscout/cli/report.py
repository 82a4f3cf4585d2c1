"""`gpuscout report`, `compare`, `export` and `import`: the stored runs, shown and moved."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gpuscout import jobs
from gpuscout.cli._common import (
    DbOpt,
    JsonOpt,
    console,
    err_console,
    fail_from,
    id_ranges,
    print_json,
    printable,
)
from gpuscout.errors import GpuscoutError
from gpuscout.report import fmt
from gpuscout.report.compare import Comparison

RUNS_HELP = "Run IDs, as `gpuscout history` lists them."


def report(
    run_ids: list[int] | None = typer.Argument(
        None, help=RUNS_HELP + " Default: the newest runs that make a full picture."
    ),
    output: str | None = typer.Option(
        None,
        "-o",
        "--output",
        help="File to write, or - for stdout (default: gpuscout-report.FORMAT).",
    ),
    fmt: str = typer.Option("html", "--format", "-f", help="html (charts included), md or json."),
    as_json: bool = JsonOpt,
    db: Path | None = DbOpt,
) -> None:
    """Write the report: machine, ceilings, CPU vs GPU, roofline, predictions, fit and cost."""
    options = jobs.ReportOptions(tuple(run_ids) if run_ids else None, output, fmt)
    try:
        out = jobs.report(db, options)
    except GpuscoutError as exc:
        fail_from(exc)
    if out.text is not None:
        sys.stdout.write(printable(out.text))  # stdout may be a terminal
        return
    if as_json:
        print_json(
            {
                "path": str(out.path),
                "format": fmt,
                "run_ids": out.run_ids,
                "unavailable": out.unavailable,
            }
        )
        return
    # Paths, names and reasons may hold "[...]", which Rich would read as markup.
    runs = ", ".join(str(i) for i in out.run_ids)
    console.print(f"wrote {escape(str(out.path))} (runs {runs})", soft_wrap=True)
    for name, why in out.unavailable.items():
        err_console.print(f"[dim]  {name}: {escape(why)}[/]", soft_wrap=True)


def _summarise(items: tuple[str, ...], show: int = 6) -> str:
    """The first few "NAME on DEVICE" entries, then how many more."""
    head = ", ".join(items[:show])
    return head if len(items) <= show else f"{head} and {len(items) - show} more (--json lists all)"


def compare(
    run_a: int = typer.Argument(..., help="The first run (A)."),
    run_b: int = typer.Argument(
        ..., help="The second run (B), e.g. one brought with `gpuscout import`."
    ),
    as_json: bool = JsonOpt,
    db: Path | None = DbOpt,
) -> None:
    """Two runs side by side: each figure both measured, B/A, and what differs between them."""
    try:
        cmp = jobs.compare(db, run_a, run_b)
    except GpuscoutError as exc:
        fail_from(exc)
    if as_json:
        print_json(cmp)
        return
    _runs(cmp)
    if cmp.results:
        console.print(_figures(cmp))
    else:
        console.print("The two runs have no result in common.")
    for tag, only in (("A", cmp.only_a), ("B", cmp.only_b)):
        if only:
            console.print(f"[dim]only in {tag}: {escape(_summarise(only))}[/]", soft_wrap=True)
    if cmp.differences:
        env = Table(title="What differs", title_justify="left", header_style="bold")
        for col in ("", "A", "B"):
            env.add_column(col, overflow="fold")
        for d in cmp.differences:
            env.add_row(d.label, Text(d.a), Text(d.b))
        console.print(env)
    else:
        console.print("Same machine and software (by fingerprint).")


def _runs(cmp: Comparison) -> None:
    """One line per run: its kind, host, GPUs and start."""
    # An imported run's strings come from another machine: escaped, "[...]" stays text.
    for tag, run in (("A", cmp.run_a), ("B", cmp.run_b)):
        host = run.fingerprint.get("host") or "?"
        about = f"{run.kind} · {host} · {fmt.gpu_list(run.fingerprint)}"
        console.print(
            f"[bold]{tag}[/]: run {run.id} · {escape(about)} · "
            f"{run.started_at[:16].replace('T', ' ')}",
            soft_wrap=True,
        )


def _figures(cmp: Comparison) -> Table:
    """Each figure both runs measured, B/A coloured where it moved by more than 5%."""
    table = Table(title_justify="left", show_header=True, header_style="bold")
    for col in ("Result", "Device", "A", "B", "Unit", "B/A"):
        table.add_column(
            col, justify="right" if col in ("A", "B", "B/A") else "left", overflow="fold"
        )
    for r in cmp.results:
        ratio = Text(fmt.ratio(r.ratio))
        if r.b_better is not None and r.ratio is not None and abs(r.ratio - 1) > 0.05:
            ratio.stylize("green" if r.b_better else "red")
        table.add_row(
            Text(r.name), r.device, fmt.num(r.figure_a), fmt.num(r.figure_b), Text(r.unit), ratio
        )
    return table


def export(
    run_ids: list[int] | None = typer.Argument(None, help=RUNS_HELP + " Default: every run."),
    output: str | None = typer.Option(
        None, "-o", "--output", help="File to write, or - for stdout (default)."
    ),
    as_json: bool = JsonOpt,
    db: Path | None = DbOpt,
) -> None:
    """Write runs to a JSON file, to compare on another machine (`gpuscout import`)."""
    try:
        out = jobs.export(db, run_ids, output)
    except GpuscoutError as exc:
        fail_from(exc)
    if out.path is None:
        sys.stdout.write(out.text)
    elif as_json:
        print_json({"path": str(out.path), "run_ids": out.run_ids})
    else:
        ids = out.run_ids
        console.print(
            f"exported {fmt.plural(len(ids), 'run')} ({', '.join(map(str, ids))}) to "
            f"{escape(str(out.path))}",
            soft_wrap=True,
        )


def import_runs(
    file: str = typer.Argument(..., help="A file written by `gpuscout export` (- for stdin)."),
    as_json: bool = JsonOpt,
    db: Path | None = DbOpt,
) -> None:
    """Add runs exported on another machine; checked field by field, never executed.
    A run already stored (same machine, start and measurements) is not added again."""
    try:
        done = jobs.import_file(db, file)
    except GpuscoutError as exc:
        fail_from(exc)
    if as_json:
        already = [{"index": i, "run_id": run_id} for i, run_id in done.already]
        print_json({"run_ids": done.new_ids, "already": already})
    elif not done.new_ids and not done.already:
        console.print(f"{escape(file)} holds no runs; nothing imported", soft_wrap=True)
    else:
        console.print(import_summary(done.new_ids, [i for _, i in done.already]), soft_wrap=True)


def import_summary(new_ids: Sequence[int], already: Sequence[int]) -> str:
    """ "imported 3 runs as 4-6; 2 already imported as runs 1-2 (gpuscout show 4)": ranges,
    not lists, so an import of thousands of runs stays one line. ``already`` has an id
    for each run of the file that was stored before (the same id where a file repeats a
    run)."""
    parts = []
    if new_ids:
        parts.append(f"imported {fmt.plural(len(new_ids), 'run')} as {id_ranges(new_ids)}")
    if already:
        held = sorted(set(already))
        where = f"run {held[0]}" if len(held) == 1 else f"runs {id_ranges(held)}"
        count = (
            f"{len(already):,}" if new_ids else f"nothing new: {fmt.plural(len(already), 'run')}"
        )
        parts.append(f"{count} already imported as {where}")
    line = "; ".join(parts)
    return f"{line} (gpuscout show {new_ids[0]})" if new_ids else line


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("compare")(compare)
    app.command("export")(export)
    app.command("import")(import_runs)
