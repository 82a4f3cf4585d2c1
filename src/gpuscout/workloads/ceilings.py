"""The denominators of "fraction of ceiling": measured on this machine when possible.

The best ceiling is what ``gpuscout bench micro`` measured on the same machine and
device (its matmul TFLOPS per precision, its memory copy/triad GB/s), read from the
latest such run in the store; failing that, the catalog's datasheet figures for the
GPU. Every fraction says which one it used, because a datasheet peak is a promise and a
measured one is a fact, and they differ by 10-30%.
"""

from __future__ import annotations

import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

from gpuscout._types import Ceiling, Result

ABOVE_CEILING = 1.05  # tolerance: timing noise on both sides


def from_results(results: list[Result], device: str, label: str) -> Ceiling:
    """The best matmul TFLOPS per precision and memory GB/s among micro-benchmark
    results for ``device``."""
    tflops: dict[str, float] = {}
    bandwidth: float | None = None
    for r in results:
        if r.device != device or r.status != "ok" or r.figure is None:
            continue
        parts = r.name.split("/")
        if parts[0] == "matmul" and len(parts) >= 2 and r.unit == "TFLOPS":
            tflops[parts[1]] = max(tflops.get(parts[1], 0.0), float(r.figure))
        elif parts[0] == "memory" and r.unit == "GB/s":
            bandwidth = max(bandwidth or 0.0, float(r.figure))
    if not tflops and bandwidth is None:
        return Ceiling()
    return Ceiling(tflops=tflops, bandwidth_gbs=bandwidth, source=f"measured ({label})")


def from_store(db: Path | str | None, device: str, node: str | None = None) -> Ceiling:
    """The latest ``bench micro`` figures for ``device`` on this host; empty if none.

    Never creates a database: a missing file just means nothing was measured yet.
    """
    try:
        from gpuscout.store import Store
        from gpuscout.store.paths import resolve_db_path

        path = resolve_db_path(db)
        if isinstance(path, Path) and not path.is_file():
            return Ceiling()
        node = platform.node() if node is None else node
        store = Store.open(path)
        try:
            for run in store.list_runs(limit=50):
                if not run.kind.startswith("bench") and run.kind != "run":
                    continue
                if run.fingerprint.get("host") not in (None, node):
                    continue
                found = from_results(store.results(run.id), device, f"bench micro, run {run.id}")
                if found.tflops or found.bandwidth_gbs is not None:
                    return found
        finally:
            store.close()
    except Exception:  # an unreadable store costs the fraction, never the benchmark
        return Ceiling()
    return Ceiling()


def from_catalog(device_name: str | None, memory_bytes: int | None) -> Ceiling:
    """Datasheet figures for a GPU the catalog knows; empty otherwise."""
    if not device_name:
        return Ceiling()
    try:
        from gpuscout.catalog import match_local_gpu

        spec = match_local_gpu(device_name, memory_bytes)
    except Exception:
        return Ceiling()
    if spec is None:
        return Ceiling()
    tflops: dict[str, float] = {}
    for p in ("fp32", "tf32", "fp16", "bf16", "fp8"):
        v = spec.peak_tflops(p)
        if v is not None:
            tflops[p] = float(v)
    label = f"catalog datasheet ({spec.id})"
    return Ceiling(tflops=tflops, bandwidth_gbs=float(spec.memory_bandwidth_gbs), source=label)


def attach(result: Result, ceiling: Ceiling) -> Result:
    """``result`` with ``peak_fraction`` and the ceiling it was measured against.

    Decode steps are bounded by memory, so they are compared with bandwidth; every
    other workload with the matmul peak of the precision it computed in.
    """
    if result.status != "ok":
        return result
    extra: dict[str, Any] = dict(result.extra)
    fraction = None
    bw = extra.get("bandwidth_achieved_gbs")
    if bw is not None:
        if ceiling.bandwidth_gbs:
            fraction = float(bw) / ceiling.bandwidth_gbs
            extra |= {
                "ceiling_kind": "memory bandwidth",
                "ceiling_value": ceiling.bandwidth_gbs,
                "ceiling_unit": "GB/s",
                "ceiling_source": ceiling.source_of("bandwidth_gbs"),
            }
    elif extra.get("achieved_tflops") is not None:
        precision = str(extra.get("ceiling_precision") or extra.get("dtype") or "fp32")
        peak = ceiling.tflops.get(precision)
        if peak:
            fraction = float(extra["achieved_tflops"]) / peak
            extra |= {
                "ceiling_kind": f"{precision} matmul peak",
                "ceiling_value": peak,
                "ceiling_unit": "TFLOPS",
                "ceiling_source": ceiling.source_of("tflops"),
            }
    if fraction is None:
        extra.setdefault("ceiling_source", "none known (run `gpuscout bench micro` first)")
    extra["fraction_of_ceiling"] = fraction
    # Real work faster than the "ceiling" means the ceiling under-measured (too small a
    # matmul, a busy host): say so rather than let 500% of peak pass as a figure.
    extra["above_ceiling"] = fraction is not None and fraction > ABOVE_CEILING
    return replace(result, peak_fraction=fraction, extra=extra)
