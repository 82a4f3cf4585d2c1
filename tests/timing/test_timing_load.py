"""The host's background load over a measurement, and when it makes figures untrustworthy."""

from __future__ import annotations

import sys
import time

import pytest

from gpuscout._types import Result, Stats
from gpuscout.timing import load
from gpuscout.timing.load import CpuCounters, disturbance, host_load, mark_busy, others_pct
from helpers.busy_host import busy_neighbours


def stats(noisy: bool, n: int = 5) -> Stats:
    return Stats(n, 1.0, 1.0, 0.9, 1.1, 0.9, 1.1, 0.3 if noisy else 0.01, 0.1, noisy)


def result(
    flags: tuple[str, ...] = (), *, noisy: bool | None = None, status: str = "ok", n: int = 5
) -> Result:
    extra: dict[str, object] = {"flags": list(flags)} if flags else {}
    if "host-busy" in flags:
        extra["host_busy_pct"] = 48.0
    timing = None if noisy is None else stats(noisy, n)
    return Result("x", "cpu", 1.0, "GB/s", status, timing, extra=extra)


# -- the arithmetic, from counters given by hand --------------------------------------


def test_others_are_all_busy_time_less_our_own_per_cpu_second() -> None:
    # Hand count: 3.0 CPU-s busy on the host, 1.0 of them ours, over 1.0 s on 2 CPUs:
    # others used 2.0 of the 2.0 CPU-s there were, 100%.
    a = CpuCounters(busy_s=10.0, own_s=5.0, wall_s=100.0, cpus=2)
    b = CpuCounters(busy_s=13.0, own_s=6.0, wall_s=101.0, cpus=2)
    assert others_pct(a, b) == pytest.approx(100.0)
    # 1.5 busy, 1.0 ours, 2 s, 4 CPUs: 0.5 / 8 = 6.25%.
    c = CpuCounters(busy_s=11.5, own_s=6.0, wall_s=102.0, cpus=4)
    assert others_pct(a, c) == pytest.approx(6.25)
    # Our own time counted in another tick than the host's: never below zero.
    d = CpuCounters(busy_s=10.5, own_s=6.0, wall_s=101.0, cpus=2)
    assert others_pct(a, d) == 0.0
    assert others_pct(a, a) is None  # no time passed: no reading


def test_host_load_reads_the_counters_at_both_ends_and_survives_a_broken_proc() -> None:
    readings = iter(
        [
            CpuCounters(busy_s=0.0, own_s=0.0, wall_s=0.0, cpus=2),
            CpuCounters(busy_s=1.0, own_s=0.0, wall_s=1.0, cpus=2),
        ]
    )
    with host_load(lambda: next(readings)) as got:
        assert got.busy_pct is None  # filled in only when the block ends
    assert got.busy_pct == pytest.approx(50.0)

    def broken() -> CpuCounters:
        raise OSError("no /proc")

    with host_load(broken) as none:
        pass
    assert none.busy_pct is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux CPU counters")
def test_cpu_bound_neighbours_are_seen_as_others_load() -> None:
    with busy_neighbours(), host_load() as got:
        time.sleep(1.0)  # we sleep: nearly all the busy time is theirs
    # They are our children but not yet reaped, so none of their time counts as ours;
    # with one per CPU they hold close to 100% of the host.
    assert got.busy_pct is not None and got.busy_pct > load.HOST_BUSY_PCT


def test_host_busy_pct_is_a_percentage() -> None:
    pct = load.host_busy_pct(0.05)
    assert pct is None or 0.0 <= pct <= 100.0


def test_host_busy_pct_reads_the_counters_across_its_interval() -> None:
    # Fake time: the sleep moves the wall clock; others keep 3 of 4 CPUs busy meanwhile.
    now = [100.0]

    def read() -> CpuCounters:
        return CpuCounters(busy_s=3.0 * now[0], own_s=0.0, wall_s=now[0], cpus=4)

    def sleep(seconds: float) -> None:
        now[0] += seconds

    assert load.host_busy_pct(0.5, read=read, sleep=sleep) == pytest.approx(75.0)
    assert now[0] == pytest.approx(100.5)  # it slept the interval it was given


# -- flags on results -----------------------------------------------------------------


