"""The timing core: statistics on known samples, measure() on a fake clock and on sleep."""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from gpuscout.timing import FakeClock, PerfCounterClock, measure, percentile, summarise

# -- statistics ---------------------------------------------------------------------


def test_summarise_known_samples() -> None:
    s = summarise([float(x) for x in range(10, 0, -1)])  # 1..10, unsorted on purpose
    assert s.n == 10
    assert s.median_s == pytest.approx(5.5)
    assert s.mean_s == pytest.approx(5.5)
    assert (s.min_s, s.max_s) == (1.0, 10.0)
    assert s.p10_s == pytest.approx(1.9)
    assert s.p90_s == pytest.approx(9.1)
    assert s.iqr_s == pytest.approx(7.75 - 3.25)
    assert s.cv == pytest.approx(statistics.stdev(range(1, 11)) / 5.5)
    assert s.noisy  # IQR is 82% of the median


def test_quartiles_match_statistics_inclusive_method() -> None:
    xs = [0.3, 1.7, 2.2, 2.9, 3.1, 4.8, 5.0, 7.5, 9.9]
    q1, _q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    assert percentile(xs, 0.25) == pytest.approx(q1)
    assert percentile(xs, 0.75) == pytest.approx(q3)
    assert summarise(xs).iqr_s == pytest.approx(q3 - q1)


def test_tight_samples_are_not_noisy_and_wide_ones_are() -> None:
    tight = summarise([1.00, 1.01, 0.99, 1.00, 1.02, 0.995])
    assert not tight.noisy
    assert tight.cv < 0.02
    wide = summarise([1.0, 1.3, 0.8, 1.5, 0.7, 1.2])
    assert wide.noisy


def test_one_outlier_does_not_make_a_run_noisy() -> None:
    s = summarise([1.0] * 19 + [5.0])
    assert s.cv > 0.5  # the CV sees the outlier ...
    assert not s.noisy  # ... the IQR rule does not
    assert s.median_s == 1.0


def test_too_few_samples_are_noisy() -> None:
    assert summarise([1.0]).noisy
    assert summarise([1.0, 1.0]).noisy
    assert not summarise([1.0, 1.0, 1.0]).noisy
    one = summarise([2.5])
    assert one.median_s == one.p10_s == one.p90_s == 2.5
    assert one.cv == 0.0


def test_summarise_rejects_empty_and_non_finite() -> None:
    with pytest.raises(ValueError):
        summarise([])
    with pytest.raises(ValueError):
        summarise([1.0, math.nan])
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


# -- measure() on a fake clock --------------------------------------------------------


def _fixed(clock: FakeClock, dt: float) -> tuple[list[int], Callable[[], None]]:
    calls = [0]

    def fn() -> None:
        calls[0] += 1
        clock.advance(dt)

    return calls, fn


@pytest.mark.parametrize(
    ("min_iters", "min_time_s", "expected"),
    [
        (5, 1.0, 10),  # time decides: 10 x 0.1 s
        (20, 1.0, 20),  # count decides
        (1, 0.0, 1),
        (10, 1.0, 10),  # both met at once
        (3, 0.25, 3),  # 0.3 s after 3 calls
        (1, 0.35, 4),
    ],
)
def test_iteration_counts(min_iters: int, min_time_s: float, expected: int) -> None:
    clock = FakeClock()
    calls, fn = _fixed(clock, 0.1)
    m = measure(
        fn,
        clock=clock,
        warmup=3,
        min_iters=min_iters,
        min_time_s=min_time_s,
        max_iters=1000,
        max_time_s=100.0,
    )
    assert m.stats.n == expected
    assert len(m.samples_s) == expected
    assert calls[0] == 1 + 3 + expected  # cold + warm-up + measured
    assert m.warmup_iters == 3
    assert m.clock == "fake"
    assert all(s == pytest.approx(0.1) for s in m.samples_s)


def test_safety_caps_stop_the_loop() -> None:
    clock = FakeClock()
    _, fn = _fixed(clock, 0.1)
    by_count = measure(fn, clock=clock, warmup=0, min_iters=5, min_time_s=100, max_iters=50)
    assert by_count.stats.n == 50
    by_time = measure(
        fn,
        clock=clock,
        warmup=0,
        min_iters=1000,
        min_time_s=0,
        max_iters=10_000,
        max_time_s=2.0,
    )
    assert by_time.stats.n == 20  # the time cap wins even before min_iters


def test_cold_call_and_warmup_are_kept_out_of_the_samples() -> None:
    clock = FakeClock()
    durations = iter([5.0, 1.0, 1.0, 1.0])  # cold, then three slow warm-up calls

    def fn() -> None:
        clock.advance(next(durations, 0.1))

    m = measure(fn, clock=clock, warmup=3, min_iters=2, min_time_s=1.0, max_time_s=100)
    assert m.cold_s == pytest.approx(5.0)
    assert m.stats.n == 10  # the warm-up's 3 s did not count towards min_time_s
    assert m.stats.median_s == pytest.approx(0.1)
    assert m.stats.max_s == pytest.approx(0.1)


