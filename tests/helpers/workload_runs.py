"""Every workload run once per test session, shared by the modules that check its fields.

(A module rather than a conftest fixture: tests/browser has a conftest.py, and mypy
refuses two modules both named ``conftest``.)
"""

from __future__ import annotations

import functools

from gpuscout._types import Result


@functools.cache
def all_tuned_on_cpu() -> tuple[Result, ...]:
    """Every workload, tuned, on the CPU at the smallest sizes. Several modules check
    different fields of the same results, and the run costs seconds."""
    from gpuscout.workloads import run_workloads

    return tuple(
        run_workloads(
            "all",
            "cpu",
            "tuned",
            quick=True,
            isolate=False,
            limit_samples=300,
            steps=1,
            options={"min_time_s": 0.0, "new_tokens": 4, "image_size": 32},
            db=":memory:",
        )
    )
