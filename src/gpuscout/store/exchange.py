"""Runs as a JSON document, and the strict reader for such documents.

An imported document comes from outside (another machine, a colleague, an edited
file), so it is checked field by field against the schema below before anything is
written: plain JSON types only, no unknown keys, every error naming where it is.
Nothing is ever evaluated or unpickled.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

from gpuscout._types import Finding, Result, RunRecord, Stats, Status, to_jsonable
from gpuscout.errors import UsageError
from gpuscout.store import guard
from gpuscout.store.codec import STATS_FIELDS, utc_now
from gpuscout.store.schema import RUN_STATUSES

FORMAT = "gpuscout-runs"
EXPORT_VERSION = 1
_MAX_DEPTH = 64
# An export of a few thousand runs is a few MB; past this, reading and checking it would
# hold hundreds of MB (a 225 MB file once took 169 s and 911 MB): split it instead.
MAX_IMPORT_BYTES = 64 * 2**20

RUN_KEYS = (
    "id", "kind", "started_at", "finished_at", "status", "fingerprint", "summary",
    "results", "findings",
)  # fmt: skip
RESULT_KEYS = (
    "name", "device", "figure", "unit", "status", "stats", "peak_fraction", "error",
    "extra", "created_at",
)  # fmt: skip
FINDING_KEYS = ("id", "status", "summary", "detail", "fix", "subject")


@dataclass(frozen=True)
class ParsedRun:
    record: RunRecord  # id is 0: the store gives a new one
    results: list[tuple[Result, str]]
    findings: list[Finding]


def build_document(
    runs: Sequence[tuple[RunRecord, Sequence[tuple[Result, str]], Sequence[Finding]]],
    gpuscout_version: str,
) -> dict[str, Any]:
    out = []
    for record, results, findings in runs:
        run = to_jsonable(record)
        run["results"] = [{**to_jsonable(r), "created_at": t} for r, t in results]
        run["findings"] = [to_jsonable(f) for f in findings]
        out.append(run)
    return {
        "format": FORMAT,
        "schema_version": EXPORT_VERSION,
        "gpuscout_version": gpuscout_version,
        "exported_at": utc_now(),
        "runs": out,
    }


def _bad(where: str, what: str) -> NoReturn:
    raise UsageError(f"not a valid gpuscout export: {where}: {what}")


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _object(
    value: Any, where: str, required: Sequence[str], optional: Sequence[str] = ()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        _bad(where, f"expected an object, got {_describe(value)}")
    missing = [k for k in required if k not in value]
    if missing:
        _bad(where, f"missing {', '.join(missing)}")
    unknown = sorted(str(k) for k in value if k not in required and k not in optional)
    if unknown:
        _bad(where, f"unknown field {', '.join(unknown)}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        _bad(where, f"expected a string, got {_describe(value)}")
    return value


def _name(value: Any, where: str) -> str:
    if not _str(value, where).strip():
        _bad(where, "must not be empty")
    return str(value)


def _opt_str(value: Any, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _bad(where, f"expected an integer, got {_describe(value)}")
    return value


def _number(value: Any, where: str) -> float:
    if why := guard.number_problem(value, -math.inf, math.inf):
        _bad(where, why)
    return float(value)


def _opt_number(value: Any, where: str) -> float | None:
    return None if value is None else _number(value, where)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        _bad(where, f"expected true or false, got {_describe(value)}")
    return value


def _time(value: Any, where: str) -> str:
    text = _str(value, where)
    try:
        datetime.fromisoformat(text)
    except ValueError:
        _bad(where, f"expected an ISO 8601 time, got {_describe(text)}")
    return text


def _opt_time(value: Any, where: str) -> str | None:
    return None if value is None else _time(value, where)


def _choice(choices: Sequence[str]) -> Callable[[Any, str], str]:
    def check(value: Any, where: str) -> str:
        if value not in choices:
            _bad(where, f"expected one of {', '.join(choices)}, got {_describe(value)}")
        return str(value)

    return check


def _json(value: Any, where: str, depth: int = 0) -> Any:
    """A plain JSON value: objects with string keys, arrays, strings, numbers, bools, null."""
    if depth > _MAX_DEPTH:
        _bad(where, "nested too deeply")
    # float includes NaN and infinities: Python's json reads and writes them, and a
    # round trip through export and import must not lose a stored value.
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, list):
        return [_json(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                _bad(where, f"object keys must be strings, got {_describe(key)}")
        return {k: _json(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
    _bad(where, f"not a JSON value: {type(value).__name__}")


def _json_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _bad(where, f"expected an object, got {_describe(value)}")
    result: dict[str, Any] = _json(value, where)
    _refuse(guard.json_problems(result, where))
    return result


def _refuse(problems: Iterable[str]) -> None:
    """The first rule a value from outside breaks, as the import's one line."""
    first = next(iter(problems), None)
    if first is not None:
        where, _, what = first.partition(": ")
        _bad(where, what)


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        _bad(where, f"expected a list, got {_describe(value)}")
    return value


def _stats(value: Any, where: str) -> Stats | None:
    if value is None:
        return None
    data = _object(value, where, STATS_FIELDS)
    numbers = {k: _number(data[k], f"{where}.{k}") for k in STATS_FIELDS if k not in ("n", "noisy")}
    n = _int(data["n"], f"{where}.n")
    if n < 0:
        _bad(f"{where}.n", f"must not be negative, got {n}")
    return Stats(n=n, noisy=_bool(data["noisy"], f"{where}.noisy"), **numbers)


