"""What a caller hears of `gpuscout run` while it goes: each stage as it begins and
ends. Apart from the jobs, so that a listener (the CLI's printer) is defined without
loading what the stages measure with."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

from gpuscout._types import Finding, Result, SystemInfo

# (label, done, total): the progress callback every measuring job takes; total 0 is
# "not known yet".
Progress = Callable[[str, int, int], None]

# The run's stages, in order.
DOCTOR, MICRO, WORKLOADS = "doctor", "micro", "workloads"


class RunListener:
    """``stage`` is entered around each stage and may give a progress callback; the
    ``*_done`` methods get each stage's findings as it ends. This one hears nothing."""

    def stage(self, name: str) -> AbstractContextManager[Progress | None]:
        return nullcontext()

    def doctor_done(self, system: SystemInfo, findings: Sequence[Finding]) -> None:
        """After the doctor."""

    def micro_done(self, results: Sequence[Result]) -> None:
        """After the micro-benchmarks."""

    def workloads_done(self, results: Sequence[Result]) -> None:
        """After the workloads."""
