"""gpuscout: do I need a GPU for deep learning, which one, and is mine working?

Importing this package is cheap and safe: it never loads a deep-learning framework,
never creates a CUDA context and never starts a process.
"""

from __future__ import annotations

from gpuscout._types import (
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
