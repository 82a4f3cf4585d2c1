"""Store a list of benchmark Results as one run, with the machine's fingerprint."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gpuscout._types import Result, SystemInfo


def probe_for_fingerprint() -> SystemInfo:
    """The system record a run needs; only torch is probed, to keep the run short."""
    from gpuscout.probe.system import probe_system

    return probe_system(frameworks=("torch",))


def summarise_results(results: Iterable[Result]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return {"results": sum(counts.values()), "by_status": counts}


def save_run(
    results: list[Result],
    *,
    db: Path | str | None = None,
    system: SystemInfo | None = None,
    kind: str = "bench-micro",
    summary: Mapping[str, Any] | None = None,
) -> int:
    """Write ``results`` as one run of ``kind``; returns the run id.

    ``db`` None is the user's default database. The run is "ok" when no result
    failed or ran out of memory, else "failed" (the results are stored either way).
    """
    from gpuscout.store import Store, fingerprint

    system = system if system is not None else probe_for_fingerprint()
    store = Store.open(db)
    try:
        with store.run(kind, fingerprint(system)) as handle:
            handle.add_results(results)
            handle.summary.update(summarise_results(results))
            handle.summary.update(summary or {})
            if any(r.status in ("failed", "oom", "timeout") for r in results):
                handle.status = "failed"
            return handle.id
    finally:
        store.close()
