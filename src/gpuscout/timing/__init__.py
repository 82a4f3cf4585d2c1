"""Timing core: one ``measure`` function, its clocks, and robust statistics.

Nothing here imports torch at import time; ``CudaEventClock`` imports it when built.
"""

from __future__ import annotations

from gpuscout.timing.clocks import (
    Clock,
    CudaEventClock,
    FakeClock,
    PerfCounterClock,
    clock_for,
)
from gpuscout.timing.stats import NOISY_REL_IQR, percentile, summarise
from gpuscout.timing.timer import measure

__all__ = [
    "NOISY_REL_IQR",
    "Clock",
    "CudaEventClock",
    "FakeClock",
    "PerfCounterClock",
    "clock_for",
    "measure",
    "percentile",
    "summarise",
]