def test_samples_are_collected_once_after_the_loop() -> None:
    clock = FakeClock()
    _, fn = _fixed(clock, 0.01)
    measure(fn, clock=clock, warmup=2, min_iters=30, min_time_s=0)
    assert clock.collects == 2  # one for the cold call, one at the very end


def test_raw_samples_are_kept_in_order() -> None:
    clock = FakeClock()
    seq = iter([1.0, 0.1, 0.2, 0.3, 0.4, 0.5])  # cold call first

    def fn() -> None:
        clock.advance(next(seq))

    m = measure(fn, clock=clock, warmup=0, min_iters=5, min_time_s=0)
    assert m.samples_s == pytest.approx((0.1, 0.2, 0.3, 0.4, 0.5))
    assert m.stats.median_s == pytest.approx(0.3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"warmup": -1},
        {"min_iters": 0},
        {"min_iters": 10, "max_iters": 5},
        {"min_time_s": -1.0},
        {"max_time_s": 0.0},
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        measure(lambda: None, clock=FakeClock(), **kwargs)


def test_fake_clock_refuses_to_go_back() -> None:
    with pytest.raises(ValueError):
        FakeClock().advance(-1)


# -- measure() on real time ------------------------------------------------------------


def test_measure_sleep_within_tolerance_bands() -> None:
    # Only what holds however loaded the machine is: a sleep never returns early, so
    # ten 10 ms sleeps always reach 0.1 s. How far a sleep overshoots is up to the
    # scheduler; the fake-time tests below pin that down.
    m = measure(lambda: time.sleep(0.01), warmup=1, min_iters=5, min_time_s=0.1)
    assert m.clock == "perf_counter"
    assert 5 <= m.stats.n <= 11  # 0.1 s of 10 ms sleeps, a little overshoot allowed
    assert all(s >= 0.0095 for s in m.samples_s)  # sleep never returns early
    assert m.stats.median_s >= 0.0095
    assert m.stats.p10_s <= m.stats.median_s <= m.stats.p90_s
    assert m.cold_s >= 0.0095


class FakeCounter:
    """A perf counter in integer nanoseconds that only a fake ``sleep`` moves; each sleep
    overshoots by the next of ``overshoot_s`` (in turn), as a busy scheduler would."""

    def __init__(self, overshoot_s: Sequence[float] = (0.0,)) -> None:
        self.ns = 0
        self._overshoot = itertools.cycle(overshoot_s)

    def __call__(self) -> int:
        return self.ns

    def sleep(self, seconds: float) -> None:
        self.ns += round((seconds + next(self._overshoot)) * 1e9)


@pytest.mark.parametrize(
    ("overshoot_s", "n", "median_s", "cold_s"),
    [
        # A quiet machine: ten exact 10 ms sleeps make the 0.1 s.
        ((0.0,), 10, 0.010, 0.010),
        # A loaded one: sleeps of 10, 12, 45 ms in turn. Cold 10, warm-up 12; then
        # 45 + 10 + 12 + 45 + 10 = 122 ms >= 0.1 s at the 5th call, which is min_iters.
        ((0.0, 0.002, 0.035), 5, 0.012, 0.010),
    ],
)
def test_measure_sleep_on_the_perf_counter_clock_in_fake_time(
    overshoot_s: tuple[float, ...], n: int, median_s: float, cold_s: float
) -> None:
    counter = FakeCounter(overshoot_s)
    clock = PerfCounterClock(counter_ns=counter)
    m = measure(lambda: counter.sleep(0.01), clock=clock, warmup=1, min_iters=5, min_time_s=0.1)
    assert m.clock == "perf_counter"
    assert m.stats.n == n
    assert 5 <= m.stats.n <= 11
    assert all(s >= 0.0095 for s in m.samples_s)
    assert m.stats.median_s == pytest.approx(median_s)
    assert 0.0095 <= m.stats.median_s <= 0.05  # a loaded machine stays in the band
    assert m.stats.p10_s <= m.stats.median_s <= m.stats.p90_s
    assert m.cold_s == pytest.approx(cold_s)


def test_perf_counter_clock_calls_sync_before_reading() -> None:
    syncs: list[int] = []
    clock = PerfCounterClock(sync=lambda: syncs.append(1))
    m = measure(lambda: None, clock=clock, warmup=2, min_iters=4, min_time_s=0)
    # one per timed call (cold + measured) plus one after the warm-up
    assert len(syncs) == 1 + m.stats.n + 1
