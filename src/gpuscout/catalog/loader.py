"""Read and validate the catalog's TOML files (package data) into frozen records.

Every row is checked when it is read: required keys, types, ranges, allowed values, unique
ids and names, and aliases that cannot be confused. A bad row raises CatalogError naming
the file, the row number and the id, because a silently wrong figure would flow into every
prediction gpuscout makes. ``parse_gpus`` / ``parse_prices`` take text so tests can feed
broken data without touching the shipped files.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Collection, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeVar

from gpuscout.catalog.gpu import FORM_FACTORS, SEGMENTS, VENDORS, CloudPrice, GpuSpec
from gpuscout.catalog.names import keys as name_keys
from gpuscout.errors import CatalogError, UnknownNameError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

GPUS_FILE: Final = "gpus.toml"
PRICES_FILE: Final = "cloud_prices.toml"

_ID_RE: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_CC_RE: Final = re.compile(r"^\d{1,2}\.\d$")
_DATE_RE: Final = re.compile(r"^\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?$")
_HINT: Final = "the catalog data shipped with gpuscout is broken; please report this bug"

# key -> (kind, required, (low, high) for numbers). Ranges are generous: they catch a
# misplaced decimal point or a sparse figure typed into a dense column's order of
# magnitude, not honest disagreement between datasheets.
_NUM = tuple[float, float]
_N = TypeVar("_N", int, float)
_GPU_FIELDS: Final[dict[str, tuple[str, bool, _NUM | None]]] = {
    "id": ("id", True, None),
    "name": ("str", True, None),
    "vendor": ("str", True, None),
    "segment": ("str", True, None),
    "architecture": ("str", True, None),
    "compute_capability": ("str", False, None),
    "release_year": ("int", True, (2010, 2040)),
    "memory_gb": ("float", True, (1, 2048)),
    "memory_type": ("str", True, None),
    "memory_bandwidth_gbs": ("float", True, (10, 50_000)),
    "fp32_tflops": ("float", True, (0.1, 2_000)),
    "fp64_tflops": ("float", False, (0.01, 1_000)),
    "fp64_tensor_tflops": ("float", False, (0.01, 1_000)),
    "tf32_tensor_tflops": ("float", False, (1, 20_000)),
    "fp16_tensor_tflops": ("float", False, (1, 40_000)),
    "bf16_tensor_tflops": ("float", False, (1, 40_000)),
    "fp8_tensor_tflops": ("float", False, (1, 80_000)),
    "int8_tensor_tops": ("float", False, (1, 80_000)),
    "tdp_w": ("float", False, (5, 3_000)),
    "pcie_gen": ("int", False, (1, 7)),
    "nvlink": ("bool", True, None),
    "nvlink_bandwidth_gbs": ("float", False, (1, 20_000)),
    "ecc": ("bool", True, None),
    "form_factor": ("str", True, None),
    "launch_price_usd": ("float", False, (1, 1_000_000)),
    "aliases": ("strlist", False, None),
    "memory_options_gb": ("numlist", False, (1, 2048)),
    "source": ("urls", True, None),
    "note": ("text", False, None),
}
_PRICE_FIELDS: Final[dict[str, tuple[str, bool, _NUM | None]]] = {
    "gpu_id": ("id", True, None),
    "provider": ("str", True, None),
    "sku": ("str", True, None),
    "gpus": ("int", True, (1, 1024)),
    "usd_per_gpu_hour": ("float", True, (0.001, 1_000)),
    "date_seen": ("date", True, None),
    "source": ("url", True, None),
    "note": ("text", False, None),
}


def parse_gpus(text: str, origin: str = GPUS_FILE) -> tuple[GpuSpec, ...]:
    """Validate TOML text with ``[[gpu]]`` tables; raise CatalogError on the first bad row."""
    tables = _tables(text, origin, "gpu")
    specs = tuple(
        _gpu(row, f"{origin} row {i} ({_row_id(row)})") for i, row in enumerate(tables, 1)
    )
    _check_unique(specs, origin)
    return specs


def parse_prices(
    text: str, known_ids: Collection[str] | None = None, origin: str = PRICES_FILE
) -> tuple[CloudPrice, ...]:
    """Validate TOML text with ``[[price]]`` tables; ``known_ids`` checks each gpu_id exists."""
    prices = []
    for i, row in enumerate(_tables(text, origin, "price"), 1):
        where = f"{origin} row {i} ({row.get('gpu_id', '?')!s}, {row.get('provider', '?')!s})"
        values = _validated(row, _PRICE_FIELDS, where)
        if known_ids is not None and values["gpu_id"] not in known_ids:
            raise CatalogError(
                f"{where}: gpu_id {values['gpu_id']!r} is not in the GPU catalog", _HINT
            )
        prices.append(CloudPrice(**values))
    return tuple(prices)


def read_gpus(path: str | Path) -> tuple[GpuSpec, ...]:
    """Load a GPU catalog from a file of one's own (same format as the shipped gpus.toml)."""
    p = Path(path)
    return parse_gpus(p.read_text(encoding="utf-8"), origin=str(p))


