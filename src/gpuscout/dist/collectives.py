"""Collective bandwidth, as nccl-tests measures it: all-reduce, all-gather, broadcast.

Runs inside every rank of a torch.distributed job (``dist.torchrun``). For each
operation and size:

1. **Verify** on fresh data: all-reduce of rank-dependent values must equal the exact
   sum (small integers in fp32, so the sum is exact on any backend and in any order);
   all-gather must return every rank's chunk in rank order; broadcast must leave the
   source's values everywhere. All ranks agree on the verdict (an all-reduce MIN of
   the flags) before going on, so a rank with a wrong result never leaves the others
   inside a collective it will not join. A failed check is reported, not timed.
2. **Time** a fixed number of calls on every rank (``RankContext.measure``: CUDA events
   on a GPU, no time target, so no rank is left alone in a collective). The count comes
   from a short calibration whose per-call time is all-reduced with MAX, so every rank
   picks the same one.
3. **Time** = the largest of the ranks' medians (gathered from every rank, with each
   rank's statistics): a collective is as slow as its slowest member.

Bandwidths, in GB/s of 1e9 bytes, as nccl-tests defines them (its PERFORMANCE.md):
algbw = size / time; busbw = algbw x 2(n-1)/n for all-reduce, x (n-1)/n for all-gather
and x 1 for broadcast, which makes the figure comparable with the link's speed whatever
the rank count. Sizes are those of nccl-tests: the buffer for all-reduce and broadcast,
the gathered (output) buffer for all-gather, each rank sending size/n. With one rank
busbw is 0 for all-reduce and all-gather (nothing crosses a link), as in nccl-tests.

During timing all-reduce keeps summing its buffer, so values grow (and may reach inf
after a few hundred calls); the speed of a float sum does not depend on the values on
GPUs or on SSE/AVX CPUs, and correctness was checked on fresh data before.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from gpuscout.errors import UsageError
from gpuscout.dist.rank import RankContext

OPS = ("all_reduce", "all_gather", "broadcast")
KIB = 1024
MIN_SIZE = KIB
MAX_SIZE = 2**30  # 1 GiB
_ELEM = 4  # float32
_PATTERN = 251  # values repeat with a prime period, so a shifted chunk never matches


def bus_factor(op: str, n: int) -> float:
    """busbw / algbw for ``op`` on ``n`` ranks (nccl-tests' PERFORMANCE.md)."""
    if n < 1:
        raise ValueError(f"rank count must be at least 1, not {n}")
    if op == "all_reduce":
        return 2 * (n - 1) / n
    if op in ("all_gather", "reduce_scatter"):
        return (n - 1) / n
    if op in ("broadcast", "reduce"):
        return 1.0
    raise ValueError(f"unknown collective {op!r}")


def algbw_gbs(size_bytes: int, time_s: float) -> float:
    if time_s <= 0:
        raise ValueError("time must be > 0")
    return size_bytes / time_s / 1e9


def busbw_gbs(op: str, size_bytes: int, time_s: float, n: int) -> float:
    return algbw_gbs(size_bytes, time_s) * bus_factor(op, n)


_UNITS = {"": 1, "b": 1, "k": KIB, "m": KIB**2, "g": KIB**3}


def parse_size(text: str) -> int:
    """ "64M", "1GiB", "4k", "4096" -> bytes (binary units, as nccl-tests' -b/-e)."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)(?:i?[bB])?\s*", text)
    if m is None:
        raise UsageError(f"bad size {text!r}", "use a number of bytes or 4K, 64M, 1G")
    size = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if size < MIN_SIZE:
        raise UsageError(f"size {text!r} is below the smallest size, 1 KiB")
    return size


def format_size(n: int) -> str:
    for unit, scale in (("GiB", KIB**3), ("MiB", KIB**2), ("KiB", KIB)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} B"


def default_sizes(*, gpu: bool, quick: bool, max_size: int | None = None) -> list[int]:
    """1 KiB up to 1 GiB, doubling, on GPUs (nccl-tests' -f 2); shorter on gloo/CPU,
    where a 1 GiB all-reduce over loopback takes seconds a call, and with --quick."""
    top = (256 if quick else 1024) * KIB**2 if gpu else (4 if quick else 64) * KIB**2
    factor = 4 if quick or not gpu else 2
    if max_size is not None:
        top = min(max_size, MAX_SIZE) if max_size >= MIN_SIZE else MIN_SIZE
    sizes, s = [], MIN_SIZE
    while s <= top:
        sizes.append(s)
        s *= factor
    return sizes


def _pattern(numel: int, offset: float, device: Any) -> Any:
    import torch

    # int32 first: float32 counts exactly only up to 2**24, a 1 GiB buffer has 2**28.
    idx = torch.arange(numel, dtype=torch.int32, device=device) % _PATTERN
    return idx.to(torch.float32) + offset


def _mismatch(got: Any, want: Any, what: str) -> str | None:
    import torch

    if torch.equal(got, want):
        return None
    bad = (got != want).nonzero()
    first = int(bad[0].item())
    return (
        f"{what}: {bad.numel()} of {want.numel()} values differ "
        f"(first at {first}: got {float(got[first])}, expected {float(want[first])})"
    )


class _Case:
    """Buffers, the one call to time, and the check of one (operation, size)."""

    def __init__(self, op: str, size: int, n: int, rank: int, device: Any, backend: str) -> None:
        import torch
        import torch.distributed as dist

        self.op, self.n, self.rank = op, n, rank
        self.want: Any
        self.call: Callable[[], object]
        if op == "all_gather":
            per_rank = max(1, size // _ELEM // n)
            self.size = per_rank * n * _ELEM  # the gathered bytes, as nccl-tests counts
            self.inp = _pattern(per_rank, 1000.0 * rank, device)
            self.out = torch.empty(per_rank * n, dtype=torch.float32, device=device)
            self.want = torch.cat([_pattern(per_rank, 1000.0 * r, device) for r in range(n)])
            if backend == "nccl":
                self.call = lambda: dist.all_gather_into_tensor(self.out, self.inp)
            else:
                # gloo's native all-gather fills a list; views into ``out`` make it land
                # in one buffer. (On NCCL the list form adds a copy, so it is not used.)
                chunks = list(self.out.chunk(n))
                self.call = lambda: dist.all_gather(chunks, self.inp)
        elif op == "all_reduce":
            numel = max(1, size // _ELEM)
            self.size = numel * _ELEM
            self.buf = _pattern(numel, rank + 1.0, device)
            # sum over r of (p + r + 1) = n*p + n(n+1)/2, exact for these small integers
            self.want = _pattern(numel, 0.0, device) * n + n * (n + 1) / 2
            self.call = lambda: dist.all_reduce(self.buf)
        elif op == "broadcast":
            numel = max(1, size // _ELEM)
            self.size = numel * _ELEM
            self.want = _pattern(numel, 7.0, device)
            self.buf = self.want.clone() if rank == 0 else torch.full_like(self.want, -1.0)
            self.call = lambda: dist.broadcast(self.buf, src=0)
        else:
            raise UsageError(f"unknown collective {op!r}", f"use {', '.join(OPS)}")

    def check(self) -> str | None:
        got = self.out if self.op == "all_gather" else self.buf
        return _mismatch(got, self.want, f"{self.op} {format_size(self.size)}")

    def corrupt(self) -> None:
        got = self.out if self.op == "all_gather" else self.buf
        got.view(-1)[-1] += 1.0

    def free_reference(self) -> None:
        self.want = None  # the check is done: give its memory back before timing


def _iterations(ctx: RankContext, case: _Case, quick: bool) -> int:
    """The same call count on every rank: enough for ~target seconds at the slowest."""
    probe = ctx.measure(case.call, iters=2, warmup=0)
    per_call = ctx.all_reduce_max(max(probe.stats.median_s, 1e-7))
    target = 0.1 if quick else 0.3
    lo, hi = (5, 200) if quick else (10, 1000)
    return int(min(hi, max(lo, math.ceil(target / per_call))))


def run_one(ctx: RankContext, op: str, size: int, *, quick: bool) -> dict[str, Any]:
    """Verify, then time, one collective at one size; every rank returns the same dict."""
    from gpuscout.isolate.process import is_oom

    device = ctx.torch_device()
    n = ctx.world_size
    base: dict[str, Any] = {"op": op, "size_bytes": size, "ranks": n, "backend": ctx.backend}
    try:
        case: _Case | None = _Case(op, size, n, ctx.rank, device, ctx.backend)
    except Exception as exc:
        if not is_oom(exc):
            raise
        case = None
    # Every rank must know before the first collective: a rank that could not allocate
    # would otherwise leave the others waiting for it.
    if not ctx.all_true(case is not None):
        return base | {"status": "oom", "error": f"out of memory for {op} {format_size(size)}"}
    assert case is not None
    base["size_bytes"] = case.size
    case.call()
    if ctx.corrupts():
        case.corrupt()
    error = case.check()
    if not ctx.all_true(error is None):
        errors = [e for e in ctx.gather_json(error) if e]
        return base | {"status": "failed", "error": "; ".join(errors) or "another rank's check"}
    case.free_reference()
    iters = _iterations(ctx, case, quick)
    m = ctx.measure(case.call, iters=iters, warmup=5 if quick else 10)
    medians = ctx.gather_json({"median_s": m.stats.median_s, "stats": m.stats})
    slowest = max(medians, key=lambda d: float(d["median_s"]))
    time_s = float(slowest["median_s"])
    return base | {
        "status": "ok",
        "time_s": time_s,
        "algbw_gbs": algbw_gbs(case.size, time_s),
        "busbw_gbs": busbw_gbs(op, case.size, time_s, n),
        "bus_factor": bus_factor(op, n),
        "iters": iters,
        "rank_medians_s": [float(d["median_s"]) for d in medians],
        "stats": slowest["stats"],
        "clock": m.clock,
        "verified": True,
    }


def run_collectives(
    ctx: RankContext, *, ops: Sequence[str], sizes: Sequence[int], quick: bool, step_total: int
) -> list[dict[str, Any]]:
    """Every (operation, size); a size that runs out of memory ends that operation."""
    out: list[dict[str, Any]] = []
    for op in ops:
        too_big = False
        for size in sizes:
            ctx.progress(f"collectives: {op} {format_size(size)}", total=step_total)
            if too_big:  # every rank skips alike: the decision came from an all-reduce
                out.append(
                    {
                        "op": op,
                        "size_bytes": size,
                        "ranks": ctx.world_size,
                        "backend": ctx.backend,
                        "status": "skipped",
                        "error": "a smaller size ran out of memory",
                    }
                )
                continue
            out.append(run_one(ctx, op, size, quick=quick))
            too_big = out[-1]["status"] == "oom"
            if ctx.device.startswith("cuda"):
                import torch

                torch.cuda.empty_cache()
    return out
