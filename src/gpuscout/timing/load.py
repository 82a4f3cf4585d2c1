"""How much other processes used the CPUs while something was measured, and what that
means for the figures.

A measurement taken beside busy neighbours is not a measurement of this machine: on a
small host one busy process stalls every OpenMP barrier (matmul was seen 50x slower),
and two runs minutes apart gave opposite verdicts. So every result records the host's
background load over its own measurement, and ``disturbance`` says, before anything
else is concluded, when the figures cannot be trusted.

The load is read from the kernel's CPU counters (through psutil): busy time of all
CPUs, minus what this process and its finished child processes (a workload's worker)
used in the same span, as a share of all CPUs. Steal time counts as busy: another
virtual machine had our CPU.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gpuscout._types import Result
from gpuscout.timing.stats import MIN_SAMPLES_FOR_SPREAD

# Other processes using more than this share of all CPUs make a figure untrustworthy: on
# a 2-core machine one busy neighbour (50%) halves what a 2-thread benchmark gets.
HOST_BUSY_PCT = 20.0
HOST_BUSY = "host-busy"
# Flags that mean the hardware did not run at its normal speed. "power-capped" is not one
# of them: a healthy GPU under full load runs at its power limit.
DISTURBING_FLAGS = (HOST_BUSY, "throttled")


def _busy_s(t: Any) -> float:
    # As psutil.cpu_percent counts it: all time but idle and iowait; guest time is already
    # inside user time on Linux.
    total = sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
    return float(total - t.idle - getattr(t, "iowait", 0.0))


@dataclass(frozen=True)
class CpuCounters:
    """One reading of the counters ``host_load`` compares."""

    busy_s: float  # all CPUs, every process
    own_s: float  # this process and its reaped children (a worker, once waited for)
    wall_s: float
    cpus: int


def read_counters() -> CpuCounters:
    psutil: Any = importlib.import_module("psutil")  # untyped: no stubs ship with it
    t = os.times()
    return CpuCounters(
        busy_s=_busy_s(psutil.cpu_times()),
        own_s=t.user + t.system + t.children_user + t.children_system,
        wall_s=time.monotonic(),
        cpus=int(psutil.cpu_count() or 1),
    )


@dataclass
class HostLoad:
    """Filled in when the ``with host_load()`` block ends; ``busy_pct`` None if unreadable."""

    busy_pct: float | None = None


def others_pct(start: CpuCounters, end: CpuCounters) -> float | None:
    """Other processes' share (%) of all CPUs between two readings."""
    wall = end.wall_s - start.wall_s
    if wall <= 0:
        return None
    others = max(0.0, (end.busy_s - start.busy_s) - (end.own_s - start.own_s))
    return min(100.0, 100.0 * others / (wall * max(1, end.cpus)))


@contextmanager
def host_load(read: Callable[[], CpuCounters] = read_counters) -> Iterator[HostLoad]:
    """Other processes' share (%) of all CPUs over the block (``read`` is the seam the
    tests replace)."""
    out = HostLoad()
    try:
        start = read()
    except Exception:  # a broken /proc must not stop a measurement
        yield out
        return
    yield out
    try:
        out.busy_pct = others_pct(start, read())
    except Exception:
        return


def host_busy_pct(
    interval_s: float = 0.25,
    *,
    read: Callable[[], CpuCounters] = read_counters,
    sleep: Callable[[float], object] = time.sleep,
) -> float | None:
    """Other processes' share (%) of all CPUs over the next ``interval_s`` (``read`` and
    ``sleep`` are the seams the tests replace)."""
    with host_load(read) as load:
        sleep(interval_s)
    return load.busy_pct


def mark_busy(results: Sequence[Result], busy_pct: float | None) -> list[Result]:
    """Record the host's background load on each result; flag it when it was high."""
    if busy_pct is None:
        return list(results)
    out = []
    for r in results:
        extra = {**r.extra, "host_busy_pct": round(busy_pct, 1)}
        flags = list(extra.get("flags", []))
        if r.status == "ok" and busy_pct > HOST_BUSY_PCT and HOST_BUSY not in flags:
            extra["flags"] = [*flags, HOST_BUSY]
        out.append(dataclasses.replace(r, extra=extra))
    return out


@dataclass(frozen=True)
class Disturbance:
    """Why a set of results cannot be read as a quiet machine's figures."""

    busy: int  # results measured beside busy processes
    throttled: int  # results on a throttled GPU
    noisy: int  # results whose repeated timings spread too wide
    total: int  # results that measured something
    max_busy_pct: float | None

    def line(self) -> str:
        """One line for the top of a verdict or a report."""
        parts = []
        if self.busy:
            load = (
                f" (others used up to {self.max_busy_pct:.0f}% of the CPUs)"
                if self.max_busy_pct is not None
                else ""
            )
            parts.append(f"{self.busy} of {self.total} ran beside busy processes{load}")
        if self.throttled:
            parts.append(f"{self.throttled} of {self.total} on a throttled GPU")
        if self.noisy:
            parts.append(f"{self.noisy} of {self.total} noisy")
        return (
            "measurements disturbed: "
            + "; ".join(parts)
            + ". Rerun on a quiet machine before trusting them."
        )

    @staticmethod
    def caveat() -> str:
        """A prefix for a sentence built on these figures (a time per run, say)."""
        return "From disturbed measurements, not to be trusted until a quiet rerun: "


def _flags(r: Result) -> list[str]:
    flags = r.extra.get("flags", ())
    return [str(f) for f in flags] if isinstance(flags, (list, tuple)) else []


def disturbance(results: Sequence[Result]) -> Disturbance | None:
    """None when the results look like a quiet machine's, else what disturbed them.

    A busy host or a throttled GPU is direct evidence, so one such result is enough. A
    noisy spread alone happens on a quiet machine too (one context switch, a launch
    overhead in microseconds), so noise counts only when most timed results are noisy;
    and only results with enough samples to show a spread count at all (fewer are
    flagged noisy by rule, whatever the machine did).
    """
    measured = [r for r in results if r.status == "ok"]
    busy = [r for r in measured if HOST_BUSY in _flags(r)]
    throttled = [r for r in measured if "throttled" in _flags(r)]
    noisy = _noisy_when_most_are(measured)
    if not busy and not throttled and not noisy:
        return None
    return Disturbance(
        busy=len(busy),
        throttled=len(throttled),
        noisy=noisy,
        total=len(measured),
        max_busy_pct=_max_load(busy),
    )


def _noisy_when_most_are(measured: Sequence[Result]) -> int:
    """How many timed results are noisy, if most of at least two are; else 0. Only
    results with samples enough to show a spread count."""
    timed = [r.stats for r in measured if r.stats is not None]
    timed = [s for s in timed if s.n >= MIN_SAMPLES_FOR_SPREAD]
    noisy = [s for s in timed if s.noisy]
    return len(noisy) if len(timed) >= 2 and 2 * len(noisy) > len(timed) else 0


def _max_load(busy: Sequence[Result]) -> float | None:
    """The highest load others put on the CPUs, of the results that recorded one."""
    loads = [
        float(r.extra["host_busy_pct"])
        for r in busy
        if isinstance(r.extra.get("host_busy_pct"), (int, float))
    ]
    return max(loads) if loads else None
