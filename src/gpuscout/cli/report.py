"""`gpuscout report`, `compare`, `export` and `import`: the stored runs, shown and moved."""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gpuscout.cli._common import DbOpt, JsonOpt, console, err_console, fail_from, print_json
from gpuscout.errors import GpuscoutError, UsageError
from gpuscout.store import Store, resolve_db_path

if TYPE_CHECKING:
    from gpuscout.report import Report

RUNS_HELP = "Run IDs, as `gpuscout history` lists them."


def _existing_store(db: Path | None) -> Store:
    """The store; reading commands never create a database that is not there."""
    target = resolve_db_path(db)
    if isinstance(target, Path) and not target.is_file():
        raise UsageError(
            f"no results database at {target}", "run `gpuscout run` first, or pass --db"
        )
    return Store.open(target)


def _unavailable(report: Report) -> dict[str, str]:
    """Section name -> why it could not be computed."""
    from gpuscout.report import Unavailable

    sections = {f.name: getattr(report, f.name) for f in fields(report)}
    return {name: s.reason for name, s in sections.items() if isinstance(s, Unavailable)}


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
    from gpuscout.report import FORMATS, build_report, render, write_report

    try:
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}", f"use one of {', '.join(FORMATS)}")
        with _existing_store(db) as store:
            rep = build_report(store, run_ids or None)
        if output == "-":
            sys.stdout.write(render(rep, fmt))
            return
        path = write_report(rep, output or f"gpuscout-report.{fmt}", fmt)
    except GpuscoutError as exc:
        fail_from(exc)
    missing = _unavailable(rep)
    if as_json:
        print_json(
            {
                "path": str(path),
                "format": fmt,
                "run_ids": [r.id for r in rep.runs],
                "unavailable": missing,
            }
        )
        return
    # Paths, names and reasons may hold "[...]", which Rich would read as markup.
    runs = ", ".join(str(r.id) for r in rep.runs)
    console.print(f"wrote {escape(str(path))} (runs {runs})", soft_wrap=True)
    for name, why in missing.items():
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
    from gpuscout.report import fmt
    from gpuscout.report.compare import compare_runs

    try:
        with _existing_store(db) as store:
            cmp = compare_runs(store, run_a, run_b)
    except GpuscoutError as exc:
        fail_from(exc)
    if as_json:
        print_json(cmp)
        return
    # An imported run's strings come from another machine: escaped, "[...]" stays text.
    for tag, run in (("A", cmp.run_a), ("B", cmp.run_b)):
        host = run.fingerprint.get("host") or "?"
        about = f"{run.kind} · {host} · {fmt.gpu_list(run.fingerprint)}"
        console.print(
            f"[bold]{tag}[/]: run {run.id} · {escape(about)} · "
            f"{run.started_at[:16].replace('T', ' ')}",
            soft_wrap=True,
        )
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
    if cmp.results:
        console.print(table)
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
        with _existing_store(db) as store:
            doc = store.export_runs(run_ids or None)
        if not doc["runs"]:
            raise UsageError("no runs to export", "run `gpuscout run` first")
        text = json.dumps(doc, indent=2) + "\n"
        ids = [r["id"] for r in doc["runs"]]
        if output in (None, "-"):
            sys.stdout.write(text)
            return
        path = Path(output).expanduser()
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except GpuscoutError as exc:
        fail_from(exc)
    if as_json:
        print_json({"path": str(path), "run_ids": ids})
    else:
        from gpuscout.report import fmt

        console.print(
            f"exported {fmt.plural(len(ids), 'run')} ({', '.join(map(str, ids))}) to "
            f"{escape(str(path))}",
            soft_wrap=True,
        )


def _read_document(file: str) -> Any:
    try:
        text = (
            sys.stdin.read() if file == "-" else Path(file).expanduser().read_text(encoding="utf-8")
        )
    except FileNotFoundError:
        raise UsageError(f"no such file: {file}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{file} is not a text file: not a gpuscout export") from None
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{file} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            "give a file written by `gpuscout export`",
        ) from None
    except RecursionError:
        raise UsageError(f"{file} is nested too deeply to be a gpuscout export") from None


def import_runs(
    file: str = typer.Argument(..., help="A file written by `gpuscout export` (- for stdin)."),
    as_json: bool = JsonOpt,
    db: Path | None = DbOpt,
) -> None:
    """Add runs exported on another machine; checked field by field, never executed."""
    try:
        doc = _read_document(file)
        with Store.open(db) as store:
            ids = store.import_runs(doc)
    except GpuscoutError as exc:
        fail_from(exc)
    if as_json:
        print_json({"run_ids": ids})
    elif not ids:
        console.print(f"{escape(file)} holds no runs; nothing imported")
    else:
        from gpuscout.report import fmt

        console.print(
            f"imported {fmt.plural(len(ids), 'run')} as {', '.join(map(str, ids))} "
            f"(gpuscout show {ids[0]})"
        )


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("compare")(compare)
    app.command("export")(export)
    app.command("import")(import_runs)
