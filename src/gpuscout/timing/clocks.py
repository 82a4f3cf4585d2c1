"""Clocks that ``measure`` times with: host perf counter, CUDA events, and a fake.

A clock records one interval per ``start``/``stop`` pair and hands them all back in
``collect``. That split is what lets the CUDA clock record an event pair per iteration
and synchronize fully only once at the end: reading an event's time forces a wait for
the GPU, and waiting every iteration would put host latency between kernels and hide the
queueing that real training relies on (the CUDA clock only waits for a call several
back, which keeps the queue full). ``now_ns`` is always host time; ``measure`` uses it
only to decide when to stop looping, never as a sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """What ``timing.measure`` needs from a clock."""

    name: str

    def now_ns(self) -> int:
        """Host time in integer nanoseconds, for loop control only."""
        ...

    def start(self) -> None:
        """Mark the start of one timed call."""
        ...

    def stop(self) -> None:
        """Mark the end of the call started by the last ``start``."""
        ...

    def collect(self) -> list[float]:
        """Wait for pending work, return the intervals (s) recorded since the last collect."""
        ...

    def synchronize(self) -> None:
        """Wait until all work issued so far has finished (a no-op on the host)."""
        ...


class PerfCounterClock:
    """Host wall time via ``perf_counter_ns``.

    ``sync`` (e.g. ``torch.cuda.synchronize``) is called before each ``stop`` reading when
    device work must be finished to be counted, such as launch-rate measurements.
    ``counter_ns`` is the host counter read; tests pass a fake one that a fake sleep
    advances, so a test of this clock needs no real time to pass.
    """

    name = "perf_counter"

    def __init__(
        self,
        sync: Callable[[], object] | None = None,
        *,
        counter_ns: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self._sync = sync
        self._counter_ns = counter_ns
        self._t0: int | None = None
        self._intervals: list[float] = []

    def now_ns(self) -> int:
        return self._counter_ns()

    def start(self) -> None:
        self._t0 = self._counter_ns()

    def stop(self) -> None:
        if self._sync is not None:
            self._sync()
        t1 = self._counter_ns()
        if self._t0 is None:
            raise RuntimeError("stop() without start()")
        self._intervals.append((t1 - self._t0) / 1e9)
        self._t0 = None

    def collect(self) -> list[float]:
        out, self._intervals = self._intervals, []
        return out

    def synchronize(self) -> None:
        if self._sync is not None:
            self._sync()


class CudaEventClock:
    """GPU time from CUDA event pairs on the device's current stream.

    The host may run ahead of the GPU by at most ``max_in_flight`` timed calls: ``stop``
    waits for the end event of the call that many back. Without that bound the host
    queues work until CUDA's launch queue is full (hundreds of calls), so ``measure``'s
    stop condition, checked on host time, sees only a fraction of the work already
    queued: an 18 ms fp64 matmul asked for 0.5 s would run for seconds, and a slow
    kernel could overrun ``max_time_s`` by minutes. The GPU is not starved by the wait:
    the ``max_in_flight`` later calls are still queued while the host waits.

    torch is imported here, at construction, so importing this module stays free of it.
    """

    name = "cuda_events"

    def __init__(self, device: str | int = "cuda", *, max_in_flight: int | None = 8) -> None:
        import torch

        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1 (or None for no bound)")
        self._torch: Any = torch
        self._device = torch.device(device)
        self._max_in_flight = max_in_flight
        self._pending: Any = None
        self._pairs: list[tuple[Any, Any]] = []

    def now_ns(self) -> int:
        return time.perf_counter_ns()

    def _record(self) -> Any:
        ev = self._torch.cuda.Event(enable_timing=True)
        ev.record(self._torch.cuda.current_stream(self._device))
        return ev

    def start(self) -> None:
        self._pending = self._record()

    def stop(self) -> None:
        if self._pending is None:
            raise RuntimeError("stop() without start()")
        self._pairs.append((self._pending, self._record()))
        self._pending = None
        k = self._max_in_flight
        if k is not None and len(self._pairs) > k:
            # Event.synchronize releases the GIL, so the NVML sampler thread runs meanwhile.
            self._pairs[-1 - k][1].synchronize()

    def collect(self) -> list[float]:
        # The one full synchronize of the loop: after it every event has a timestamp.
        self.synchronize()
        pairs, self._pairs = self._pairs, []
        return [float(s.elapsed_time(e)) / 1e3 for s, e in pairs]  # elapsed_time is in ms

    def synchronize(self) -> None:
        self._torch.cuda.synchronize(self._device)


class FakeClock:
    """A clock that only moves when told to: ``advance(s)`` from inside the timed function.

    Time is kept in integer nanoseconds so that tests can predict exact iteration counts
    without floating-point drift (ten steps of 0.1 s are exactly 1 s here).
    """

    name = "fake"

    def __init__(self) -> None:
        self._now_ns = 0
        self._t0: int | None = None
        self._intervals: list[float] = []
        self.collects = 0  # how many times collect() ran: the "synchronize" count

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not run backwards")
        self._now_ns += round(seconds * 1e9)

    def now_ns(self) -> int:
        return self._now_ns

    def start(self) -> None:
        self._t0 = self._now_ns

    def stop(self) -> None:
        if self._t0 is None:
            raise RuntimeError("stop() without start()")
        self._intervals.append((self._now_ns - self._t0) / 1e9)
        self._t0 = None

    def collect(self) -> list[float]:
        self.collects += 1
        out, self._intervals = self._intervals, []
        return out

    def synchronize(self) -> None:
        pass


def clock_for(device: object) -> Clock:
    """The clock for work on ``device`` (a name like "cuda:0" or a torch.device): CUDA
    events on a GPU, so the time is the device's and not the host's queueing; the host's
    perf counter elsewhere."""
    if str(device).startswith("cuda"):
        return CudaEventClock(str(device))
    return PerfCounterClock()