@functools.lru_cache(maxsize=1)
def load_gpus() -> tuple[GpuSpec, ...]:
    """The shipped GPU catalog, validated once per process and then cached."""
    return parse_gpus(_package_text(GPUS_FILE))


@functools.lru_cache(maxsize=1)
def _all_prices() -> tuple[CloudPrice, ...]:
    ids = {g.id for g in load_gpus()}
    return parse_prices(_package_text(PRICES_FILE), known_ids=ids)


def cloud_prices(gpu_id: str | None = None) -> tuple[CloudPrice, ...]:
    """Shipped cloud prices, cheapest first; for one GPU when ``gpu_id`` is given.

    ``gpu_id`` may be any name find_gpu understands ("4090", "H100 SXM"); an unknown
    name raises UnknownNameError rather than returning an empty tuple, which would read
    as "no cloud offers this GPU".
    """
    prices = _all_prices()
    if gpu_id is not None:
        if gpu_id not in {g.id for g in load_gpus()}:
            from gpuscout.catalog.lookup import find_gpu  # lookup imports this module

            gpu_id = find_gpu(gpu_id).id
        prices = tuple(p for p in prices if p.gpu_id == gpu_id)
    return tuple(sorted(prices, key=lambda p: (p.usd_per_gpu_hour, p.gpu_id, p.provider)))


def card_gpus() -> tuple[GpuSpec, ...]:
    """The GPUs one adds to a machine or rents: every row but laptop GPUs (they come
    inside a laptop) and Apple silicon (inside a Mac, whose training speed through MPS
    gpuscout's projections do not model; `gpuscout fit` covers both)."""
    return tuple(g for g in load_gpus() if g.form_factor != "laptop" and g.vendor != "Apple")


def gpus_by_segment(segment: str) -> tuple[GpuSpec, ...]:
    """GPUs of one segment, in catalog order; an unknown segment raises UnknownNameError."""
    return tuple(g for g in load_gpus() if g.segment == check_segment(segment))


def check_segment(segment: str) -> str:
    """``"Datacenter"`` -> ``"datacenter"``; unknown values raise with close matches."""
    key = segment.strip().lower().replace("-", "").replace(" ", "")
    key = {"server": "datacenter", "datacentre": "datacenter", "desktop": "consumer"}.get(key, key)
    if key not in SEGMENTS:
        import difflib

        close = difflib.get_close_matches(key, SEGMENTS, n=3, cutoff=0.4)
        raise UnknownNameError("segment", segment, close or list(SEGMENTS))
    return key


def _package_text(filename: str) -> str:
    try:
        return resources.files("gpuscout.catalog").joinpath(filename).read_text(encoding="utf-8")
    except OSError as exc:  # a broken install, not a user error
        raise CatalogError(f"cannot read the packaged {filename}: {exc}", _HINT) from exc


