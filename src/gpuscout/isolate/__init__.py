"""Isolated runs: one benchmark per worker process, with a timeout (DESIGN rule 12).

``run_isolated(fn, kwargs, timeout_s=...)`` returns an ``Outcome`` whose status is
"ok", "failed", "oom" or "timeout"; whatever happens in the worker, the caller goes on.
"""

from __future__ import annotations

from gpuscout.isolate.process import (
    FAILED,
    OK,
    OOM,
    TIMEOUT,
    Outcome,
    is_oom,
    run_isolated,
    sigterm_unwinds,
)

__all__ = [
    "FAILED",
    "OK",
    "OOM",
    "TIMEOUT",
    "Outcome",
    "is_oom",
    "run_isolated",
    "sigterm_unwinds",
]
