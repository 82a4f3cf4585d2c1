"""Training and inference workloads, each as a tutorial writes it and as an expert would.

``run_workloads(names, devices, impl)`` runs each (workload, device, implementation)
in an isolated worker and returns ``Result`` records (``gpuscout.report.verdict`` says
what they mean in plain words). The workloads (mlp, cnn, encoder, llm) are one file each
with ``build(cfg)`` and ``run(cfg, inst)``. Importing this package does not import torch.
"""

from __future__ import annotations

from gpuscout.workloads.base import IMPLS, WorkloadConfig
from gpuscout.workloads.ceilings import Ceiling
from gpuscout.workloads.registry import check, get, names
from gpuscout.workloads.suite import (
    QUICK_WORKLOADS,
    Progress,
    plan,
    resolve_devices,
    run_workloads,
)

__all__ = [
    "IMPLS",
    "QUICK_WORKLOADS",
    "Ceiling",
    "Progress",
    "WorkloadConfig",
    "check",
    "get",
    "names",
    "plan",
    "resolve_devices",
    "run_workloads",
]
