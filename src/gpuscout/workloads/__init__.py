"""Training and inference workloads, each as a tutorial writes it and as an expert would.

``run_workloads(names, devices, impl)`` runs each (workload, device, implementation)
in an isolated worker and returns ``Result`` records (``gpuscout.report.verdict`` says
what they mean in plain words). Each workload is one file with ``build(cfg)``,
``run(cfg, inst)`` and its record, ``WORKLOAD = WorkloadSpec(...)``; ``registry`` finds
them. Importing this package neither imports torch nor looks for workloads.
"""

from __future__ import annotations

from typing import Any

from gpuscout.workloads.base import IMPLS, WorkloadConfig
from gpuscout.workloads.registry import check, get, names, register, registered
from gpuscout.workloads.spec import WorkloadSpec
from gpuscout.workloads.suite import (
    Progress,
    plan,
    resolve_devices,
    run_workloads,
)


def __getattr__(name: str) -> Any:
    """``QUICK_WORKLOADS``: the workloads `gpuscout run` measures, from their records
    (read when asked: importing the package discovers nothing)."""
    if name == "QUICK_WORKLOADS":
        from gpuscout.workloads.registry import quick_names

        return quick_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "IMPLS",
    "QUICK_WORKLOADS",
    "Progress",
    "WorkloadConfig",
    "WorkloadSpec",
    "check",
    "get",
    "names",
    "plan",
    "register",
    "registered",
    "resolve_devices",
    "run_workloads",
]
