"""Per-op overhead: how many tiny kernels a GPU takes per second, and how long a host
round trip to the GPU takes; on the CPU, the dispatch cost of one tiny op.

These are the fixed costs that make small models slow on any device (keras #249: MNIST
2x slower on a GPU); the predictor uses them as the host-side term. Each batch runs
``BATCH`` in-place adds on a one-element tensor, so the result (the count) checks that
every launch really ran.
"""

from __future__ import annotations

import functools
from typing import Any

from gpuscout._types import Result
from gpuscout.bench.benchmarks import register
from gpuscout.bench.context import BenchContext, CaseOutput, VerificationError, run_case, timed

BATCH = 200


def _batch(x: Any) -> None:
    for _ in range(BATCH):
        x.add_(1.0)


def _check_batch(torch: Any, x: Any, device: str) -> None:
    x.zero_()
    _batch(x)
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    got = float(x.item())
    if got != float(BATCH):
        raise VerificationError(f"{BATCH} launches left {got}, expected {BATCH}")


def _launches_case(torch: Any, device: str, quick: bool, ctx: BenchContext) -> CaseOutput:
    """GPU launches/s: a batch of launches then one synchronize, timed on the host, so
    the figure is launches completed per second (host launch cost or GPU execution,
    whichever is slower)."""
    from gpuscout.timing import PerfCounterClock

    x = torch.zeros(1, device=device)
    _check_batch(torch, x, device)
    clock = PerfCounterClock(sync=functools.partial(torch.cuda.synchronize, device))
    m, extra = timed(functools.partial(_batch, x), ctx, quick, clock)
    extra.update({"batch": BATCH})
    return CaseOutput(figure=BATCH / m.stats.median_s, measurement=m, extra=extra)


def _sync_case(torch: Any, device: str, quick: bool, ctx: BenchContext) -> CaseOutput:
    """GPU round trip: launch one tiny kernel and wait for it, in microseconds."""
    from gpuscout.timing import PerfCounterClock

    x = torch.zeros(1, device=device)
    _check_batch(torch, x, device)
    clock = PerfCounterClock(sync=functools.partial(torch.cuda.synchronize, device))
    m, extra = timed(functools.partial(x.add_, 1.0), ctx, quick, clock)
    extra.update({"what": "one tiny kernel launch + torch.cuda.synchronize"})
    return CaseOutput(figure=m.stats.median_s * 1e6, measurement=m, extra=extra)


def _dispatch_case(torch: Any, quick: bool, ctx: BenchContext) -> CaseOutput:
    """CPU: eager-mode dispatch cost of one tiny op, in microseconds."""
    x = torch.zeros(1)
    _check_batch(torch, x, "cpu")
    m, extra = timed(functools.partial(_batch, x), ctx, quick)
    extra.update({"batch": BATCH, "what": "one in-place add on a 1-element CPU tensor"})
    return CaseOutput(figure=m.stats.median_s / BATCH * 1e6, measurement=m, extra=extra)


@register("launch")
def run(device: str, quick: bool, ctx: BenchContext | None = None) -> list[Result]:
    """Launch rate and synchronize latency on a GPU; per-op dispatch cost on the CPU."""
    import torch

    context = ctx if ctx is not None else BenchContext()
    if not device.startswith("cuda"):
        body = functools.partial(_dispatch_case, torch, quick, context)
        return [run_case("launch/dispatch", device, "us", context, body)]
    return [
        run_case(
            "launch/launches",
            device,
            "launches/s",
            context,
            functools.partial(_launches_case, torch, device, quick, context),
        ),
        run_case(
            "launch/sync",
            device,
            "us",
            context,
            functools.partial(_sync_case, torch, device, quick, context),
        ),
    ]
