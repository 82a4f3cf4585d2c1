"""What may enter the store: one set of rules for every write and every import, so that
whatever is stored reads back, renders and computes.

The rules: numbers finite and in physical ranges (a figure measured "ok" is positive and
below ``MAX_FIGURE``; a fraction of a ceiling below ``MAX_FRACTION``; seconds below
``MAX_SECONDS``); text without control characters (a newline or a tab only where the
field is prose) and without lone surrogates (they cannot be encoded, so SQLite and every
terminal refuse them); JSON nested at most ``MAX_DEPTH`` deep; run ids in SQLite's range.

Two ways to apply them. ``problems_*`` list what breaks a rule, each with where it is:
an import refuses such a document (it came from outside). ``clean_*`` return a value that
obeys them: gpuscout's own writes go through it, so a result is never lost for a NaN in
its ``extra`` (the bad value becomes ``None``, a figure out of range makes the result
"failed" with the reason), and old rows written before the rules are mended the same way.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from gpuscout._types import Finding, Result, Stats
from gpuscout.errors import UsageError

MAX_FIGURE = 1e12  # above any throughput, bandwidth or latency a machine reports
MAX_FRACTION = 1e3  # of a ceiling: "above-peak" is a few percent, never 1000x
MAX_SECONDS = 1e9  # 30 years
MAX_SAMPLES = 2**31 - 1
MAX_TEXT = 100_000  # characters in one field: a traceback fits, a megabyte does not
MAX_DEPTH = 32
MAX_ID = 2**63 - 1  # SQLite's INTEGER

# C0 and C1 controls and DEL; prose fields keep \t and \n.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NAME_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def run_id(value: Any) -> int:
    """A run id a user typed, or UsageError: an int in 1 .. 2^63 - 1."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"a run id is a whole number, not {value!r}") from None
    if not 1 <= number <= MAX_ID:
        raise UsageError(f"no run {number}: run ids go from 1 to {MAX_ID}", "see gpuscout history")
    return number


# -- single values --------------------------------------------------------------------------


def text_problem(value: str, *, prose: bool = False) -> str | None:
    """Why ``value`` cannot be stored as text, or None."""
    if len(value) > MAX_TEXT:
        return f"longer than {MAX_TEXT:,} characters"
    if _SURROGATE.search(value):
        return "holds a lone surrogate (not valid Unicode text)"
    if (_CONTROL if prose else _NAME_CONTROL).search(value):
        return "holds control characters"
    return None


def clean_text(value: str, *, prose: bool = False) -> str:
    """``value`` made storable: controls dropped, lone surrogates replaced, cut to size."""
    if not isinstance(value, str):  # not text at all: the database's constraints refuse it
        return value
    value = _SURROGATE.sub("\ufffd", value)
    value = (_CONTROL if prose else _NAME_CONTROL).sub("", value)
    return value[:MAX_TEXT]


def number_problem(value: Any, low: float, high: float) -> str | None:
    """Why ``value`` is not a finite number in [low, high], or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a number, got {type(value).__name__}"
    try:
        number = float(value)
    except OverflowError:
        return "too large to be a number of this kind"
    if not math.isfinite(number):
        return f"not a finite number ({number})"
    if not low <= number <= high:
        return f"{number:g} is outside {low:g} .. {high:g}"
    return None


def json_problems(value: Any, where: str, depth: int = 0) -> Iterator[str]:
    """What breaks the rules inside a JSON value (``extra``, ``summary``, a fingerprint)."""
    if depth > MAX_DEPTH:
        yield f"{where}: nested more than {MAX_DEPTH} deep"
    elif isinstance(value, str):
        if why := text_problem(value, prose=True):
            yield f"{where}: {why}"
    elif isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
        if why := number_problem(value, -math.inf, math.inf):
            yield f"{where}: {why}"
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from json_problems(item, f"{where}[{i}]", depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or text_problem(key):
                yield f"{where}: a key that is not clean text ({key!r:.40})"
            else:
                yield from json_problems(item, f"{where}.{key}", depth + 1)


def clean_json(value: Any, depth: int = 0) -> Any:
    """A JSON value made storable: non-finite numbers become null, text is cleaned, what
    nests too deep is dropped (as null)."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(value, str):
        return clean_text(value, prose=True)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return value if number_problem(value, -math.inf, math.inf) is None else None
    if isinstance(value, (list, tuple)):
        return [clean_json(v, depth + 1) for v in value]
    if isinstance(value, Mapping):
        return {clean_text(str(k)): clean_json(v, depth + 1) for k, v in value.items()}
    item = getattr(value, "item", None)  # a numpy or torch scalar: its Python number
    if callable(item):
        return clean_json(item(), depth)
    return value  # anything else is the encoder's to refuse, where it is written


