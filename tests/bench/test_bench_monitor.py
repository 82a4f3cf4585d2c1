"""NVML sampling during GPU benchmarks, driven by a fake session (no GPU needed)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gpuscout.bench.context import BenchContext, CaseOutput, TimingPolicy, run_case, timed
from gpuscout.bench.monitor import NvmlMonitor, summarise_samples

MASK = 0x4 | 0x8 | 0x20 | 0x40 | 0x80
HW_SLOWDOWN = 0x8
IDLE = 0x1  # "GPU idle": a clock event that is not throttling


@dataclass(frozen=True)
class Sample:
    t_s: float
    sm_clock_mhz: int | None
    power_w: float | None
    temperature_c: int | None
    clock_event_reasons: int | None


def test_summary_of_samples() -> None:
    s = [
        Sample(0, 1980, 650.0, 70, IDLE),
        Sample(0, 1755, 700.0, 78, HW_SLOWDOWN),
        Sample(0, 1830, None, 75, 0),
    ]
    out = summarise_samples(s, MASK)
    assert out["samples"] == 3
    assert out["sm_clock_min_mhz"] == 1755
    assert out["sm_clock_median_mhz"] == 1830
    assert out["power_max_w"] == 700.0
    assert out["temperature_max_c"] == 78
    assert out["clock_event_reasons"] == IDLE | HW_SLOWDOWN
    assert out["throttled"] is True
    calm = summarise_samples([Sample(0, 1980, 300.0, 50, IDLE)], MASK)
    assert calm["throttled"] is False
    assert summarise_samples([], MASK) == {"samples": 0}


def test_the_power_cap_under_full_load_is_said_but_is_not_throttling() -> None:
    capped = summarise_samples([Sample(0, 1755, 699.0, 70, 0x4)], MASK)  # SwPowerCap only
    assert capped["power_capped"] is True and capped["throttled"] is False
    both = summarise_samples(
        [Sample(0, 1400, 699.0, 88, 0x4), Sample(0, 1300, 690, 90, 0x20)], MASK
    )
    assert both["power_capped"] is True and both["throttled"] is True  # SwThermalSlowdown
    assert summarise_samples([Sample(0, 1980, 300.0, 50, 0)], MASK)["power_capped"] is False


class SteppedSession:
    """A fake NVML session that is also the monitor's clock: the k-th sample read (from 1)
    is stamped at second k, whenever the thread gets to run. ``stored(k)`` waits until
    the first k samples are in the monitor, so a test waits on what happened, not on how
    long it took."""

    ok = True

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples
        self.seen: list[int] = []
        self.now = 0.0
        self._reads = threading.Condition()

    def clock(self) -> float:
        return self.now

    def sample(self, index: int) -> Sample:
        with self._reads:
            self.seen.append(index)
            self.now = float(len(self.seen))
            self._reads.notify_all()
        return self.samples[min(len(self.seen), len(self.samples)) - 1]

    def stored(self, k: int) -> bool:
        # One thread samples in order: it reads sample k+1 only after storing sample k.
        with self._reads:
            return self._reads.wait_for(lambda: len(self.seen) > k, timeout=30.0)

    @contextmanager
    def factory(self) -> Iterator[SteppedSession]:
        yield self


def test_monitor_samples_the_mapped_index_in_the_background() -> None:
    samples = [Sample(0, 1980, 500.0, 60, 0), Sample(0, 1700, 690.0, 83, HW_SLOWDOWN)]
    fake = SteppedSession(samples)
    mon = NvmlMonitor(
        3, interval_s=0.005, session_factory=fake.factory, throttle_mask=MASK, clock=fake.clock
    )
    with mon:
        assert fake.stored(2)
    assert set(fake.seen) == {3}
    w = mon.window(0.5, 2.5)  # the first two samples, stamped at 1 s and 2 s
    assert w["samples"] >= 1
    assert w["samples"] == 2
    assert w["throttled"] is True
    assert w["sm_clock_min_mhz"] == 1700
    first = mon.window(0.5, 1.5)
    assert first["samples"] == 1 and first["throttled"] is False


def test_short_window_takes_the_nearest_sample() -> None:
    fake = SteppedSession([Sample(0, 1500, 1.0, 1, 0), Sample(0, 1400, 1.0, 1, 0)])
    mon = NvmlMonitor(0, interval_s=0.005, session_factory=fake.factory, clock=fake.clock)
    with mon:
        assert fake.stored(1)
    now = fake.clock() + 0.5  # after the last sample
    assert mon.window(now, now)["samples"] == 1  # nothing inside: the last one before
    assert mon.window(now, now)["sm_clock_min_mhz"] == 1400
    early = mon.window(0.25, 0.5)  # before the first sample: the first one after
    assert early["samples"] == 1 and early["sm_clock_min_mhz"] == 1500


def test_broken_nvml_does_not_break_the_run() -> None:
    @contextmanager
    def factory() -> Iterator[Any]:
        raise RuntimeError("driver went away")
        yield  # pragma: no cover

    mon = NvmlMonitor(0, session_factory=factory)
    with mon:
        time.sleep(0.01)
    w = mon.window(0.0, time.monotonic())
    assert w["samples"] == 0
    assert "driver went away" in w["error"]


class _ThrottledMonitor:
    def window(self, t0: float, t1: float) -> dict[str, Any]:
        assert t0 <= t1
        return {"samples": 4, "throttled": True, "clock_event_reasons": HW_SLOWDOWN}


def test_throttled_result_is_flagged() -> None:
    ctx = BenchContext(
        timing=TimingPolicy(warmup=0, min_iters=3, min_time_s=0.0), monitor=_ThrottledMonitor()
    )

    def body() -> CaseOutput:
        m, extra = timed(lambda: sum(range(100)), ctx, True)
        return CaseOutput(figure=1.0 / m.stats.median_s, measurement=m, extra=extra)

    r = run_case("x", "cuda:0", "ops/s", ctx, body)
    assert r.status == "ok"
    assert "throttled" in r.extra["flags"]
    assert r.extra["nvml"]["clock_event_reasons"] == HW_SLOWDOWN


def test_noisy_result_is_flagged() -> None:
    from gpuscout.timing import FakeClock

    clock = FakeClock()
    seq = iter([0.1, 0.1, 0.5, 0.1, 0.9, 0.2, 0.7, 0.1])
    ctx = BenchContext(timing=TimingPolicy(warmup=0, min_iters=7, min_time_s=0.0))

    def body() -> CaseOutput:
        m, extra = timed(lambda: clock.advance(next(seq)), ctx, True, clock)
        return CaseOutput(figure=1.0, measurement=m, extra=extra)

    r = run_case("x", "cpu", "s", ctx, body)
    assert r.stats is not None and r.stats.noisy
    assert "noisy" in r.extra["flags"]