def _tables(text: str, origin: str, key: str) -> list[Mapping[str, Any]]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{origin} is not valid TOML: {exc}", _HINT) from exc
    extra = sorted(set(doc) - {key})
    if extra:
        raise CatalogError(f"{origin}: unexpected top-level key(s) {extra}; only [[{key}]]", _HINT)
    tables = doc.get(key)
    if not isinstance(tables, list) or not tables:
        raise CatalogError(f"{origin}: no [[{key}]] tables", _HINT)
    if not all(isinstance(t, dict) for t in tables):
        raise CatalogError(f"{origin}: {key} must be an array of tables ([[{key}]])", _HINT)
    return tables


def _row_id(row: Mapping[str, Any]) -> str:
    value = row.get("id")
    return f"id {value!r}" if isinstance(value, str) else "no id"


def _gpu(row: Mapping[str, Any], where: str) -> GpuSpec:
    v = _validated(row, _GPU_FIELDS, where)

    def bad(message: str) -> CatalogError:
        return CatalogError(f"{where}: {message}", _HINT)

    if v["segment"] not in SEGMENTS:
        raise bad(f"segment {v['segment']!r} is not one of {', '.join(SEGMENTS)}")
    if v["vendor"] not in VENDORS:
        raise bad(f"vendor {v['vendor']!r} is not one of {', '.join(VENDORS)}")
    if v["form_factor"] not in FORM_FACTORS:
        raise bad(f"form_factor {v['form_factor']!r} is not one of {', '.join(FORM_FACTORS)}")
    cc = v.get("compute_capability")
    if v["vendor"] == "NVIDIA" and cc is None:
        raise bad('NVIDIA GPUs need a compute_capability such as "9.0"')
    if cc is not None and (v["vendor"] != "NVIDIA" or not _CC_RE.match(cc)):
        raise bad(f'compute_capability {cc!r} must look like "8.6" and only on NVIDIA GPUs')
    problem = _figures_problem(v)
    if problem:
        raise bad(problem)
    return GpuSpec(**v)


def _figures_problem(v: Mapping[str, Any]) -> str | None:
    """What is wrong between a row's figures (each valid alone), or None."""
    options = v.get("memory_options_gb")
    if options is not None and (
        list(options) != sorted(set(options)) or options[-1] != v["memory_gb"]
    ):
        return (
            f"memory_options_gb {list(options)} must rise without repeats "
            f"and end at memory_gb ({v['memory_gb']:g})"
        )
    if v.get("nvlink_bandwidth_gbs") is not None and not v["nvlink"]:
        return "nvlink_bandwidth_gbs is set but nvlink is false"
    # Tensor units run at least as fast as the vector units they sit beside; a tensor
    # figure below FP32 means a unit or sparsity mix-up in the row.
    for key in ("tf32_tensor_tflops", "fp16_tensor_tflops", "bf16_tensor_tflops"):
        if v.get(key) is not None and v[key] < v["fp32_tflops"] * 0.99:
            return f"{key} ({v[key]}) is below fp32_tflops ({v['fp32_tflops']})"
    return None


def _validated(
    row: Mapping[str, Any], fields: Mapping[str, tuple[str, bool, _NUM | None]], where: str
) -> dict[str, Any]:
    unknown = sorted(set(row) - set(fields))
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {unknown} (a typo?)", _HINT)
    out: dict[str, Any] = {}
    for key, (kind, required, bounds) in fields.items():
        if key not in row:
            if required:
                raise CatalogError(f"{where}: missing required key {key!r}", _HINT)
            continue
        out[key] = _value(row[key], kind, bounds, f"{where}: {key}")
    return out


def _value(raw: Any, kind: str, bounds: _NUM | None, where: str) -> Any:
    """``raw`` read as ``kind`` (a key of ``_READERS``); CatalogError saying what it must be."""
    try:
        return _READERS[kind](raw, bounds)
    except _Invalid as exc:
        raise CatalogError(f"{where} must be {exc}, got {raw!r}", _HINT) from None


class _Invalid(ValueError):
    """A value that is not of its kind; the message says what it must be."""


def _bool(raw: Any, bounds: _NUM | None) -> bool:
    if not isinstance(raw, bool):
        raise _Invalid("true or false")
    return raw


