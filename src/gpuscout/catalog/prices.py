"""Prices a user can trust and change: street prices (new and used), cloud offers
(on-demand and spot, with their billing), and free tiers, each with its date and source.

Three places give prices, the first that has a record for a (gpu, kind, provider) wins:

    1. overrides    ``parse_price_override("rtx-3090:used=650")``, from the command line
    2. user file    ``<data dir>/prices.toml`` (same schema as the shipped file)
    3. shipped      ``prices.toml`` in this package

Every record says which one it came from (``origin``). A price seen more than
``STALE_DAYS`` days before ``today`` is stale and ``stale_warning`` says so. Rows are
checked field by field; a bad one raises an error naming the file, the row and the field
(CatalogError for the shipped file, a bug; UsageError for the user's own files).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import io
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from gpuscout.errors import CatalogError, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

PRICES_FILE: Final = "prices.toml"
USER_FILE: Final = "prices.toml"  # in the user's data directory
STALE_DAYS: Final = 90

STREET_KINDS: Final = ("new", "used")
CLOUD_KINDS: Final = ("on-demand", "spot")
KINDS: Final = (*STREET_KINDS, *CLOUD_KINDS, "free")
BILLING: Final = ("second", "minute", "hour")
ORIGINS: Final = ("override", "user", "shipped")

_ID_RE: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_DATE_RE: Final = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])(?:-(0[1-9]|[12]\d|3[01]))?$")
_URL_RE: Final = re.compile(r"^https?://\S+$")
_SHIPPED_HINT: Final = "the price data shipped with gpuscout is broken; please report this bug"
_USER_HINT: Final = "fix that field and try again; nothing was changed"


@dataclass(frozen=True)
class PriceRecord:
    """One price seen on one day. ``usd`` is USD per card for a street price (kind
    "new" or "used") and USD per GPU-hour for a cloud offer or a free tier (0)."""

    gpu_id: str
    kind: str  # one of KINDS
    usd: float
    date_seen: str  # "YYYY-MM-DD" or "YYYY-MM"
    source: str
    provider: str = ""  # who sells the hours; "" for a street price
    sku: str = ""
    gpus: int = 1  # GPUs in the SKU; usd is the SKU price divided by this
    usd_high: float | None = None  # top of a quoted range; usd is its bottom
    billing: str | None = None  # one of BILLING; None where the source does not say
    min_billing_s: float | None = None  # shortest time billed, in seconds
    billing_source: str = ""  # where billing and min_billing_s come from, if elsewhere
    quota: str = ""  # a free tier's quota in its provider's words
    quota_hours_per_week: float | None = None
    note: str = ""
    origin: str = "shipped"  # one of ORIGINS

    @property
    def key(self) -> tuple[str, str, str]:
        """What a record of a higher origin replaces: (gpu_id, kind, provider); street
        prices have one record per card and kind, whoever sells it."""
        return (self.gpu_id, self.kind, "" if self.kind in STREET_KINDS else self.provider)

    @property
    def is_street(self) -> bool:
        return self.kind in STREET_KINDS

    @property
    def is_cloud(self) -> bool:
        return self.kind in CLOUD_KINDS

    @property
    def is_free(self) -> bool:
        return self.kind == "free"

    def age_days(self, today: dt.date | None = None) -> int:
        """Days from the day seen (the 1st where only a month is known) to ``today``."""
        return ((today or dt.date.today()) - seen_date(self.date_seen)).days

    def is_stale(self, today: dt.date | None = None) -> bool:
        return self.age_days(today) > STALE_DAYS

    def stale_warning(self, today: dt.date | None = None) -> str | None:
        """A one-line warning when the price is older than STALE_DAYS days, else None."""
        age = self.age_days(today)
        if age <= STALE_DAYS:
            return None
        what = f"{self.gpu_id} {self.kind}" + (f" at {self.provider}" if self.provider else "")
        return (
            f"the {what} price (${self.usd:g}) was seen on {self.date_seen}, {age} days ago "
            f"(over {STALE_DAYS}): check it, or give your own "
            "(--price, or `gpuscout prices import FILE`)"
        )


def seen_date(text: str) -> dt.date:
    """``"2026-05-07"`` -> that day; ``"2026-05"`` -> 2026-05-01 (the oldest it can be)."""
    m = _DATE_RE.match(text)
    if m is None:
        raise ValueError(f"not a date: {text!r}")
    return dt.date(int(m[1]), int(m[2]), int(m[3] or 1))


# ---- validation ------------------------------------------------------------------------


class _Invalid(ValueError):
    """A value that is not of its kind; the message says what it must be."""


def _str(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _Invalid("a non-empty string")
    return raw.strip()


def _text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise _Invalid("a string")
    return raw.strip()


def _matching(pattern: re.Pattern[str], expected: str) -> Callable[[Any], str]:
    def read(raw: Any) -> str:
        if not isinstance(raw, str) or not pattern.match(raw.strip()):
            raise _Invalid(expected)
        return raw.strip()

    return read


def _one_of(choices: Sequence[str]) -> Callable[[Any], str]:
    def read(raw: Any) -> str:
        if not isinstance(raw, str) or raw.strip().lower() not in choices:
            raise _Invalid(f"one of {', '.join(choices)}")
        return raw.strip().lower()

    return read


def _number(low: float, high: float, integer: bool = False) -> Callable[[Any], float]:
    def read(raw: Any) -> float:
        if isinstance(raw, str):  # CSV cells are text
            raw = _parse_number(raw)
        ok_type = isinstance(raw, int) if integer else isinstance(raw, (int, float))
        if isinstance(raw, bool) or not ok_type or not math.isfinite(raw):
            raise _Invalid("an integer" if integer else "a number")
        if not low <= raw <= high:
            raise _Invalid(f"between {low:g} and {high:g}")
        return int(raw) if integer else float(raw)

    return read


def _parse_number(text: str) -> Any:
    text = text.strip().replace(",", "").removeprefix("$")
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _date(raw: Any) -> str:
    text = _matching(_DATE_RE, "a date as YYYY-MM-DD or YYYY-MM")(raw)
    try:
        seen_date(text)
    except ValueError:  # 2026-02-30
        raise _Invalid("a real date as YYYY-MM-DD or YYYY-MM") from None
    return text


# field -> (reader, required). usd's range is checked per kind in _record.
_FIELDS: Final[dict[str, tuple[Callable[[Any], Any], bool]]] = {
    "gpu_id": (_matching(_ID_RE, 'a catalog id such as "rtx-4090"'), True),
    "kind": (_one_of(KINDS), True),
    "usd": (_number(0, 1_000_000), True),
    "date_seen": (_date, True),
    "source": (_matching(_URL_RE, "an http(s) URL"), True),
    "provider": (_str, False),
    "sku": (_text, False),
    "gpus": (_number(1, 1024, integer=True), False),
    "usd_high": (_number(0, 1_000_000), False),
    "billing": (_one_of(BILLING), False),
    "min_billing_s": (_number(0, 31 * 24 * 3600), False),
    "billing_source": (_matching(_URL_RE, "an http(s) URL"), False),
    "quota": (_text, False),
    "quota_hours_per_week": (_number(0, 168), False),
    "note": (_text, False),
}
FIELDS: Final = tuple(_FIELDS)


class _RowError(ValueError):
    """One field of one row is wrong; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _values(row: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(row) - set(_FIELDS))
    if unknown:
        raise _RowError(unknown[0], f"unknown field(s) {unknown} (a typo?)")
    out: dict[str, Any] = {}
    for key, (read, required) in _FIELDS.items():
        raw = row.get(key)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if required:
                raise _RowError(key, f"missing required field {key!r}")
            continue
        try:
            out[key] = read(raw)
        except _Invalid as exc:
            raise _RowError(key, f"{key} must be {exc}, got {raw!r}") from None
    return out


