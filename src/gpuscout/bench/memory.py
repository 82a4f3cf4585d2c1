"""Memory bandwidth, STREAM-style: copy (a = b) and triad (a = b + s*c).

On a GPU this is device memory (HBM/GDDR); on the CPU it is host memory with all
physical cores. Bytes counted are the bytes each kernel must read plus write (copy: 2
arrays, triad: 3), as STREAM counts them, in GB/s of 1e9 bytes. Buffers are far larger
than the last-level cache (STREAM's rule: at least 4x), so the figure is memory, not cache.

On the CPU numpy would use one thread; torch's element-wise kernels run on all intra-op
threads, and the ``out=`` forms keep allocation out of the timed loop. Arrays are
float64 on the CPU (STREAM's type, for ``scripts/stream_compare.sh``) and float32 on
GPUs (the type does not change the bytes moved per second).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpuscout._types import Result
from gpuscout.bench.benchmarks import register
from gpuscout.bench.context import (
    BenchContext,
    CaseOutput,
    SkipCase,
    VerificationError,
    run_case,
    timed,
)

MiB = 2**20
GiB = 2**30
GPU_BUFFER_BYTES = 2 * GiB
GPU_QUICK_BUFFER_BYTES = 1 * GiB
CPU_MIN_ARRAY_BYTES = 256 * MiB
TRIAD_SCALAR = 3.0
_CHECK_ELEMS = 4096


def last_level_cache_bytes(sysfs: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int:
    """Size of the largest CPU cache level (Linux sysfs); 32 MiB where it cannot be read."""
    best_level, best = -1, 0
    try:
        for idx in sysfs.glob("index*"):
            level = int((idx / "level").read_text().strip())
            text = (idx / "size").read_text().strip().upper()
            mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
            size = int(text.rstrip("KMG")) * mult
            if level > best_level or (level == best_level and size > best):
                best_level, best = level, size
    except (OSError, ValueError):
        best = 0
    return best or 32 * MiB


def cpu_array_bytes(ram_available_bytes: int | None = None) -> int:
    """Per-array size on the CPU: 4x the last-level cache, at least 256 MiB, and small
    enough that three arrays leave most of the free RAM alone."""
    want = max(CPU_MIN_ARRAY_BYTES, 4 * last_level_cache_bytes())
    if ram_available_bytes is None:
        try:  # POSIX; elsewhere the size is simply not capped
            ram_available_bytes = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            ram_available_bytes = None
    if ram_available_bytes is not None:
        want = min(want, ram_available_bytes // 8)
    return max(want // MiB, 1) * MiB


def gpu_buffer_bytes(torch: Any, device: str, quick: bool) -> int:
    free, _total = torch.cuda.mem_get_info(torch.device(device))
    want = GPU_QUICK_BUFFER_BYTES if quick else GPU_BUFFER_BYTES
    # Three buffers plus headroom for the allocator and other processes.
    return (min(want, int(free) // 8) // MiB) * MiB


def _check_ranges(n: int, gen: Any, torch: Any) -> list[tuple[int, int]]:
    k = min(_CHECK_ELEMS, n)
    j0 = int(torch.randint(0, n - k + 1, (1,), generator=gen))
    return [(j0, j0 + k), (n - k, n)]


def _verify(torch: Any, kind: str, a: Any, b: Any, c: Any | None, gen: Any, rel_tol: float) -> None:
    for lo, hi in _check_ranges(a.numel(), gen, torch):
        got = a[lo:hi].double().cpu()
        if kind == "copy":
            ref = b[lo:hi].double().cpu()
        else:
            assert c is not None
            ref = b[lo:hi].double().cpu() + TRIAD_SCALAR * c[lo:hi].double().cpu()
        err = float(((got - ref).abs() / ref.abs()).max())
        if not err <= rel_tol:
            raise VerificationError(f"{kind} element range {lo}:{hi} off by {err:.3g} (rel)")


def _case(
    torch: Any, device: str, kind: str, quick: bool, ctx: BenchContext, array_bytes: int | None
) -> CaseOutput:
    on_gpu = device.startswith("cuda")
    if array_bytes is not None:
        nbytes = array_bytes
        dtype, rel_tol = (torch.float32, 1e-6) if on_gpu else (torch.float64, 1e-12)
    elif on_gpu:
        nbytes = gpu_buffer_bytes(torch, device, quick)
        l2 = int(getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0))
        if nbytes < max(4 * l2, 64 * MiB):
            raise SkipCase(f"not enough free GPU memory for buffers ({nbytes // MiB} MiB)")
        dtype, rel_tol = torch.float32, 1e-6
    else:
        nbytes = cpu_array_bytes()
        dtype, rel_tol = torch.float64, 1e-12
    es = torch.empty((), dtype=dtype).element_size()
    n = nbytes // es
    gen = torch.Generator(device=device).manual_seed(ctx.seed)
    gen_cpu = torch.Generator().manual_seed(ctx.seed)

    def array() -> Any:
        x = torch.empty(n, dtype=dtype, device=device)
        # fill_ runs on all threads, so pages are first touched by the threads (and on
        # the NUMA nodes) that later stream them, as STREAM's parallel init does.
        x.fill_(1.0)
        return x

    a, b = array(), array()
    b.uniform_(0.5, 1.5, generator=gen)
    c: Any | None = None
    if kind == "copy":
        op: Callable[[], object] = functools.partial(a.copy_, b)
        arrays = 2
    else:
        c = array()
        c.uniform_(0.5, 1.5, generator=gen)
        op = functools.partial(torch.add, b, c, alpha=TRIAD_SCALAR, out=a)
        arrays = 3
    op()
    _verify(torch, kind, a, b, c, gen_cpu, rel_tol)
    clock = None
    if on_gpu:
        from gpuscout.timing import CudaEventClock

        clock = CudaEventClock(device)
    m, extra = timed(op, ctx, quick, clock)
    bytes_per_iter = arrays * n * es
    figure = bytes_per_iter / m.stats.median_s / 1e9
    peak = ctx.ceiling.bandwidth_gbs
    extra.update(
        {
            "kind": kind,
            "array_bytes": n * es,
            "elems": n,
            "dtype": str(dtype).replace("torch.", ""),
            "bytes_per_iter": bytes_per_iter,
            "peak": peak,
            "ceiling_source": ctx.ceiling.source,
        }
    )
    if not on_gpu:
        extra["threads"] = torch.get_num_threads()
        extra["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    return CaseOutput(figure=figure, measurement=m, peak=peak, extra=extra)


@register("memory")
def run(
    device: str, quick: bool, ctx: BenchContext | None = None, *, array_bytes: int | None = None
) -> list[Result]:
    """Copy and triad bandwidth (GB/s) of ``device``'s memory; ``array_bytes`` overrides
    the per-array size (tests use a small one)."""
    import torch

    context = ctx if ctx is not None else BenchContext()
    return [
        run_case(
            f"memory/{kind}",
            device,
            "GB/s",
            context,
            functools.partial(_case, torch, device, kind, quick, context, array_bytes),
        )
        for kind in ("copy", "triad")
    ]
