"""Host <-> device copy bandwidth over PCIe/NVLink-C2C: pageable and pinned memory.

Pageable copies are what ``tensor.to("cuda")`` does by default: the driver stages them
through its own pinned buffer, so they are slower and block the host. Pinned copies
(``pin_memory=True`` in a DataLoader) go straight by DMA. Both are measured so the report
can show what pinning buys. Each size is checked first by a round trip (host -> device ->
host) that must return the very same bytes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from gpuscout._types import Result
from gpuscout.bench.benchmarks import register
from gpuscout.bench.context import BenchContext, CaseOutput, VerificationError, run_case, timed

MiB = 2**20
SIZES_BYTES = tuple(s * MiB for s in (1, 4, 16, 64, 256, 1024))
QUICK_SIZES_BYTES = (16 * MiB, 256 * MiB)
_PATTERN_BYTES = 1 * MiB


def size_label(nbytes: int) -> str:
    return f"{nbytes // 2**30}GiB" if nbytes >= 2**30 else f"{nbytes // MiB}MiB"


def _host_data(torch: Any, nbytes: int, pinned: bool, gen: Any) -> Any:
    """Random bytes without generating a GiB of random numbers: one random MiB, each
    further MiB shifted by its index so a misplaced chunk cannot pass the check."""
    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned)
    pat_len = min(_PATTERN_BYTES, nbytes)
    pattern = torch.randint(0, 256, (pat_len,), generator=gen, dtype=torch.uint8)
    rows = host.view(-1, pat_len)
    offsets = (torch.arange(rows.shape[0]) % 256).to(torch.uint8).unsqueeze(1)
    torch.add(pattern.unsqueeze(0), offsets, out=rows)
    return host


def _case(
    torch: Any, device: str, direction: str, pinned: bool, nbytes: int, quick: bool, ctx: Any
) -> CaseOutput:
    gen = torch.Generator().manual_seed(ctx.seed + nbytes)
    src = _host_data(torch, nbytes, pinned, gen)
    dev = torch.empty(nbytes, dtype=torch.uint8, device=device)
    back = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned)
    dev.copy_(src, non_blocking=pinned)
    back.copy_(dev, non_blocking=pinned)
    torch.cuda.synchronize(device)
    if not torch.equal(back, src):
        bad = int((back != src).sum())
        raise VerificationError(f"round trip changed {bad} of {nbytes} bytes")
    op: Callable[[], object]
    if direction == "h2d":
        op = functools.partial(dev.copy_, src, non_blocking=pinned)
    else:
        op = functools.partial(back.copy_, dev, non_blocking=pinned)
    from gpuscout.timing import CudaEventClock

    m, extra = timed(op, ctx, quick, CudaEventClock(device))
    figure = nbytes / m.stats.median_s / 1e9
    peak = ctx.ceiling.pcie_gbs
    extra.update(
        {
            "direction": direction,
            "pinned": pinned,
            "bytes": nbytes,
            "peak": peak,
            "ceiling_source": ctx.ceiling.source,
        }
    )
    return CaseOutput(figure=figure, measurement=m, peak=peak, extra=extra)


@register("transfer")
def run(
    device: str,
    quick: bool,
    ctx: BenchContext | None = None,
    *,
    sizes_bytes: tuple[int, ...] | None = None,
) -> list[Result]:
    """H2D and D2H GB/s, pageable and pinned, for each size; "skipped" on the CPU."""
    if not device.startswith("cuda"):
        return [
            Result(
                "transfer",
                device,
                None,
                "GB/s",
                "skipped",
                error="host-device transfers need a GPU",
            )
        ]
    import torch

    context = ctx if ctx is not None else BenchContext()
    if sizes_bytes is None:
        sizes_bytes = QUICK_SIZES_BYTES if quick else SIZES_BYTES
    results = []
    for nbytes in sizes_bytes:
        for direction in ("h2d", "d2h"):
            for pinned in (False, True):
                name = f"transfer/{direction}/{'pinned' if pinned else 'pageable'}"
                body = functools.partial(
                    _case, torch, device, direction, pinned, nbytes, quick, context
                )
                results.append(
                    run_case(f"{name}/{size_label(nbytes)}", device, "GB/s", context, body)
                )
    return results
