"""Background NVML sampling while a GPU benchmark runs: clocks, power, heat, throttling.

A thread reads one sample every ``interval_s`` (default 50 ms) from
``gpuscout.probe.nvml.nvml_session`` and stamps it with ``time.monotonic`` (the
``clock`` seam: tests stamp with a fake one); ``window(t0, t1)`` summarises the samples
taken while one case was timed. Everything is
fail-soft: without NVML the summary says why, and the benchmark still runs.

The NVML index is not always the torch index (CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER:
optimum-benchmark #136), so the runner maps them by UUID before building a monitor.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from gpuscout.probe.clock_events import SW_POWER_CAP

SessionFactory = Callable[[], AbstractContextManager[Any]]


def _default_session() -> tuple[SessionFactory, int]:
    from gpuscout.probe.nvml import THROTTLE_MASK, nvml_session

    return nvml_session, int(THROTTLE_MASK)


class NvmlMonitor:
    """Samples one GPU in a daemon thread between ``start()`` and ``stop()``."""

    def __init__(
        self,
        nvml_index: int,
        *,
        interval_s: float = 0.05,
        session_factory: SessionFactory | None = None,
        throttle_mask: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nvml_index = nvml_index
        self.interval_s = interval_s
        # The stamps must be on the clock the callers' window(t0, t1) is read on.
        self._clock = clock
        self._factory = session_factory
        self._mask = throttle_mask
        self._samples: deque[tuple[float, Any]] = deque(maxlen=200_000)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def __enter__(self) -> NvmlMonitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._factory is None:
            try:
                self._factory, mask = _default_session()
                if self._mask is None:
                    self._mask = mask
            except Exception as exc:  # no probe module, no pynvml: run without samples
                self.error = f"NVML unavailable: {exc}"
                return
        self._thread = threading.Thread(target=self._loop, name="gpuscout-nvml", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def _loop(self) -> None:
        assert self._factory is not None
        try:
            with self._factory() as session:
                if not getattr(session, "ok", True):  # no driver: say why, sample nothing
                    self.error = f"NVML unavailable: {getattr(session, 'error', None)}"
                    return
                while True:
                    sample = session.sample(self.nvml_index)
                    with self._lock:
                        self._samples.append((self._clock(), sample))
                    if self._stop.wait(self.interval_s):
                        return
        except Exception as exc:  # a lost GPU or a driver error ends sampling, not the run
            self.error = f"NVML sampling stopped: {type(exc).__name__}: {exc}"

    def samples_between(self, t0: float, t1: float) -> list[Any]:
        """Samples stamped in [t0, t1]; if none (a case shorter than the interval), the
        first one after t0, else the last one before it."""
        with self._lock:
            items = list(self._samples)
        inside = [s for t, s in items if t0 <= t <= t1]
        if inside:
            return inside
        after = [s for t, s in items if t > t1]
        if after:
            return after[:1]
        before = [s for t, s in items if t < t0]
        return before[-1:]

    def window(self, t0: float, t1: float) -> Mapping[str, Any]:
        return summarise_samples(self.samples_between(t0, t1), self._mask, self.error)


def _vals(samples: list[Any], attr: str) -> list[float]:
    out = []
    for s in samples:
        v = getattr(s, attr, None)
        if v is not None:
            out.append(float(v))
    return out


def summarise_samples(
    samples: list[Any], throttle_mask: int | None, error: str | None = None
) -> dict[str, Any]:
    """min/median SM clock, max power, max temperature, OR of clock-event reasons."""
    summary: dict[str, Any] = {"samples": len(samples)}
    if error:
        summary["error"] = error
    if not samples:
        return summary
    sm = _vals(samples, "sm_clock_mhz")
    power = _vals(samples, "power_w")
    temp = _vals(samples, "temperature_c")
    reasons = 0
    seen_reasons = False
    for s in samples:
        r = getattr(s, "clock_event_reasons", None)
        if r is not None:
            reasons |= int(r)
            seen_reasons = True
    summary["sm_clock_min_mhz"] = min(sm) if sm else None
    summary["sm_clock_median_mhz"] = statistics.median(sm) if sm else None
    summary["power_max_w"] = max(power) if power else None
    summary["temperature_max_c"] = max(temp) if temp else None
    summary["clock_event_reasons"] = reasons if seen_reasons else None
    util = _vals(samples, "gpu_util_pct")
    summary["gpu_util_median_pct"] = statistics.median(util) if util else None
    # A benchmark that loads the card fully meets its power limit: that lowers the clocks
    # below the boost the datasheet peak assumes, and is said ("power_capped"), but it is
    # not a fault. "throttled" is what is: heat, a hardware slowdown, the power brake.
    faults = (throttle_mask or 0) & ~SW_POWER_CAP
    summary["throttled"] = bool(seen_reasons and reasons & faults)
    summary["power_capped"] = bool(seen_reasons and reasons & (throttle_mask or 0) & SW_POWER_CAP)
    return summary
