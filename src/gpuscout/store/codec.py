"""Records to rows and back. JSON columns hold plain JSON, never pickles."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sqlite3
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from gpuscout._types import Finding, Result, RunRecord, Stats, Status, to_jsonable
from gpuscout.store import guard

STATS_FIELDS = tuple(f.name for f in dataclasses.fields(Stats))


def utc_now() -> str:
    """ISO 8601 in UTC, to the second: sortable as text and readable in a table."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _scalar(obj: Any) -> Any:
    # numpy and torch scalars reach ``extra`` easily; ``.item()`` gives the Python
    # number. Anything else is a caller's bug and should fail where it is written.
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"cannot store a {type(obj).__name__} as JSON: {obj!r}")


def dumps(obj: Any) -> str:
    # allow_nan=False: strict JSON only (a NaN that got past the guard fails here, where
    # it is written, instead of making the row unreadable later).
    return json.dumps(to_jsonable(obj), separators=(",", ":"), default=_scalar, allow_nan=False)


def loads_object(text: str | None) -> dict[str, Any]:
    """A stored JSON object; {} for anything else, so a damaged cell costs its contents
    and not the command that reads it."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _real(value: float | None) -> float | None:
    # SQLite stores NaN as NULL anyway; say so explicitly rather than rely on it.
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def stats_or_none(text: str | None) -> Stats | None:
    """The stored stats, or None where a row written before the store's rules holds
    something that is not a whole set of numbers (it must still read back)."""
    if not text:
        return None
    try:
        data = json.loads(text)
        return stats_from_mapping(data) if isinstance(data, dict) else None
    except (ValueError, TypeError, KeyError):
        return None


def stats_from_mapping(data: Mapping[str, Any]) -> Stats:
    return Stats(
        n=int(data["n"]),
        median_s=float(data["median_s"]),
        mean_s=float(data["mean_s"]),
        min_s=float(data["min_s"]),
        max_s=float(data["max_s"]),
        p10_s=float(data["p10_s"]),
        p90_s=float(data["p90_s"]),
        iqr_s=float(data["iqr_s"]),
        cv=float(data["cv"]),
        noisy=bool(data["noisy"]),
    )


def result_values(run_id: int, result: Result, created_at: str) -> tuple[Any, ...]:
    """The parameters for ``INSERT_RESULT``, in its column order, the result made
    storable first (store/guard.py)."""
    result = guard.clean_result(result)
    return (
        run_id,
        result.name,
        result.device,
        _real(result.figure),
        result.unit,
        result.status,
        None if result.stats is None else dumps(result.stats),
        _real(result.peak_fraction),
        result.error,
        dumps(dict(result.extra)),
        created_at,
    )


INSERT_RESULT = (
    "INSERT INTO results (run_id, name, device, figure, unit, status, stats,"
    " peak_fraction, error, extra, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
RESULT_COLUMNS = "name, device, figure, unit, status, stats, peak_fraction, error, extra"


def row_to_result(row: sqlite3.Row) -> Result:
    return Result(
        name=row["name"],
        device=row["device"],
        figure=row["figure"],
        unit=row["unit"],
        status=row["status"],
        stats=stats_or_none(row["stats"]),
        peak_fraction=row["peak_fraction"],
        error=row["error"],
        extra=loads_object(row["extra"]),
    )


def finding_values(run_id: int, finding: Finding) -> tuple[Any, ...]:
    finding = guard.clean_finding(finding)
    return (
        run_id,
        finding.id,
        Status(finding.status).value,
        finding.summary,
        finding.detail,
        finding.fix,
        finding.subject,
    )


INSERT_FINDING = (
    "INSERT INTO findings (run_id, check_id, status, summary, detail, fix, subject)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
FINDING_COLUMNS = "check_id, status, summary, detail, fix, subject"


def row_to_finding(row: sqlite3.Row) -> Finding:
    return Finding(
        id=row["check_id"],
        status=Status(row["status"]),
        summary=row["summary"],
        detail=row["detail"],
        fix=row["fix"],
        subject=row["subject"],
    )


INSERT_RUN = (
    "INSERT INTO runs (kind, started_at, finished_at, status, fingerprint, summary,"
    " gpuscout_version, host, identity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
RUN_COLUMNS = "id, kind, started_at, finished_at, status, fingerprint, summary"


def run_values(
    kind: str,
    started_at: str,
    finished_at: str | None,
    status: str,
    fingerprint: Mapping[str, Any],
    summary: Mapping[str, Any],
    default_version: str,
    identity: str | None = None,
) -> tuple[Any, ...]:
    # version and host are copied out of the fingerprint into columns so that
    # `history` can filter and sort on them without parsing JSON.
    fingerprint = guard.clean_json(dict(fingerprint))
    version = fingerprint.get("gpuscout_version")
    host = fingerprint.get("host")
    return (
        guard.clean_text(kind),
        started_at,
        finished_at,
        status,
        dumps(fingerprint),
        dumps(guard.clean_json(dict(summary))),
        version if isinstance(version, str) else default_version,
        host if isinstance(host, str) else "",
        identity,
    )


def row_to_run(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=int(row["id"]),
        kind=row["kind"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        status=row["status"],
        fingerprint=loads_object(row["fingerprint"]),
        summary=loads_object(row["summary"]),
    )


def identity(
    kind: str,
    started_at: str,
    fingerprint: Mapping[str, Any],
    results: list[Result],
    findings: list[Finding],
) -> str:
    """What makes a run the same run wherever it is stored: the machine it ran on, when
    it started, and what it measured and found. A run exported and imported again has
    the same identity, so a second import is recognised (ids and write times are not
    part of it: the importing store renumbers)."""
    content = {
        "kind": kind,
        "started_at": started_at,
        "host": fingerprint.get("host"),
        "results": [_result_key(r) for r in results],
        "findings": [[f.id, Status(f.status).value, f.summary] for f in findings],
    }
    text = json.dumps(to_jsonable(content), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _result_key(r: Result) -> list[Any]:
    figure = None if r.figure is None else float(r.figure)  # 5 and 5.0: one figure
    return [r.name, r.device, figure, r.unit, r.status, r.error]


def identity_of_stored(conn: sqlite3.Connection, run: RunRecord) -> str:
    """The identity of a run as it is stored (its results and findings read back)."""
    results = [
        row_to_result(r)
        for r in conn.execute(
            f"SELECT {RESULT_COLUMNS} FROM results WHERE run_id = ? ORDER BY id", (run.id,)
        )
    ]
    findings = [
        row_to_finding(f)
        for f in conn.execute(
            f"SELECT {FINDING_COLUMNS} FROM findings WHERE run_id = ? ORDER BY id", (run.id,)
        )
    ]
    return identity(run.kind, run.started_at, run.fingerprint, results, findings)
