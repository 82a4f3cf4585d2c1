"""Micro-benchmarks: matmul, memory, transfer, launch, each verified before it is timed.

``run_micro(devices, only, quick)`` runs them; ``registry.get(name)`` gives one.
Importing this package does not import torch; the benchmarks import it when they run.
"""

from __future__ import annotations

from gpuscout.bench.benchmarks import get, names, register
from gpuscout.bench.context import (
    FULL_TIMING,
    QUICK_TIMING,
    BenchContext,
    TimingPolicy,
    VerificationError,
)
from gpuscout.bench.cpu_peak import cpu_peak_tflops, flops_per_cycle, host_peak_tflops
from gpuscout.bench.record import save_run
from gpuscout.bench.runner import (
    Progress,
    available_devices,
    resolve_benchmarks,
    resolve_devices,
    run_micro,
)

__all__ = [
    "FULL_TIMING",
    "QUICK_TIMING",
    "BenchContext",
    "Progress",
    "TimingPolicy",
    "VerificationError",
    "available_devices",
    "cpu_peak_tflops",
    "flops_per_cycle",
    "get",
    "host_peak_tflops",
    "names",
    "register",
    "resolve_benchmarks",
    "resolve_devices",
    "run_micro",
    "save_run",
]