def _record(row: Mapping[str, Any], origin: str, known_ids: Collection[str] | None) -> PriceRecord:
    v = _values(row)
    kind = v["kind"]
    if known_ids is not None and v["gpu_id"] not in known_ids:
        raise _RowError("gpu_id", f"gpu_id {v['gpu_id']!r} is not in the GPU catalog")
    if kind == "free":
        if v["usd"] != 0:
            raise _RowError("usd", f"usd must be 0 for a free tier, got {v['usd']:g}")
        if not v.get("quota"):
            raise _RowError("quota", "a free tier needs its quota (the provider's words)")
    elif kind in STREET_KINDS and not 1 <= v["usd"] <= 1_000_000:
        raise _RowError("usd", f"usd must be between 1 and 1000000 per card, got {v['usd']:g}")
    elif kind in CLOUD_KINDS and not 0.001 <= v["usd"] <= 1_000:
        raise _RowError("usd", f"usd must be between 0.001 and 1000 per GPU-hour, got {v['usd']:g}")
    if kind not in STREET_KINDS and "provider" not in v:
        raise _RowError("provider", f"a {kind} price needs the provider that sells it")
    if v.get("usd_high") is not None and v["usd_high"] < v["usd"]:
        raise _RowError("usd_high", f"usd_high ({v['usd_high']:g}) is below usd ({v['usd']:g})")
    return PriceRecord(**v, origin=origin)


