"""Plain PyTorch programs for the figures gpuscout's micro-benchmarks must reproduce.

No gpuscout code is used here on purpose: this is the "no harness" baseline that
`gpuscout bench micro` (the full run, not --quick) is compared against (goal: within 3%),
so it stays a script outside the package, unlike the other checks in gpuscout.validate.
Each figure is measured the way the harness measures it, so that only the harness
differs: the same sizes, FLOPs and bytes counted; one cold call and 3 warm-up calls;
then back-to-back calls (one CUDA event pair each, one synchronize at the end) for at
least 10 calls and 0.5 s, since a GPU held busy for half a second can sit lower on its
power-capped clock than one timed for a 20 ms burst; the median. Prints one JSON object.

    python scripts/plain_torch_reference.py > plain.json
"""

from __future__ import annotations

import functools
import json
import math
import statistics
from collections.abc import Callable

import torch

# The harness's settings (gpuscout.bench: FULL_TIMING, matmul.GPU_SIZES' largest,
# memory.GPU_BUFFER_BYTES, transfer.SIZES_BYTES' largest); a test checks they agree
# (tests/bench/test_bench_gpu_paths.py).
WARMUP = 3
MIN_ITERS = 10
MIN_TIME_S = 0.5
MATMUL_N = 8192
MEMORY_BYTES = 2 * 2**30  # per array
TRANSFER_BYTES = 2**30


def time_ms(fn: Callable[[], object]) -> float:
    """Median milliseconds of ``fn`` on the GPU, timed as described at the top."""
    fn()  # the cold call: cuBLAS heuristics, allocator, lazy init
    torch.cuda.synchronize()
    first, last = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    first.record()
    for _ in range(WARMUP):
        fn()
    last.record()
    last.synchronize()
    per_call_ms = max(first.elapsed_time(last) / WARMUP, 1e-3)
    iters = max(MIN_ITERS, math.ceil(MIN_TIME_S * 1e3 / per_call_ms))
    events = [
        (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        for _ in range(iters)
    ]
    for start, stop in events:
        start.record()
        fn()
        stop.record()
    torch.cuda.synchronize()
    return float(statistics.median(start.elapsed_time(stop) for start, stop in events))


def set_tf32(on: bool) -> None:
    # One call sets the legacy flag and PyTorch >= 2.9's fp32_precision together.
    torch.set_float32_matmul_precision("high" if on else "highest")


def matmul_op(dtype: str, n: int) -> Callable[[], object]:
    """The product gpuscout times for ``dtype``, on fresh random n x n inputs."""
    if dtype == "fp8":
        # e4m3 holds N(0, 1) without scaling; mat2 column-major, as _scaled_mm requires.
        a = torch.randn(n, n, device="cuda").to(torch.float8_e4m3fn)
        b = torch.randn(n, n, device="cuda").to(torch.float8_e4m3fn).t()
        one = torch.ones((), device="cuda")  # float32 scalar scales: tensor-wise scaling
        return lambda: torch._scaled_mm(
            a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16, use_fast_accum=True
        )
    if dtype == "int8":
        a = torch.randint(-128, 128, (n, n), device="cuda", dtype=torch.int8)
        b = torch.randint(-128, 128, (n, n), device="cuda", dtype=torch.int8).t()
        return lambda: torch._int_mm(a, b)
    dt = {
        "fp64": torch.float64,
        "fp32": torch.float32,
        "tf32": torch.float32,
        "fp16": torch.float16,
        "bf16": torch.bfloat16,
    }[dtype]
    a = torch.randn(n, n, device="cuda", dtype=dt)
    b = torch.randn(n, n, device="cuda", dtype=dt)
    return lambda: a @ b


def matmul_tflops(dtype: str, n: int = MATMUL_N) -> float:
    """2 n^3 FLOPs (TOPS for int8) per product."""
    set_tf32(dtype == "tf32")
    try:
        ms = time_ms(matmul_op(dtype, n))
    finally:
        set_tf32(False)
    return 2 * n**3 / (ms / 1e3) / 1e12


def copy_gbs(nbytes: int = MEMORY_BYTES) -> float:
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda").random_()
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src))
    return 2 * nbytes / (ms / 1e3) / 1e9  # bytes read + written


def triad_gbs(nbytes: int = MEMORY_BYTES) -> float:
    n = nbytes // 4
    a, b, c = (torch.rand(n, device="cuda") for _ in range(3))
    ms = time_ms(lambda: torch.add(b, c, alpha=3.0, out=a))
    return 3 * nbytes / (ms / 1e3) / 1e9  # two arrays read, one written


def h2d_gbs(pinned: bool, nbytes: int = TRANSFER_BYTES) -> float:
    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned).random_()
    dev = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    ms = time_ms(lambda: dev.copy_(host, non_blocking=pinned))
    return nbytes / (ms / 1e3) / 1e9


def d2h_gbs(pinned: bool, nbytes: int = TRANSFER_BYTES) -> float:
    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned)
    dev = torch.empty(nbytes, dtype=torch.uint8, device="cuda").random_()
    ms = time_ms(lambda: host.copy_(dev, non_blocking=pinned))
    return nbytes / (ms / 1e3) / 1e9


def _figure(fn: Callable[[], float]) -> float | str:
    # One figure failing (an old GPU without fp8, an out-of-memory) must not lose the rest.
    try:
        return round(fn(), 1)
    except Exception as exc:
        return f"error: {type(exc).__name__}: {str(exc).strip()[:200]}"


def main() -> None:
    if not torch.cuda.is_available():  # every figure here is a GPU's: say so, allocate nothing
        raise SystemExit("plain_torch_reference.py needs a CUDA GPU (torch sees none)")
    out: dict[str, object] = {}
    for d in ("bf16", "fp16", "tf32", "fp32", "fp8", "fp64", "int8"):
        unit = "tops" if d == "int8" else "tflops"
        out[f"matmul_{d}_{MATMUL_N}_{unit}"] = _figure(functools.partial(matmul_tflops, d))
    out["copy_gbs"] = _figure(copy_gbs)
    out["triad_gbs"] = _figure(triad_gbs)
    out["h2d_pinned_gbs"] = _figure(lambda: h2d_gbs(True))
    out["h2d_pageable_gbs"] = _figure(lambda: h2d_gbs(False))
    out["d2h_pinned_gbs"] = _figure(lambda: d2h_gbs(True))
    out["d2h_pageable_gbs"] = _figure(lambda: d2h_gbs(False))
    out["device"] = torch.cuda.get_device_name(0)
    out["torch"] = torch.__version__
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