def test_busy_host_is_flagged() -> None:
    ok = Result("launch/dispatch", "cpu", 2.0, "us", extra={"flags": ["noisy"]})
    skipped = Result("transfer", "cpu", None, "GB/s", "skipped")
    busy = mark_busy([ok, skipped], 55.0)
    assert busy[0].extra["flags"] == ["noisy", "host-busy"]
    assert busy[0].extra["host_busy_pct"] == 55.0
    assert "flags" not in busy[1].extra  # nothing was timed, nothing to distrust
    calm = mark_busy([ok], 3.0)
    assert calm[0].extra["flags"] == ["noisy"]
    assert calm[0].extra["host_busy_pct"] == 3.0
    assert mark_busy([ok], None) == [ok]
    twice = mark_busy(mark_busy([ok], 55.0), 60.0)
    assert twice[0].extra["flags"] == ["noisy", "host-busy"]  # flagged once


# -- when results are disturbed: one row per rule and per boundary ----------------------


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([result(), result()], None),
        ([result(("host-busy",)), result()], "1 of 2 ran beside busy processes"),
        ([result(("throttled",)), result()], "1 of 2 on a throttled GPU"),
        ([result(("power-capped",)), result()], None),  # a healthy card under full load
        ([result(("above-peak",))], None),
        # noise alone: only when most timed results are noisy (exactly half is not most)
        ([result(noisy=True), result(noisy=False)], None),
        ([result(noisy=True), result(noisy=True), result(noisy=False)], "2 of 3 noisy"),
        ([result(noisy=True)], None),  # one timed result cannot make a majority rule
        # two samples are flagged noisy by rule (timing/stats.py), not by the machine
        ([result(noisy=True, n=2), result(noisy=True, n=2), result(noisy=False)], None),
        ([result(noisy=True, n=3), result(noisy=True, n=3), result(noisy=False)], "2 of 3"),
        # failed results measured nothing and are not counted
        ([result(("host-busy",), status="failed"), result()], None),
    ],
)
def test_disturbance_rules(results: list[Result], expected: str | None) -> None:
    got = disturbance(results)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        line = got.line()
        assert line.startswith("measurements disturbed: ")
        assert expected in line
        assert line.endswith("Rerun on a quiet machine before trusting them.")


def test_the_line_names_the_load_others_put_on_the_cpus() -> None:
    got = disturbance([result(("host-busy",)), result(("host-busy",))])
    assert got is not None and got.busy == 2 and got.total == 2
    assert "(others used up to 48% of the CPUs)" in got.line()


def test_the_record_counts_each_disturbance_and_the_worst_load() -> None:
    loud = result(("host-busy",), noisy=True)
    louder = Result("y", "cpu", 1.0, "GB/s", extra={"flags": ["host-busy"], "host_busy_pct": 75})
    unknown_load = Result(
        "z", "cpu", 1.0, "GB/s", extra={"flags": ("host-busy",), "host_busy_pct": "?"}
    )
    hot = result(("throttled",), noisy=True)
    odd_flags = Result("w", "cpu", 1.0, "GB/s", extra={"flags": "host-busy"})  # not a list
    failed = result(("throttled",), noisy=True, status="failed")
    got = disturbance([loud, louder, unknown_load, hot, odd_flags, failed, result(noisy=False)])
    # 7 results, 6 measured; 3 busy (the third's load unknown); 2 of 3 timed are noisy
    assert got == load.Disturbance(busy=3, throttled=1, noisy=2, total=6, max_busy_pct=75.0)
    assert got.line() == (
        "measurements disturbed: 3 of 6 ran beside busy processes (others used up to 75% of "
        "the CPUs); 1 of 6 on a throttled GPU; 2 of 6 noisy. "
        "Rerun on a quiet machine before trusting them."
    )
    # half noisy is not most: the noise is not counted, the throttling is
    half = disturbance([result(("throttled",), noisy=True), result(noisy=False)])
    assert half == load.Disturbance(busy=0, throttled=1, noisy=0, total=2, max_busy_pct=None)
    alone = disturbance([unknown_load])
    assert alone == load.Disturbance(busy=1, throttled=0, noisy=0, total=1, max_busy_pct=None)
    assert alone.line() == (
        "measurements disturbed: 1 of 1 ran beside busy processes. "
        "Rerun on a quiet machine before trusting them."
    )