def parse_rows(
    rows: Iterable[Mapping[str, Any]],
    where: str,
    origin: str = "user",
    known_ids: Collection[str] | None = None,
) -> tuple[PriceRecord, ...]:
    """Validate rows (mappings of field -> value; CSV text cells are read as numbers
    where a number is due); the first bad field raises one line naming ``where``, the
    row number and the field. Two rows for one (gpu, kind, provider) are an error."""
    hint, error = (_SHIPPED_HINT, CatalogError) if origin == "shipped" else (_USER_HINT, UsageError)
    records: list[PriceRecord] = []
    seen: dict[tuple[str, str, str], int] = {}
    for i, row in enumerate(rows, 1):
        label = f"{where} row {i} ({row.get('gpu_id', '?')!s}, {row.get('kind', '?')!s})"
        try:
            rec = _record(row, origin, known_ids)
        except _RowError as exc:
            raise error(f"{label}: {exc}", hint) from None
        if rec.key in seen:
            raise error(f"{label}: same gpu_id, kind and provider as row {seen[rec.key]}", hint)
        seen[rec.key] = i
        records.append(rec)
    return tuple(records)


def parse_toml(
    text: str, where: str, origin: str = "user", known_ids: Collection[str] | None = None
) -> tuple[PriceRecord, ...]:
    """A price file's TOML text (``[[price]]`` tables) as validated records."""
    error = CatalogError if origin == "shipped" else UsageError
    hint = _SHIPPED_HINT if origin == "shipped" else _USER_HINT
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{where} is not valid TOML: {exc}", hint) from None
    extra = sorted(set(doc) - {"price"})
    tables = doc.get("price", [])
    if extra or not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise error(f"{where}: only [[price]] tables are allowed", hint)
    return parse_rows(tables, where, origin, known_ids)


def parse_csv(
    text: str, where: str, known_ids: Collection[str] | None = None
) -> tuple[PriceRecord, ...]:
    """A CSV price list: a header row of field names, then one price per row."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "gpu_id" not in reader.fieldnames:
        raise UsageError(f"{where}: the first row must name the columns (gpu_id, kind, usd, ...)")
    rows = [{k: v for k, v in r.items() if k is not None and v not in (None, "")} for r in reader]
    return parse_rows(rows, where, "user", known_ids)


def parse_json(
    text: str, where: str, known_ids: Collection[str] | None = None
) -> tuple[PriceRecord, ...]:
    """A JSON price list: a list of objects, or ``{"price": [...]}``."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where} is not valid JSON: {exc}", _USER_HINT) from None
    rows = doc.get("price") if isinstance(doc, dict) else doc
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise UsageError(f'{where}: expected a list of price objects, or {{"price": [...]}}')
    return parse_rows(rows, where, "user", known_ids)


