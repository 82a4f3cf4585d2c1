"""Dense square matmul throughput for every precision the device has, checked first.

For each precision and size: build seeded random inputs (never zeros), run the product
once and compare a few blocks of it with a float64 reference computed from the *same*
low-precision inputs (so only the matmul's own error is measured), then time it.
TFLOPS = 2 n^3 / median time; "% of peak" divides by the catalog's dense peak (GPU) or
the ISA formula in ``cpu_peak`` (CPU). Small sizes rotate several input sets so that the
timed products do not all come out of cache.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
from gpuscout.catalog.gpu import TENSOR_MIN_CC

GPU_SIZES = (256, 512, 1024, 2048, 4096, 8192)
GPU_QUICK_SIZES = (1024, 8192)
CPU_SIZES = (128, 256, 512, 1024)
# 1024 is the smallest size at which a few cores get near their peak: with 512 as the
# largest, real CNN training ran faster than its "ceiling".
CPU_QUICK_SIZES = (256, 1024)
GPU_PRECISIONS = ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8")
CPU_PRECISIONS = ("fp32", "bf16")

# Relative Frobenius error bounds against the float64 reference. Each is ~10x what the
# format's output rounding and fp32 accumulation give on random normal inputs, and far
# below the O(1) error of a wrong kernel. fp32 is tight enough that a silent TF32 path
# (NVIDIA_TF32_OVERRIDE=1) fails it; int8 accumulates in int32 and must be exact. fp8
# runs with use_fast_accum, whose Hopper accumulator keeps only ~14 bits (DeepSeek-V3
# technical report, "Increasing Accumulation Precision": ~2% worst-element error at
# K=4096, growing with K), so its bound leaves room for K=8192 on top of the bf16
# output rounding; not yet measured on a GPU.
REL_TOL = {
    "fp64": 1e-10,
    "fp32": 1e-4,
    "tf32": 5e-3,
    "fp16": 5e-3,
    "bf16": 2e-2,
    "fp8": 1e-1,
    "int8": 0.0,
}
MIN_CC = TENSOR_MIN_CC  # compute capability each precision needs on NVIDIA GPUs
MAX_BUFFER_SETS = 16
_VERIFY_BLOCK = 16

MatmulFn = Callable[[Any, Any], Any]


def unit_for(precision: str) -> str:
    return "TOPS" if precision == "int8" else "TFLOPS"


def buffer_sets(set_bytes: int, cache_bytes: int) -> int:
    """How many input sets to rotate so that together they exceed twice the cache."""
    if set_bytes <= 0:
        return 1
    return max(1, min(MAX_BUFFER_SETS, math.ceil(2 * cache_bytes / set_bytes)))


def _cache_bytes(torch: Any, device: str) -> int:
    if device.startswith("cuda"):
        l2 = getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0)
        return int(l2) or 50 * 2**20
    from gpuscout.bench.memory import last_level_cache_bytes

    return last_level_cache_bytes()


@contextmanager
def _tf32(torch: Any, device: str, precision: str) -> Iterator[None]:
    """fp32 means IEEE fp32 (TF32 off); tf32 turns it on. Both APIs' settings are restored.

    ``torch.set_float32_matmul_precision`` is the one knob that sets the legacy flag and
    (PyTorch >= 2.9) the new per-backend ``fp32_precision`` together. Setting only
    ``torch.backends.cuda.matmul.fp32_precision = "tf32"`` leaves them disagreeing, and
    then ``allowTF32CuBLAS()`` raises "you have used mix of the legacy and new APIs" (its
    Python getter does on torch 2.13); releases whose cuBLAS path calls it for every
    fp32 GEMM would fail the whole tf32 benchmark that way.
    """
    if not device.startswith("cuda") or precision not in ("fp32", "tf32"):
        yield
        return
    # The per-backend settings set_float32_matmul_precision writes (PyTorch >= 2.9): CUDA's
    # and oneDNN's matmul. Each starts as "none" (inherit), which only a direct write
    # puts back; reading one never raises.
    mkldnn = getattr(torch.backends, "mkldnn", None)
    knobs: tuple[Any, ...] = (torch.backends.cuda.matmul, getattr(mkldnn, "matmul", None))
    old_new = [(k, k.fp32_precision) for k in knobs if hasattr(k, "fp32_precision")]
    try:
        old_legacy: str | None = torch.get_float32_matmul_precision()
    except RuntimeError:  # someone set only the new API: the legacy reading is refused
        old_legacy = None
    torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
    try:
        yield
    finally:
        if old_legacy is not None:
            torch.set_float32_matmul_precision(old_legacy)
        for knob, value in old_new:
            if knob.fp32_precision != value:
                knob.fp32_precision = value


def _make_inputs(torch: Any, precision: str, n: int, device: str, gen: Any) -> tuple[Any, Any]:
    def randn(dtype: Any) -> Any:
        return torch.randn(n, n, generator=gen, device=device, dtype=dtype)

    if precision == "fp64":
        return randn(torch.float64), randn(torch.float64)
    if precision in ("fp32", "tf32"):
        return randn(torch.float32), randn(torch.float32)
    if precision == "fp16":
        return randn(torch.float16), randn(torch.float16)
    if precision == "bf16":
        return randn(torch.bfloat16), randn(torch.bfloat16)
    if precision == "fp8":
        # e4m3 holds +-448, so N(0, 1) inputs need no scaling; the second operand is
        # column-major, the layout torch._scaled_mm (cuBLASLt "TN") requires.
        a = randn(torch.float32).to(torch.float8_e4m3fn)
        b = randn(torch.float32).to(torch.float8_e4m3fn).t()
        return a, b
    if precision == "int8":
        a = torch.randint(-128, 128, (n, n), generator=gen, device=device, dtype=torch.int8)
        b = torch.randint(-128, 128, (n, n), generator=gen, device=device, dtype=torch.int8)
        return a, b.t()
    raise ValueError(f"unknown precision {precision!r}")


def _make_op(torch: Any, precision: str, device: str) -> Callable[[Any, Any, Any], Any]:
    """(a, b, out) -> product. ``out`` is reused where the op supports it, so the timed
    loop does no allocation."""
    if precision == "fp8":
        one = torch.ones((), device=device, dtype=torch.float32)
        return lambda a, b, out: torch._scaled_mm(
            a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16, use_fast_accum=True
        )
    if precision == "int8":
        return lambda a, b, out: torch._int_mm(a, b)
    return lambda a, b, out: torch.mm(a, b, out=out)


def _out_dtype(torch: Any, a: Any, precision: str) -> Any:
    return {"fp8": torch.bfloat16, "int8": torch.int32}.get(precision, a.dtype)


def _to_float64(torch: Any, x: Any) -> Any:
    # Through float32, which holds fp8, int8, fp16 and bf16 values exactly; float64 itself
    # must not pass through it, or the reference loses the very digits the fp64 bound
    # checks (through float32, fp64 products failed their 1e-10 bound at ~4e-8).
    if x.dtype != torch.float64:
        x = x.float()
    return x.double().cpu()


def relative_error(torch: Any, a: Any, b: Any, c: Any, r0: int, c0: int, k: int) -> float:
    """||C_blk - A_blk B_blk|| / ||A_blk B_blk|| on a k x k block, in float64 on the CPU."""
    a_blk = _to_float64(torch, a[r0 : r0 + k, :])
    b_blk = _to_float64(torch, b[:, c0 : c0 + k])
    ref = a_blk @ b_blk
    got = c[r0 : r0 + k, c0 : c0 + k].double().cpu()
    if not bool(torch.isfinite(got).all()):
        raise VerificationError("output has inf or nan")
    denom = float(torch.linalg.vector_norm(ref))
    return float(torch.linalg.vector_norm(got - ref)) / (denom if denom > 0 else 1.0)


def verify(torch: Any, a: Any, b: Any, c: Any, precision: str, gen_cpu: Any) -> float:
    """Check a random block and the bottom-right corner block; return the worst error."""
    n = a.shape[0]
    k = min(_VERIFY_BLOCK, n)
    hi = n - k + 1
    r0 = int(torch.randint(0, hi, (1,), generator=gen_cpu))
    c0 = int(torch.randint(0, hi, (1,), generator=gen_cpu))
    err = max(
        relative_error(torch, a, b, c, r0, c0, k), relative_error(torch, a, b, c, n - k, n - k, k)
    )
    tol = REL_TOL[precision]
    if not err <= tol:
        raise VerificationError(f"{precision} relative error {err:.3g} > bound {tol:.0e}")
    return err


def size_problem(precision: str, n: int) -> str | None:
    """Why ``n`` cannot be used for ``precision`` on a GPU, or None. These are the checks
    of torch._scaled_mm (meta registration) and torch._int_mm (CUDA kernel)."""
    if precision == "fp8" and n % 16:
        return f"fp8 (torch._scaled_mm) needs sizes that are multiples of 16, not {n}"
    if precision == "int8" and (n <= 16 or n % 8):
        return f"int8 (torch._int_mm) needs sizes above 16 that are multiples of 8, not {n}"
    return None


def _case(
    torch: Any,
    device: str,
    precision: str,
    n: int,
    quick: bool,
    ctx: BenchContext,
    mm: MatmulFn | None,
) -> CaseOutput:
    why = size_problem(precision, n) if device.startswith("cuda") else None
    if why is not None:
        raise SkipCase(why)
    gen = torch.Generator(device=device).manual_seed(ctx.seed + n)
    gen_cpu = torch.Generator().manual_seed(ctx.seed + n)
    op = _make_op(torch, precision, device)
    if mm is not None:
        op = lambda a, b, out: mm(a, b)  # noqa: E731  (a test seam: a deliberately wrong kernel)
    with _tf32(torch, device, precision):
        a, b = _make_inputs(torch, precision, n, device, gen)
        out_dtype = _out_dtype(torch, a, precision)
        out = torch.empty(n, n, device=device, dtype=out_dtype)
        c = op(a, b, out)
        err = verify(torch, a, b, c, precision, gen_cpu)
        set_bytes = a.element_size() * n * n * 2 + out.element_size() * n * n
        k = buffer_sets(set_bytes, _cache_bytes(torch, device))
        sets = [(a, b, out)]
        for _ in range(k - 1):
            x, y = _make_inputs(torch, precision, n, device, gen)
            sets.append((x, y, torch.empty(n, n, device=device, dtype=out_dtype)))
        i = 0

        def step() -> None:
            nonlocal i
            x, y, o = sets[i]
            i = (i + 1) % len(sets)
            op(x, y, o)

        clock = None
        if device.startswith("cuda"):
            from gpuscout.timing import CudaEventClock

            clock = CudaEventClock(device)
        m, extra = timed(step, ctx, quick, clock)
    figure = 2 * n**3 / m.stats.median_s / 1e12
    peak = ctx.ceiling.tflops.get(precision)
    extra.update(
        {"size": n, "precision": precision, "rel_error": err, "rel_tol": REL_TOL[precision]}
    )
    extra.update({"buffer_sets": k, "peak": peak, "ceiling_source": ctx.ceiling.source})
    return CaseOutput(figure=figure, measurement=m, peak=peak, extra=extra)


def supported(torch: Any, device: str, precision: str) -> str | None:
    """None if ``precision`` runs on ``device``, else why not."""
    if device == "cpu":
        return None if precision in CPU_PRECISIONS else "not measured on the CPU"
    cc = tuple(torch.cuda.get_device_capability(device))
    need = MIN_CC.get(precision)
    if need is not None and cc < need:
        return f"needs compute capability {need[0]}.{need[1]}, this GPU has {cc[0]}.{cc[1]}"
    if precision == "fp8" and not (
        hasattr(torch, "_scaled_mm") and hasattr(torch, "float8_e4m3fn")
    ):
        return "this PyTorch has no torch._scaled_mm"
    if precision == "int8" and not hasattr(torch, "_int_mm"):
        return "this PyTorch has no torch._int_mm"
    return None


@register("matmul")
def run(
    device: str,
    quick: bool,
    ctx: BenchContext | None = None,
    *,
    sizes: Sequence[int] | None = None,
    precisions: Sequence[str] | None = None,
    mm: MatmulFn | None = None,
) -> list[Result]:
    """Matmul TFLOPS per precision and size on ``device`` ("cpu" or "cuda:N").

    ``mm`` replaces the kernel (tests inject a wrong one to see the check catch it).
    """
    import torch

    context = ctx if ctx is not None else BenchContext()
    on_gpu = device.startswith("cuda")
    if sizes is None:
        sizes = (
            (GPU_QUICK_SIZES if quick else GPU_SIZES)
            if on_gpu
            else (CPU_QUICK_SIZES if quick else CPU_SIZES)
        )
    if precisions is None:
        precisions = GPU_PRECISIONS if on_gpu else CPU_PRECISIONS
    results: list[Result] = []
    for prec in precisions:
        if prec not in REL_TOL:
            raise ValueError(f"unknown precision {prec!r}")
        why = supported(torch, device, prec)
        if why is not None:
            results.append(
                Result(f"matmul/{prec}", device, None, unit_for(prec), "skipped", error=why)
            )
            continue
        for n in sizes:
            body = functools.partial(_case, torch, device, prec, n, quick, context, mm)
            results.append(run_case(f"matmul/{prec}/{n}", device, unit_for(prec), context, body))
    return results