def _result(value: Any, where: str) -> tuple[Result, str]:
    data = _object(value, where, RESULT_KEYS[:-1], optional=("created_at",))
    result = Result(
        name=_name(data["name"], f"{where}.name"),
        device=_name(data["device"], f"{where}.device"),
        figure=_opt_number(data["figure"], f"{where}.figure"),
        unit=_str(data["unit"], f"{where}.unit"),
        status=_name(data["status"], f"{where}.status"),
        stats=_stats(data["stats"], f"{where}.stats"),
        peak_fraction=_opt_number(data["peak_fraction"], f"{where}.peak_fraction"),
        error=_opt_str(data["error"], f"{where}.error"),
        extra=_json_object(data["extra"], f"{where}.extra"),
    )
    _refuse(guard.result_problems(result, where))
    created = data.get("created_at")
    return result, utc_now() if created is None else _time(created, f"{where}.created_at")


def _finding(value: Any, where: str) -> Finding:
    data = _object(value, where, FINDING_KEYS[:3], optional=FINDING_KEYS[3:])
    status = _choice([s.value for s in Status])(data["status"], f"{where}.status")
    finding = Finding(
        id=_name(data["id"], f"{where}.id"),
        status=Status(status),
        summary=_str(data["summary"], f"{where}.summary"),
        detail=_str(data.get("detail", ""), f"{where}.detail"),
        fix=_str(data.get("fix", ""), f"{where}.fix"),
        subject=_str(data.get("subject", ""), f"{where}.subject"),
    )
    _refuse(guard.finding_problems(finding, where))
    return finding


def _run(value: Any, where: str) -> ParsedRun:
    data = _object(value, where, RUN_KEYS[1:], optional=("id",))
    if "id" in data:
        _int(data["id"], f"{where}.id")  # informational: the importing store renumbers
    kind = _name(data["kind"], f"{where}.kind")
    if why := guard.text_problem(kind):
        _bad(f"{where}.kind", why)
    record = RunRecord(
        id=0,
        kind=kind,
        started_at=_time(data["started_at"], f"{where}.started_at"),
        finished_at=_opt_time(data["finished_at"], f"{where}.finished_at"),
        status=_choice(RUN_STATUSES)(data["status"], f"{where}.status"),
        fingerprint=_json_object(data["fingerprint"], f"{where}.fingerprint"),
        summary=_json_object(data["summary"], f"{where}.summary"),
    )
    results = [
        _result(r, f"{where}.results[{i}]")
        for i, r in enumerate(_list(data["results"], f"{where}.results"))
    ]
    findings = [
        _finding(f, f"{where}.findings[{i}]")
        for i, f in enumerate(_list(data["findings"], f"{where}.findings"))
    ]
    return ParsedRun(record, results, findings)


def parse_document(doc: Any) -> list[ParsedRun]:
    """Check a whole export document; UsageError naming the first bad field."""
    data = _object(
        doc, "document", ("format", "schema_version", "runs"), ("gpuscout_version", "exported_at")
    )
    if data["format"] != FORMAT:
        _bad("format", f"expected {FORMAT!r}, got {_describe(data['format'])}")
    version = _int(data["schema_version"], "schema_version")
    if version > EXPORT_VERSION:
        raise UsageError(
            f"the export has schema {version}, newer than this gpuscout reads "
            f"({EXPORT_VERSION}); upgrade gpuscout to import it"
        )
    if version < 1:
        _bad("schema_version", f"expected 1..{EXPORT_VERSION}, got {version}")
    _opt_str(data.get("gpuscout_version"), "gpuscout_version")
    _opt_str(data.get("exported_at"), "exported_at")
    runs = _list(data["runs"], "runs")
    return [_run(r, f"runs[{i}]") for i, r in enumerate(runs)]


def read_export(file: str | Path, stdin: TextIO | None = None) -> Any:
    """The JSON document of an export file (``"-"``: ``stdin``), strictly: at most
    ``MAX_IMPORT_BYTES``, UTF-8, JSON without NaN or Infinity. UsageError otherwise."""
    name = str(file)
    text = _read_text(name, stdin)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            "give a file written by `gpuscout export`",
        ) from None
    except ValueError as exc:  # a NaN or Infinity token
        raise UsageError(f"{name} is not a valid gpuscout export: {exc}") from None
    except RecursionError:
        raise UsageError(f"{name} is nested too deeply to be a gpuscout export") from None


def _no_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def _read_text(name: str, stdin: TextIO | None) -> str:
    # One line, the way out included: a file this size is no typo, its owner wants it in.
    too_big = UsageError(
        f"{name} is larger than the {MAX_IMPORT_BYTES // 2**20} MiB an import reads; "
        "export fewer runs at a time (gpuscout export RUN_ID ... -o part.json)"
    )
    try:
        if name == "-":
            text = (stdin or sys.stdin).read(MAX_IMPORT_BYTES + 1)
            if len(text.encode("utf-8", "surrogatepass")) > MAX_IMPORT_BYTES:
                raise too_big
            return text
        path = Path(name).expanduser()
        if path.is_dir():
            raise UsageError(f"{name} is a directory, not an export file")
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise too_big
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"no such file: {name}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{name} is not a text file: not a gpuscout export") from None
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
