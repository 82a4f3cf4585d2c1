"""Plain PyTorch programs for the figures gpuscout's micro-benchmarks must reproduce.

No gpuscout code is used here on purpose: this is the "no harness" baseline that
`gpuscout bench micro` is compared against (issue 3: within 3%). Medians of 10 timed
runs after warm-up, CUDA events, one program per figure. Prints one JSON object.

    python scripts/plain_torch_reference.py > plain.json
"""

from __future__ import annotations

import json
import statistics

import torch


def _time_ms(fn, iters: int = 10, warmup: int = 3) -> float:  # type: ignore[no-untyped-def]
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def matmul_tflops(dtype: str, n: int = 8192) -> float:
    torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
    if dtype == "fp8":
        a = torch.randn(n, n, device="cuda").to(torch.float8_e4m3fn)
        b = torch.randn(n, n, device="cuda").to(torch.float8_e4m3fn).t()
        one = torch.tensor(1.0, device="cuda")
        ms = _time_ms(lambda: torch._scaled_mm(a, b, one, one, out_dtype=torch.bfloat16))
    else:
        dt = {"bf16": torch.bfloat16, "fp16": torch.float16, "tf32": torch.float32, "fp32": torch.float32}[dtype]
        a = torch.randn(n, n, device="cuda", dtype=dt)
        b = torch.randn(n, n, device="cuda", dtype=dt)
        ms = _time_ms(lambda: a @ b)
    torch.backends.cuda.matmul.allow_tf32 = False
    return 2 * n**3 / (ms / 1e3) / 1e12


def copy_gbs(nbytes: int = 2 * 2**30) -> float:
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda").random_()
    dst = torch.empty_like(src)
    ms = _time_ms(lambda: dst.copy_(src))
    return 2 * nbytes / (ms / 1e3) / 1e9  # bytes read + written


def h2d_gbs(pinned: bool, nbytes: int = 2**30) -> float:
    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned).random_()
    dev = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    ms = _time_ms(lambda: dev.copy_(host, non_blocking=pinned))
    return nbytes / (ms / 1e3) / 1e9


def d2h_gbs(nbytes: int = 2**30) -> float:
    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    dev = torch.empty(nbytes, dtype=torch.uint8, device="cuda").random_()
    ms = _time_ms(lambda: host.copy_(dev, non_blocking=True))
    return nbytes / (ms / 1e3) / 1e9


if __name__ == "__main__":
    out = {f"matmul_{d}_8192_tflops": round(matmul_tflops(d), 1) for d in ("bf16", "fp16", "tf32", "fp32", "fp8")}
    out["copy_gbs"] = round(copy_gbs(), 1)
    out["h2d_pinned_gbs"] = round(h2d_gbs(True), 1)
    out["h2d_pageable_gbs"] = round(h2d_gbs(False), 1)
    out["d2h_pinned_gbs"] = round(d2h_gbs(), 1)
    out["device"] = torch.cuda.get_device_name(0)
    out["torch"] = torch.__version__
    print(json.dumps(out, indent=2))