def read_price_list(
    path: str | Path, known_ids: Collection[str] | None = None
) -> tuple[PriceRecord, ...]:
    """A price list file by its suffix: .csv, .json or .toml."""
    p = Path(path)
    readers = {".csv": parse_csv, ".json": parse_json}
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {p}: {exc.strerror or exc}") from None
    suffix = p.suffix.lower()
    if suffix == ".toml":
        return parse_toml(text, str(p), "user", known_ids)
    if suffix not in readers:
        raise UsageError(
            f"{p}: a price list must be .csv, .json or .toml", "rename it or convert it"
        )
    return readers[suffix](text, str(p), known_ids)


# ---- the three places ------------------------------------------------------------------


def _catalog_ids() -> frozenset[str]:
    from gpuscout.catalog.loader import load_gpus

    return frozenset(g.id for g in load_gpus())


@functools.lru_cache(maxsize=1)
def shipped_prices() -> tuple[PriceRecord, ...]:
    """The prices shipped with gpuscout, validated once per process."""
    try:
        text = resources.files("gpuscout.catalog").joinpath(PRICES_FILE).read_text(encoding="utf-8")
    except OSError as exc:  # a broken install, not a user error
        raise CatalogError(f"cannot read the packaged {PRICES_FILE}: {exc}", _SHIPPED_HINT) from exc
    return parse_toml(text, PRICES_FILE, "shipped", _catalog_ids())


def user_file(data_dir: Path) -> Path:
    return Path(data_dir) / USER_FILE