# bool is an int in Python; `true` in a number column is a data error.
def _int(raw: Any, bounds: _NUM | None) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise _Invalid("an integer")
    return _within(int(raw), bounds)


def _float(raw: Any, bounds: _NUM | None) -> float:
    if not isinstance(raw, (int, float)) or isinstance(raw, bool):
        raise _Invalid("a number")
    return _within(float(raw), bounds)


def _within(value: _N, bounds: _NUM | None) -> _N:
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise _Invalid(f"between {bounds[0]:g} and {bounds[1]:g}")
    return value


def _strlist(raw: Any, bounds: _NUM | None) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(s, str) and s.strip() for s in raw):
        raise _Invalid("a list of non-empty strings")
    return tuple(s.strip() for s in raw)


def _numlist(raw: Any, bounds: _NUM | None) -> tuple[float, ...]:
    if not isinstance(raw, list) or not raw:
        raise _Invalid("a non-empty list of numbers")
    return tuple(_float(x, bounds) for x in raw)


def _urls(raw: Any, bounds: _NUM | None) -> tuple[str, ...]:
    urls = [raw] if isinstance(raw, str) else raw
    if not isinstance(urls, list) or not urls or not all(_is_url(u) for u in urls):
        raise _Invalid("a URL or a non-empty list of URLs")
    return tuple(urls)


def _text(raw: Any, bounds: _NUM | None) -> str:
    if not isinstance(raw, str):
        raise _Invalid("a string")
    return raw.strip()


def _str(raw: Any, bounds: _NUM | None) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _Invalid("a non-empty string")
    return raw.strip()


_Reader = Callable[[Any, _NUM | None], Any]


def _str_like(matches: Callable[[str], object], expected: str) -> _Reader:
    """A non-empty string that ``matches`` (as written, before stripping)."""

    def read(raw: Any, bounds: _NUM | None) -> str:
        text = _str(raw, bounds)
        if not matches(raw):
            raise _Invalid(expected)
        return text

    return read


def _is_url(value: object) -> bool:
    return isinstance(value, str) and re.match(r"^https?://\S+$", value) is not None


_READERS: Final[dict[str, _Reader]] = {
    "bool": _bool,
    "int": _int,
    "float": _float,
    "strlist": _strlist,
    "numlist": _numlist,
    "urls": _urls,
    "text": _text,
    "str": _str,
    "id": _str_like(_ID_RE.match, 'a kebab-case id such as "rtx-4090"'),
    "url": _str_like(_is_url, "an http(s) URL"),
    "date": _str_like(_DATE_RE.match, "a date as YYYY-MM-DD or YYYY-MM"),
}


def _check_unique(specs: tuple[GpuSpec, ...], origin: str) -> None:
    ids: dict[str, str] = {}
    names: dict[str, str] = {}
    # normalised name or alias -> (id, memory_gb) of every row that answers to it
    keys: dict[str, list[tuple[str, float]]] = {}
    for spec in specs:
        if spec.id in ids:
            raise CatalogError(f"{origin}: id {spec.id!r} appears twice", _HINT)
        ids[spec.id] = spec.id
        if spec.name.lower() in names:
            raise CatalogError(
                f"{origin}: name {spec.name!r} of {spec.id!r} is also {names[spec.name.lower()]!r}",
                _HINT,
            )
        names[spec.name.lower()] = spec.id
        for key in set().union(*(name_keys(n) for n in (spec.id, spec.name, *spec.aliases))):
            for other_id, other_memory in keys.get(key, []):
                # NVML gives e.g. the 10 GB and 12 GB RTX 3080 one name: allowed, because
                # memory tells them apart; two rows nothing can tell apart are not.
                if other_memory == spec.memory_gb:
                    raise CatalogError(
                        f"{origin}: {spec.id!r} and {other_id!r} both answer to {key!r} "
                        "with the same memory, so a lookup could not tell them apart",
                        _HINT,
                    )
            keys.setdefault(key, []).append((spec.id, spec.memory_gb))
