"""The jobs over stored runs: list and show them, compare two, write the report, move
runs between machines (export, import) and delete them. None of them measures anything,
and the reading ones never create a database that is not there."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TextIO

import gpuscout.report as reporting
from gpuscout._types import Finding, Result, RunRecord
from gpuscout.errors import UsageError
from gpuscout.jobs.storing import StoreLike, db_label, existing, opened
from gpuscout.report.compare import Comparison, compare_runs
from gpuscout.store import Store, guard
from gpuscout.store.db import Imported
from gpuscout.store.exchange import read_export


@contextmanager
def _required(where: StoreLike) -> Iterator[Store]:
    """The store, or UsageError where its file is not there yet."""
    with existing(where) as store:
        if store is None:
            raise UsageError(
                f"no results database at {db_label(where)}",
                "run `gpuscout run` first, or pass --db",
            )
        yield store


# -- history and show --------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    database: Path | str  # the file read (or that would be: no runs when it is not there)
    runs: tuple[RunRecord, ...]  # newest first


def history(where: StoreLike = None, limit: int = 20, kind: str | None = None) -> History:
    """The recorded runs, newest first: at most ``limit``, only ``kind`` when given."""
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, not {limit}")
    limit = min(limit, guard.MAX_ID)  # more than any store holds: SQLite's own bound
    with existing(where, file_only=False) as store:
        runs = () if store is None else tuple(store.list_runs(limit=limit, kind=kind))
    return History(db_label(where), runs)


@dataclass(frozen=True)
class StoredRun:
    run: RunRecord
    findings: tuple[Finding, ...]
    results: tuple[Result, ...]


def show(where: StoreLike, run_id: int) -> StoredRun:
    """One run with its findings and results; UsageError when it is not stored."""
    with existing(where, file_only=False) as store:
        if store is None:
            raise UsageError(f"no run {run_id} in {db_label(where)}; see gpuscout history")
        return StoredRun(
            store.get_run(run_id), tuple(store.findings(run_id)), tuple(store.results(run_id))
        )


# -- compare -----------------------------------------------------------------------------


def compare(where: StoreLike, run_a: int, run_b: int) -> Comparison:
    """Two runs side by side: each figure both measured, B/A, and what differs."""
    with _required(where) as store:
        return compare_runs(store, run_a, run_b)


# -- report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportOptions:
    """``run_ids`` None: the newest runs that make a full picture. ``output``: the file
    (default gpuscout-report.FORMAT), or "-" for the text alone, written nowhere.
    ``fmt``: html (charts included), md or json."""

    run_ids: tuple[int, ...] | None = None
    output: Path | str | None = None
    fmt: str = "html"


@dataclass(frozen=True)
class ReportOutcome:
    report: reporting.Report
    path: Path | None  # None with output "-"
    text: str | None  # the rendered report with output "-", else None
    unavailable: Mapping[str, str]  # section -> why it could not be computed

    @property
    def run_ids(self) -> list[int]:
        return [r.id for r in self.report.runs]


def report(where: StoreLike = None, options: ReportOptions | None = None) -> ReportOutcome:
    """The report of stored runs: machine, ceilings, CPU vs GPU, roofline, predictions,
    fit and cost; written to ``options.output``."""
    opts = options or ReportOptions()
    if opts.fmt not in reporting.FORMATS:
        raise UsageError(
            f"unknown format {opts.fmt!r}", f"use one of {', '.join(reporting.FORMATS)}"
        )
    target = None if str(opts.output) == "-" else _report_file(opts.output, opts.fmt)
    with _required(where) as store:
        rep = reporting.build_report(store, list(opts.run_ids) if opts.run_ids else None)
    missing = _unavailable(rep)
    if target is None:
        return ReportOutcome(rep, None, reporting.render(rep, opts.fmt), missing)
    if target.exists() and not target.is_file():
        _write_through(target, reporting.render(rep, opts.fmt))
        return ReportOutcome(rep, target, None, missing)
    return ReportOutcome(rep, reporting.write_report(rep, target, opts.fmt), None, missing)


def _report_file(output: Path | str | None, fmt: str) -> Path:
    """Where the report goes: ``output``, or gpuscout-report.FORMAT; UsageError for a folder."""
    default = f"gpuscout-report.{fmt}"
    if output is None:
        return Path(default)
    path = Path(output).expanduser()
    if path.name in ("", ".", "..") or path.is_dir():
        raise UsageError(
            f"{output} is a folder, not a file for the report",
            f"name the file, e.g. -o {path / default}",
        )
    return path


def _write_through(device: Path, text: str) -> None:
    """Write into ``device`` (/dev/null, /dev/stdout, a pipe) as it is: the report's
    usual write-then-rename would put a plain file in its place."""
    try:
        with device.open("w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write the report to {device}: {exc.strerror or exc}") from exc


def _unavailable(report: reporting.Report) -> dict[str, str]:
    """Section name -> why it could not be computed."""
    sections = {f.name: getattr(report, f.name) for f in fields(report)}
    return {name: s.reason for name, s in sections.items() if isinstance(s, reporting.Unavailable)}


# -- export and import -------------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    document: Mapping[str, Any]  # what `import` reads
    text: str  # the document as JSON
    path: Path | None  # where it was written; None with output None or "-"
    run_ids: tuple[int, ...]


def export(
    where: StoreLike = None,
    run_ids: Sequence[int] | None = None,
    output: Path | str | None = None,
) -> Exported:
    """Runs as one JSON document (every run when ``run_ids`` is None), written to
    ``output`` unless that is None or "-"."""
    with _required(where) as store:
        doc = store.export_runs(list(run_ids) if run_ids else None)
    if not doc["runs"]:
        raise UsageError("no runs to export", "run `gpuscout run` first")
    text = json.dumps(doc, indent=2) + "\n"
    ids = tuple(r["id"] for r in doc["runs"])
    if output is None or str(output) == "-":
        return Exported(doc, text, None, ids)
    path = Path(output).expanduser()
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return Exported(doc, text, path, ids)


def import_file(where: StoreLike, file: Path | str, stdin: TextIO | None = None) -> Imported:
    """Add the runs of an export file ("-": ``stdin``, default sys.stdin), checked field
    by field and never executed: the new ids, and the runs the store already held."""
    doc = read_export(file, stdin)
    with opened(where) as store:
        return store.import_document(doc)


def import_runs(where: StoreLike, file: Path | str, stdin: TextIO | None = None) -> tuple[int, ...]:
    """``import_file``, the new ids alone."""
    return import_file(where, file, stdin).new_ids


# -- delete ------------------------------------------------------------------------------


def delete_runs(where: StoreLike, run_ids: Sequence[int]) -> tuple[int, ...]:
    """Delete these runs with their results and findings, all or none (an id that is not
    stored is a UsageError and nothing goes); the ids deleted."""
    with _required(where) as store:
        return tuple(store.delete_runs(run_ids))
