"""``measure``: the one timing function every benchmark and workload goes through.

The contract (after optimum-benchmark's latency tracker and TorchBench's run_one_step):

1. The first call is timed on its own and reported as ``cold_s``: it pays for lazy
   initialisation, autotuning and allocation, which a user sees once, not every step.
2. ``warmup`` more calls run untimed, so clocks ramp up and caches fill.
3. Timed calls repeat until *both* ``min_iters`` calls and ``min_time_s`` seconds are
   done, or until a safety cap (``max_iters`` or ``max_time_s``) stops the loop first.
   Warm-up calls never count towards the measured ones (DLE #834 reported a throughput
   of 0 when they overlapped).
4. Every timed call is one sample; all samples are kept next to their summary.

Total calls to ``fn`` = 1 (cold) + ``warmup`` + ``Measurement.stats.n``.
"""

from __future__ import annotations

from collections.abc import Callable

from gpuscout._types import Measurement
from gpuscout.timing.clocks import Clock, PerfCounterClock
from gpuscout.timing.stats import NOISY_REL_IQR, summarise


def measure(
    fn: Callable[[], object],
    *,
    clock: Clock | None = None,
    warmup: int = 3,
    min_iters: int = 10,
    min_time_s: float = 0.5,
    max_iters: int = 10_000,
    max_time_s: float = 30.0,
    noisy_rel_iqr: float = NOISY_REL_IQR,
) -> Measurement:
    """Time ``fn`` (no arguments; its return value is ignored) and summarise the samples.

    ``clock`` defaults to the host perf counter; pass ``CudaEventClock(device)`` for GPU
    work. The stop condition is checked on host time; on a GPU the host runs ahead of the
    device by at most the calls the clock lets it queue (``CudaEventClock``'s
    ``max_in_flight``), so the loop overruns its stop condition by at most that many calls.
    """
    if warmup < 0:
        raise ValueError("warmup must be >= 0")
    if min_iters < 1:
        raise ValueError("min_iters must be >= 1")
    if max_iters < min_iters:
        raise ValueError("max_iters must be >= min_iters")
    if min_time_s < 0 or max_time_s <= 0:
        raise ValueError("min_time_s must be >= 0 and max_time_s > 0")
    clk: Clock = clock if clock is not None else PerfCounterClock()

    clk.start()
    fn()
    clk.stop()
    cold = clk.collect()
    if len(cold) != 1:
        raise RuntimeError(f"clock returned {len(cold)} intervals for the cold call")

    for _ in range(warmup):
        fn()
    # Warm-up work must be finished before the measured loop's host time starts.
    clk.synchronize()

    min_ns = round(min_time_s * 1e9)
    max_ns = round(max_time_s * 1e9)
    t0 = clk.now_ns()
    n = 0
    while True:
        clk.start()
        fn()
        clk.stop()
        n += 1
        elapsed = clk.now_ns() - t0
        if n >= min_iters and elapsed >= min_ns:
            break
        if n >= max_iters or elapsed >= max_ns:
            break
    samples = clk.collect()
    if len(samples) != n:
        raise RuntimeError(f"clock returned {len(samples)} intervals for {n} calls")
    return Measurement(
        stats=summarise(samples, noisy_rel_iqr=noisy_rel_iqr),
        samples_s=tuple(samples),
        cold_s=cold[0],
        warmup_iters=warmup,
        clock=clk.name,
    )
