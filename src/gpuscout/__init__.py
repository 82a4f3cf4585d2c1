"""gpuscout: do I need a GPU for deep learning, which one, and is mine working?

Every command is a function of ``gpuscout.jobs`` (``run``, ``doctor``, ``bench_micro``,
``fit``, ``advise``, ``report``, ``history`` ...): it takes where the results go (an open
``gpuscout.store.Store``, a database path, or None for the user's default) and typed
options, and returns a frozen record of the types below; errors are ``GpuscoutError``.

    >>> from gpuscout import jobs
    >>> from gpuscout.store import Store
    >>> with Store.open(":memory:") as store:
    ...     jobs.doctor(store, jobs.DoctorOptions(machine="h100.json")).exit_code

Importing this package is cheap and safe: it never loads a deep-learning framework,
never creates a CUDA context and never starts a process (nor does ``gpuscout.jobs``).
"""

from __future__ import annotations

from gpuscout._types import (
    Ceiling,
    EnvVars,
    Finding,
    FrameworkInfo,
    GpuInfo,
    GpuProcess,
    HostInfo,
    Measurement,
    NvidiaInfo,
    NvmlState,
    Result,
    RunRecord,
    Stats,
    Status,
    SystemInfo,
)
from gpuscout.errors import GpuscoutError, UnknownNameError, UsageError

__version__ = "0.1.0"

__all__ = [
    "Ceiling",
    "EnvVars",
    "Finding",
    "FrameworkInfo",
    "GpuInfo",
    "GpuProcess",
    "GpuscoutError",
    "HostInfo",
    "Measurement",
    "NvidiaInfo",
    "NvmlState",
    "Result",
    "RunRecord",
    "Stats",
    "Status",
    "SystemInfo",
    "UnknownNameError",
    "UsageError",
    "__version__",
]
