"""What every micro-benchmark shares: the ceiling, timing policy, and the per-case guard.

``run_case`` is the isolation boundary. Benchmarks run in-process (a worker process per
device would pay a fresh CUDA context, seconds, out of a one-minute quick budget), so
each case (one size of one precision) is wrapped: a failed check, an out-of-memory
error or any other exception becomes a ``Result`` with a status, memory is released,
and the suite goes on. A hard hang is not covered in-process; a worker process with a
timeout (DESIGN's ``launch/``) is the place for that.
"""

from __future__ import annotations

import gc
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gpuscout._types import Ceiling, Measurement, Result
from gpuscout.timing import Clock, measure


class VerificationError(Exception):
    """The benchmark's output was wrong: it must not be timed."""


class SkipCase(Exception):
    """The case does not apply to this device (e.g. fp8 before compute capability 8.9)."""


@dataclass(frozen=True)
class TimingPolicy:
    """Arguments for ``timing.measure``; quick mode trades spread for time."""

    warmup: int = 3
    min_iters: int = 10
    min_time_s: float = 0.5
    max_iters: int = 10_000
    max_time_s: float = 10.0


FULL_TIMING = TimingPolicy()
QUICK_TIMING = TimingPolicy(warmup=2, min_iters=5, min_time_s=0.1, max_time_s=3.0)


class WindowMonitor(Protocol):
    """Summarises what a background sampler saw between two ``time.monotonic`` stamps."""

    def window(self, t0: float, t1: float) -> Mapping[str, Any]: ...


@dataclass
class BenchContext:
    """Everything a benchmark gets besides its device and quick flag. All optional."""

    ceiling: Ceiling = field(default_factory=Ceiling)  # the denominators of "% of peak"
    timing: TimingPolicy | None = None  # None: QUICK_TIMING or FULL_TIMING by the quick flag
    monitor: WindowMonitor | None = None
    on_case: Callable[[str], None] | None = None  # progress: called with each case's name
    seed: int = 0

    def policy(self, quick: bool) -> TimingPolicy:
        if self.timing is not None:
            return self.timing
        return QUICK_TIMING if quick else FULL_TIMING


@dataclass
class CaseOutput:
    """What a case body hands back to ``run_case``."""

    figure: float
    measurement: Measurement | None = None
    peak: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def timed(
    fn: Callable[[], object], ctx: BenchContext, quick: bool, clock: Clock | None = None
) -> tuple[Measurement, dict[str, Any]]:
    """``measure`` under the context's policy, plus the monitor's summary of that window."""
    p = ctx.policy(quick)
    t0 = time.monotonic()
    m = measure(
        fn,
        clock=clock,
        warmup=p.warmup,
        min_iters=p.min_iters,
        min_time_s=p.min_time_s,
        max_iters=p.max_iters,
        max_time_s=p.max_time_s,
    )
    t1 = time.monotonic()
    extra: dict[str, Any] = {
        "cold_s": m.cold_s,
        "iters": m.stats.n,
        "warmup_iters": m.warmup_iters,
        "clock": m.clock,
    }
    if m.stats.n < p.min_iters:
        extra["capped"] = True  # the max-time cap ended the loop before min_iters
    if ctx.monitor is not None:
        extra["nvml"] = dict(ctx.monitor.window(t0, t1))
    return m, extra


def release_memory(device: str, *, collect: bool = True) -> None:
    """Drop what a case left behind: reference cycles (``collect``), then cached blocks."""
    if collect:
        gc.collect()
    if device.startswith("cuda"):
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()


# The NVML summary's verdicts (bench.monitor) as result flags.
NVML_FLAGS = (("throttled", "throttled"), ("power_capped", "power-capped"))


def flags_for(out: CaseOutput) -> list[str]:
    flags: list[str] = []
    if out.measurement is not None and out.measurement.stats.noisy:
        flags.append("noisy")
    if out.extra.get("capped"):
        flags.append("capped")
    nv = out.extra.get("nvml")
    if isinstance(nv, Mapping):
        flags += [flag for key, flag in NVML_FLAGS if nv.get(key)]
    return flags


def run_case(
    name: str, device: str, unit: str, ctx: BenchContext, body: Callable[[], CaseOutput]
) -> Result:
    """Run one case; never raises for a failure of the case itself (only interrupts)."""
    if ctx.on_case is not None:
        ctx.on_case(name)
    status, error = "ok", None
    out: CaseOutput | None = None
    try:
        out = body()
    except SkipCase as exc:
        status, error = "skipped", str(exc)
    except VerificationError as exc:
        status, error = "failed", f"wrong result: {exc}"
    except Exception as exc:
        from gpuscout.isolate.process import is_oom  # the one place that knows OOM's forms

        status = "oom" if is_oom(exc) else "failed"
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    finally:
        # A failed case's tensors live on in the traceback until collected; a passed
        # case's buffers are unreferenced now, and GPU caches go back for the next size.
        if status != "ok" or device.startswith("cuda"):
            release_memory(device, collect=status != "ok")
    if out is None:
        return Result(name=name, device=device, figure=None, unit=unit, status=status, error=error)
    if not math.isfinite(out.figure):
        return Result(
            name=name,
            device=device,
            figure=None,
            unit=unit,
            status="failed",
            error=f"non-finite figure {out.figure}",
        )
    extra = dict(out.extra)
    flags = flags_for(out)
    peak = out.peak
    if peak and out.figure > peak:
        # Measured beyond the ceiling: the ceiling is wrong (e.g. a CPU whose boost clock
        # the OS does not report), not the measurement, which was verified and timed.
        flags.append("above-peak")
    extra["flags"] = flags
    return Result(
        name=name,
        device=device,
        figure=out.figure,
        unit=unit,
        status="ok",
        stats=out.measurement.stats if out.measurement is not None else None,
        peak_fraction=out.figure / peak if peak else None,
        extra=extra,
    )
