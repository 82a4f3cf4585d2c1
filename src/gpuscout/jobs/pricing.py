"""The price jobs: list the prices gpuscout knows (street, cloud, free tiers) with their
dates, sources and a stale marker, and import a user's own price list into the data
directory, where it overrides the shipped prices from then on."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from gpuscout.catalog import GpuSpec, find_gpu, load_gpus
from gpuscout.catalog import prices as catalog_prices
from gpuscout.catalog.prices import PriceRecord
from gpuscout.errors import UsageError
from gpuscout.store.paths import default_data_dir


@dataclass(frozen=True)
class PricesOptions:
    """Which ``gpu`` (any catalog name; None for all), with ``overrides`` such as
    "rtx-3090:used=650" on top, judged stale relative to ``today`` (default: today)."""

    gpu: str | None = None
    overrides: tuple[str, ...] = ()
    today: dt.date | None = None


@dataclass(frozen=True)
class PriceRow:
    price: PriceRecord
    age_days: int
    stale: bool  # seen more than STALE_DAYS days before today


@dataclass(frozen=True)
class PriceListing:
    gpu: GpuSpec | None  # the GPU asked for; None when listing every GPU
    street: tuple[PriceRow, ...]  # new, then used
    cloud: tuple[PriceRow, ...]  # cheapest first
    free: tuple[PriceRow, ...]
    warnings: tuple[str, ...]  # one line per stale price
    today: str
    user_file: str  # where the user's own prices live (it may not exist)
    stale_days: int = catalog_prices.STALE_DAYS


def prices(options: PricesOptions | None = None, data_dir: Path | None = None) -> PriceListing:
    """Every known price (or one GPU's): overrides, then the user's price file in the data
    directory, then the shipped prices; each row says where it came from."""
    o = options or PricesOptions()
    today = o.today or dt.date.today()
    home = default_data_dir() if data_dir is None else data_dir
    overrides = [catalog_prices.parse_price_override(t, today) for t in o.overrides]
    records = catalog_prices.all_prices(home, overrides)
    gpu = find_gpu(o.gpu) if o.gpu is not None else None
    if gpu is not None:
        records = tuple(r for r in records if r.gpu_id == gpu.id)
    ordered = sorted(records, key=catalog_prices.sort_key)
    rows = [PriceRow(r, r.age_days(today), r.is_stale(today)) for r in ordered]
    return PriceListing(
        gpu=gpu,
        street=_rows_where(rows, catalog_prices.STREET_KINDS),
        cloud=_rows_where(rows, catalog_prices.CLOUD_KINDS),
        free=_rows_where(rows, ("free",)),
        warnings=catalog_prices.warnings(ordered, today),
        today=today.isoformat(),
        user_file=str(catalog_prices.user_file(home)),
    )


def _rows_where(rows: list[PriceRow], kinds: tuple[str, ...]) -> tuple[PriceRow, ...]:
    return tuple(r for r in rows if r.price.kind in kinds)


@dataclass(frozen=True)
class ImportOutcome:
    source: str  # the file imported
    user_file: str  # the file written
    rows: int
    added: tuple[PriceRecord, ...]
    replaced: tuple[PriceRecord, ...]
    total: int  # prices in the user file afterwards


def import_prices(path: str | Path, data_dir: Path | None = None) -> ImportOutcome:
    """Validate a CSV, JSON or TOML price list field by field and merge it into the
    user's price file; nothing is written when any row is bad."""
    home = default_data_dir() if data_dir is None else data_dir
    records = catalog_prices.read_price_list(path, known_ids={g.id for g in load_gpus()})
    if not records:
        raise UsageError(f"{path} has no prices", "one row per price: gpu_id, kind, usd, ...")
    summary = catalog_prices.merge_into_user_file(home, records)
    return ImportOutcome(
        source=str(path),
        user_file=str(summary.path),
        rows=len(records),
        added=summary.added,
        replaced=summary.replaced,
        total=summary.total,
    )
