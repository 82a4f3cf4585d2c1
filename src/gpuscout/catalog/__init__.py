"""The GPU catalog: published specifications and cloud prices, as validated frozen records.

Data lives in gpus.toml and cloud_prices.toml (package data, each row with its sources);
``load_gpus()`` reads and checks them once per process. Importing this package reads
nothing: the files are parsed on first use.

    >>> from gpuscout.catalog import find_gpu
    >>> find_gpu("4090").peak_tflops("bf16")
    165.2
"""

from __future__ import annotations

from gpuscout.catalog.gpu import (
    FORM_FACTORS,
    PRECISIONS,
    SEGMENTS,
    CloudPrice,
    GpuSpec,
    normalize_precision,
)
from gpuscout.catalog.loader import (
    card_gpus,
    check_segment,
    cloud_prices,
    gpus_by_segment,
    load_gpus,
    parse_gpus,
    parse_prices,
    read_gpus,
)
from gpuscout.catalog.lookup import (
    AmbiguousGpuError,
    GpuIndex,
    find_gpu,
    match_local_gpu,
    search_gpus,
)

__all__ = [
    "FORM_FACTORS",
    "PRECISIONS",
    "SEGMENTS",
    "AmbiguousGpuError",
    "CloudPrice",
    "GpuIndex",
    "GpuSpec",
    "card_gpus",
    "check_segment",
    "cloud_prices",
    "find_gpu",
    "gpus_by_segment",
    "load_gpus",
    "match_local_gpu",
    "normalize_precision",
    "parse_gpus",
    "parse_prices",
    "read_gpus",
    "search_gpus",
]