# -- records -------------------------------------------------------------------------------

_STAT_SECONDS = ("median_s", "mean_s", "min_s", "max_s", "p10_s", "p90_s", "iqr_s")


def stats_problems(stats: Stats, where: str) -> list[str]:
    out = [
        f"{where}.{name}: {why}"
        for name in _STAT_SECONDS
        if (why := number_problem(getattr(stats, name), 0.0, MAX_SECONDS))
    ]
    if why := number_problem(stats.cv, 0.0, MAX_FRACTION):
        out.append(f"{where}.cv: {why}")
    if why := number_problem(stats.n, 0, MAX_SAMPLES):
        out.append(f"{where}.n: {why}")
    return out


def _figure_problem(result: Result) -> str | None:
    if result.figure is None:
        return "a result measured ok needs a figure" if result.status == "ok" else None
    low = math.ulp(0.0) if result.status == "ok" else 0.0  # an ok figure is positive
    return number_problem(result.figure, low, MAX_FIGURE)


def result_problems(result: Result, where: str) -> list[str]:
    """Every rule ``result`` breaks, each with where."""
    out = [
        f"{where}.{field}: {why}"
        for field, value, prose in (
            ("name", result.name, False),
            ("device", result.device, False),
            ("unit", result.unit, False),
            ("status", result.status, False),
            ("error", result.error or "", True),
        )
        if (why := text_problem(value, prose=prose))
    ]
    if why := _figure_problem(result):
        out.append(f"{where}.figure: {why}")
    if result.peak_fraction is not None and (
        why := number_problem(result.peak_fraction, 0.0, MAX_FRACTION)
    ):
        out.append(f"{where}.peak_fraction: {why}")
    if result.stats is not None:
        out += stats_problems(result.stats, f"{where}.stats")
    out += json_problems(dict(result.extra), f"{where}.extra")
    return out


def clean_result(result: Result) -> Result:
    """``result`` as it may be stored. Nothing measured is dropped: a figure that breaks
    the rules turns the result into a failure that says why, bad stats are left out."""
    error = clean_text(result.error, prose=True) if result.error is not None else None
    status, figure, fraction = result.status, result.figure, result.peak_fraction
    if why := _figure_problem(result):
        status, error = "failed", f"figure not stored: {why}"
        figure, fraction = None, None
    if fraction is not None and number_problem(fraction, 0.0, MAX_FRACTION):
        fraction = None
    stats = result.stats
    if stats is not None and stats_problems(stats, "stats"):
        stats = None
    return dataclasses.replace(
        result,
        name=clean_text(result.name),
        device=clean_text(result.device),
        unit=clean_text(result.unit),
        status=clean_text(status),
        figure=None if figure is None else float(figure),
        peak_fraction=fraction,
        stats=stats,
        error=error,
        extra=clean_json(dict(result.extra)),
    )


def finding_problems(finding: Finding, where: str) -> list[str]:
    fields = (
        ("id", finding.id, False),
        ("summary", finding.summary, True),
        ("detail", finding.detail, True),
        ("fix", finding.fix, True),
        ("subject", finding.subject, False),
    )
    return [
        f"{where}.{name}: {why}"
        for name, value, prose in fields
        if (why := text_problem(value, prose=prose))
    ]


def clean_finding(finding: Finding) -> Finding:
    return dataclasses.replace(
        finding,
        id=clean_text(finding.id),
        summary=clean_text(finding.summary, prose=True),
        detail=clean_text(finding.detail, prose=True),
        fix=clean_text(finding.fix, prose=True),
        subject=clean_text(finding.subject),
    )