def read_user_prices(data_dir: Path) -> tuple[PriceRecord, ...]:
    """The user's own prices (``<data_dir>/prices.toml``); () where there is no file."""
    path = user_file(data_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_toml(text, str(path), "user", _catalog_ids())


def parse_price_override(text: str, today: dt.date | None = None) -> PriceRecord:
    """``"rtx-3090=700"`` (new), ``"RTX 3090:used=650"``: a street price in USD for a
    catalog GPU (any name the catalog knows), seen ``today``."""
    spec, sep, value = text.rpartition("=")
    name, _, kind = spec.partition(":") if ":" in spec else (spec, "", "new")
    kind = kind.strip().lower()
    if not sep or not name.strip():
        raise UsageError(
            f"--price {text!r}: expected GPU=USD", "e.g. --price rtx-3090=700 or rtx-3090:used=650"
        )
    if kind not in STREET_KINDS:
        raise UsageError(f"--price {text!r}: {kind!r} is not new or used", "e.g. rtx-3090:used=650")
    try:
        usd = float(value.strip().replace(",", "").removeprefix("$"))
    except ValueError:
        raise UsageError(
            f"--price {text!r}: {value.strip()!r} is not a number of dollars"
        ) from None
    if not (math.isfinite(usd) and 1 <= usd <= 1_000_000):
        raise UsageError(f"--price {text!r}: the price must be between $1 and $1,000,000")
    from gpuscout.catalog.lookup import find_gpu  # lookup imports the loader

    return PriceRecord(
        gpu_id=find_gpu(name.strip()).id,
        kind=kind,
        usd=usd,
        date_seen=(today or dt.date.today()).isoformat(),
        source="command line (--price)",
        note="given on the command line",
        origin="override",
    )


def merged(
    overrides: Iterable[PriceRecord] = (),
    user: Iterable[PriceRecord] = (),
    shipped: Iterable[PriceRecord] | None = None,
) -> tuple[PriceRecord, ...]:
    """One record per (gpu, kind, provider): an override over the user file over the
    shipped prices. A later override for the same key wins over an earlier one."""
    chosen: dict[tuple[str, str, str], PriceRecord] = {}
    for rec in shipped_prices() if shipped is None else shipped:
        chosen[rec.key] = rec
    for layer in (user, overrides):
        for rec in layer:
            chosen[rec.key] = rec
    return tuple(chosen.values())


def all_prices(
    data_dir: Path | None = None, overrides: Iterable[PriceRecord] = ()
) -> tuple[PriceRecord, ...]:
    """Every price, overrides and the user file (when ``data_dir`` is given) first."""
    user = read_user_prices(data_dir) if data_dir is not None else ()
    return merged(overrides, user)


def sort_key(rec: PriceRecord) -> tuple[int, float, str, str]:
    """Street new, street used, cloud cheapest first, free tiers; then by price."""
    rank = {"new": 0, "used": 1, "on-demand": 2, "spot": 2, "free": 3}[rec.kind]
    return (rank, rec.usd, rec.gpu_id, rec.provider)


def for_gpu(records: Iterable[PriceRecord], gpu_id: str) -> tuple[PriceRecord, ...]:
    return tuple(sorted((r for r in records if r.gpu_id == gpu_id), key=sort_key))


def street_price(
    records: Iterable[PriceRecord], gpu_id: str, kind: str = "new"
) -> PriceRecord | None:
    """The one street price of ``kind`` ("new" or "used") for a GPU, or None."""
    return next((r for r in records if r.gpu_id == gpu_id and r.kind == kind), None)


def cheapest_cloud(
    records: Iterable[PriceRecord], gpu_id: str, kinds: Sequence[str] = ("on-demand",)
) -> PriceRecord | None:
    """The cheapest cloud offer of the given kinds for a GPU (on-demand by default)."""
    offers = [r for r in records if r.gpu_id == gpu_id and r.kind in kinds]
    return min(offers, key=sort_key, default=None)


def free_tiers(records: Iterable[PriceRecord]) -> tuple[PriceRecord, ...]:
    return tuple(sorted((r for r in records if r.is_free), key=sort_key))


def warnings(records: Iterable[PriceRecord], today: dt.date | None = None) -> tuple[str, ...]:
    """The stale-price warning of each record older than STALE_DAYS days."""
    return tuple(w for r in records if (w := r.stale_warning(today)) is not None)


# ---- writing the user file -------------------------------------------------------------


@dataclass(frozen=True)
class MergeSummary:
    path: Path
    added: tuple[PriceRecord, ...]
    replaced: tuple[PriceRecord, ...]
    total: int  # records in the file after the merge


def merge_into_user_file(data_dir: Path, records: Sequence[PriceRecord]) -> MergeSummary:
    """Add ``records`` to ``<data_dir>/prices.toml``, replacing those with the same
    (gpu, kind, provider); the file is rewritten in one step (never half written)."""
    existing = read_user_prices(data_dir)
    keys = {r.key for r in existing}
    new_by_key = {r.key: dataclasses.replace(r, origin="user") for r in records}
    kept = [r for r in existing if r.key not in new_by_key]
    result = [*kept, *new_by_key.values()]
    path = user_file(data_dir)
    _write_atomically(path, to_toml(result))
    return MergeSummary(
        path=path,
        added=tuple(r for k, r in new_by_key.items() if k not in keys),
        replaced=tuple(r for k, r in new_by_key.items() if k in keys),
        total=len(result),
    )


def to_toml(records: Iterable[PriceRecord]) -> str:
    """Records as ``[[price]]`` tables, defaults left out, readable by ``parse_toml``."""
    defaults = {f.name: f.default for f in dataclasses.fields(PriceRecord)}
    out = ["# Your own GPU prices for gpuscout (same schema as its shipped prices.toml).\n"]
    for rec in records:
        out.append("\n[[price]]\n")
        for key in FIELDS:
            value = getattr(rec, key)
            if key in defaults and value == defaults[key]:
                continue
            out.append(f"{key} = {_toml_value(value)}\n")
    return "".join(out)


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def _write_atomically(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".prices-", suffix=".toml", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


__all__ = [
    "BILLING",
    "CLOUD_KINDS",
    "FIELDS",
    "KINDS",
    "ORIGINS",
    "STALE_DAYS",
    "STREET_KINDS",
    "MergeSummary",
    "PriceRecord",
    "all_prices",
    "cheapest_cloud",
    "for_gpu",
    "free_tiers",
    "merge_into_user_file",
    "merged",
    "parse_csv",
    "parse_json",
    "parse_price_override",
    "parse_rows",
    "parse_toml",
    "read_price_list",
    "read_user_prices",
    "seen_date",
    "shipped_prices",
    "sort_key",
    "street_price",
    "to_toml",
    "user_file",
    "warnings",
]
