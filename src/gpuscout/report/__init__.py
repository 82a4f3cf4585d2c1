"""Rendering: the doctor's terminal output, and the report as HTML, Markdown or JSON.

    >>> from gpuscout.store import Store
    >>> from gpuscout.report import build_report, render
    >>> with Store.open(None) as store:
    ...     page = render(build_report(store), "html")

Importing this package imports neither matplotlib nor the predict and fit packages:
each is loaded when the section that needs it is computed.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from gpuscout._types import to_jsonable
from gpuscout.errors import UsageError
from gpuscout.report.document import Report, Unavailable
from gpuscout.report.gather import build_report, select_runs

FORMATS = ("html", "md", "json")

__all__ = [
    "FORMATS",
    "Report",
    "Unavailable",
    "build_report",
    "default_report_path",
    "render",
    "select_runs",
    "write_report",
]


def render(report: Report, fmt: str = "html") -> str:
    """The report as text in one of FORMATS."""
    if fmt == "html":
        from gpuscout.report.html import render_html

        return render_html(report)
    if fmt == "md":
        from gpuscout.report.markdown import render_markdown

        return render_markdown(report)
    if fmt == "json":
        return json.dumps(to_jsonable(report), indent=2) + "\n"
    raise UsageError(f"unknown report format {fmt!r}", f"use one of {', '.join(FORMATS)}")


def default_report_path(db: Path | str | None, run_id: int) -> Path:
    """reports/run-ID.html beside the database (the data directory for an in-memory one)."""
    from gpuscout.store import default_data_dir, resolve_db_path

    resolved = resolve_db_path(db)
    base = resolved.parent if isinstance(resolved, Path) else default_data_dir()
    return base / "reports" / f"run-{run_id}.html"


def write_report(report: Report, path: Path | str, fmt: str = "html") -> Path:
    """Render and write atomically (a reader never sees half a file); returns the path."""
    target = Path(path).expanduser()
    text = render(report, fmt)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        with contextlib.suppress(OSError):  # a failed replace (onto a folder) leaves it
            tmp.unlink()
        raise UsageError(f"cannot write the report to {target}: {exc.strerror or exc}") from exc
    return target
