"""``gpuscout history``, ``gpuscout show`` and ``gpuscout delete``: what the results
store holds, and taking runs out of it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from gpuscout import jobs
from gpuscout._types import Finding, Result, RunRecord
from gpuscout.cli._common import DbOpt, JsonOpt, console, fail_from, id_ranges, print_json
from gpuscout.errors import GpuscoutError

_STATUS_STYLE = {
    "ok": "green",
    "pass": "green",
    "running": "cyan",
    "skip": "dim",
    "skipped": "dim",
    "warn": "yellow",
    "interrupted": "yellow",
}


def _styled(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, "red"))


def _when(iso: str | None) -> str:
    # Stored as ISO 8601 UTC to the second; minutes are enough to tell runs apart.
    return "" if not iso else iso[:16].replace("T", " ")


def _gpus(fingerprint: Mapping[str, Any]) -> str:
    gpus = fingerprint.get("gpus")
    if not isinstance(gpus, list):
        return "n/a"
    if not gpus:
        return "none"
    names = Counter(
        str(g.get("name") or "unknown GPU") if isinstance(g, dict) else "unknown GPU" for g in gpus
    )
    return ", ".join(name if n == 1 else f"{n}x {name}" for name, n in names.items())


def _headline(summary: Mapping[str, Any], width: int = 60) -> str:
    """``summary["headline"]`` when a command wrote one, else its simple fields, short."""
    headline = summary.get("headline")
    if isinstance(headline, str):
        text = headline
    else:
        parts = [
            f"{k}={v}"
            for k, v in summary.items()
            if isinstance(v, (str, int, float, bool)) or v is None
        ]
        text = ", ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def _number(x: float | None) -> str:
    if x is None:
        return "n/a"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _seconds(s: float) -> str:
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(s) >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _timing(result: Result) -> Text:
    stats = result.stats
    if stats is None:
        return Text("")
    text = Text(_seconds(stats.median_s))
    if stats.median_s > 0:
        text.append(f" (IQR {100 * stats.iqr_s / stats.median_s:.1f}%)", style="dim")
    if stats.noisy:
        text.append(" noisy", style="yellow")
    return text


def _bytes(n: Any) -> str:
    return f"{n / 2**30:.0f} GiB" if isinstance(n, (int, float)) else "n/a"


def history_table(runs: Sequence[RunRecord]) -> Table:
    table = Table(title="gpuscout runs", title_justify="left")
    for name in ("ID", "Kind", "Started (UTC)", "Status", "Host", "GPUs", "Summary"):
        table.add_column(name, justify="right" if name == "ID" else "left")
    for run in runs:
        table.add_row(
            str(run.id),
            run.kind,
            _when(run.started_at),
            _styled(run.status),
            str(run.fingerprint.get("host", "")),
            _gpus(run.fingerprint),
            _headline(run.summary),
        )
    return table


def _fingerprint_table(fp: Mapping[str, Any]) -> Table:
    table = Table(title="Environment", title_justify="left", show_header=False)
    table.add_column("Field", style="bold")
    table.add_column("Value")
    for key, value in fp.items():
        if key == "gpus" and isinstance(value, list):
            lines = [
                f"{g.get('index', '?')}: {g.get('name') or 'unknown'} "
                f"({_bytes(g.get('memory_total_bytes'))}) {g.get('uuid') or ''}".rstrip()
                for g in value
                if isinstance(g, dict)
            ]
            table.add_row("gpus", "\n".join(lines) or "none")
        else:
            table.add_row(key, "n/a" if value is None else str(value))
    return table


def _findings_table(findings: Sequence[Finding]) -> Table:
    table = Table(title="Findings", title_justify="left")
    for name in ("Status", "Check", "Subject", "Summary", "Fix"):
        table.add_column(name)
    for f in findings:
        table.add_row(_styled(f.status.value), f.id, f.subject, f.summary, f.fix)
    return table


def _results_table(results: Sequence[Result]) -> Table:
    table = Table(title="Results", title_justify="left")
    for name in ("Name", "Device", "Figure", "Unit", "Median (spread)", "% of peak", "Status"):
        right = name in ("Figure", "% of peak")
        # fold, not ellipsis: a truncated benchmark name is ambiguous.
        fold = name in ("Name", "Status")
        table.add_column(
            name,
            justify="right" if right else "left",
            overflow="fold" if fold else "ellipsis",
            min_width=16 if name == "Name" else None,
        )
    for r in results:
        status = _styled(r.status)
        if r.error:
            status.append(f" {r.error}", style="dim")
        peak = "" if r.peak_fraction is None else f"{100 * r.peak_fraction:.0f}%"
        table.add_row(r.name, r.device, _number(r.figure), r.unit, _timing(r), peak, status)
    return table


def history(
    limit: int = typer.Option(20, "--limit", "-n", help="Show at most this many runs."),
    kind: str | None = typer.Option(None, "--kind", help="Only runs of this kind."),
    as_json: bool = JsonOpt,
    db: Path | None = DbOpt,
) -> None:
    """List the recorded runs, newest first."""
    try:
        out = jobs.history(db, limit, kind)
    except GpuscoutError as exc:
        fail_from(exc)
    if as_json:
        print_json(out.runs)
    elif not out.runs:
        console.print(f"No runs yet in {out.database}.")
    else:
        console.print(history_table(out.runs))


def show(
    run_id: int = typer.Argument(..., help="The run's ID, as `gpuscout history` lists it."),
    as_json: bool = JsonOpt,
    db: Path | None = DbOpt,
) -> None:
    """Show one run: its environment, findings and results."""
    try:
        out = jobs.show(db, run_id)
    except GpuscoutError as exc:
        fail_from(exc)
    if as_json:
        print_json({"run": out.run, "findings": out.findings, "results": out.results})
        return
    run = out.run
    header = Text.assemble(
        (f"Run {run.id}", "bold"),
        f" · {run.kind} · ",
        _styled(run.status),
        f" · started {_when(run.started_at)} · finished {_when(run.finished_at) or '-'}",
    )
    console.print(header)
    for key, value in run.summary.items():
        console.print(f"  {key}: {value}", soft_wrap=True)
    console.print(_fingerprint_table(run.fingerprint))
    if out.findings:
        console.print(_findings_table(out.findings))
    if out.results:
        console.print(_results_table(out.results))
    else:
        console.print("No results recorded.")


def delete(
    run_ids: list[int] = typer.Argument(
        ..., help="The runs' IDs, as `gpuscout history` lists them."
    ),
    as_json: bool = JsonOpt,
    db: Path | None = DbOpt,
) -> None:
    """Delete runs with their results and findings (all or none: an unknown ID deletes nothing)."""
    try:
        gone = jobs.delete_runs(db, run_ids)
    except GpuscoutError as exc:
        fail_from(exc)
    if as_json:
        print_json({"deleted": gone})
    else:
        console.print(f"deleted {'run' if len(gone) == 1 else 'runs'} {id_ranges(gone)}")


def register(app: typer.Typer) -> None:
    app.command("history")(history)
    app.command("show")(show)
    app.command("delete")(delete)
